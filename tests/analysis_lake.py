"""A small synthetic lake for the analysis tests, written to the shared table contracts.

Emotions carry 3 attributes; runs of one run set hold FFN activations of 2 layers x `units`
units for single-label stimuli of each emotion, one multi-label stimulus (which profiles must
ignore) and one neutral stimulus; raters give noisy pair distances. Activations are float32
values rounded to 1/8 so that the neuron RDMs have ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations

import numpy as np
import pyarrow as pa

from emolake.extract.store import activation_table
from emolake.ingest.emotions import GOEMOTIONS_27
from emolake.warehouse.lake import Lake
from emolake.warehouse.tables import TABLES

ATTRIBUTES = ("arousal", "control", "valence")


@dataclass
class Synthetic:
    emotions: list[str]
    attributes: np.ndarray  # [n_emotions, n_attributes]
    profiles: np.ndarray  # [n_runs, n_emotions, n_neurons] expected means over single-label stimuli
    run_ids: list[str]
    run_set: str
    study: str
    d_ff: int
    n_layers: int


def write_synthetic(
    lake: Lake, n_emotions: int = 8, units: int = 6, n_runs: int = 2, n_raters: int = 5, seed: int = 0,
    run_set: str = "toy", study: str = "toy-study", dataset: str = "toy-stimuli", status: str = "complete",
    emotions: list[str] | None = None,
) -> Synthetic:
    """`emotions` (normalised names) replaces the first `n_emotions` GoEmotions emotions."""
    rng = np.random.default_rng(seed)
    emotions = sorted(emotions) if emotions else sorted(GOEMOTIONS_27[:n_emotions])
    n_emotions = len(emotions)
    attributes = np.round(rng.random((n_emotions, len(ATTRIBUTES))) * 9, 1)
    n_layers, d_ff = 2, units
    n_neurons = n_layers * d_ff
    # neurons 0..2 track one attribute each; the rest are noise
    weights = np.zeros((len(ATTRIBUTES), n_neurons))
    weights[0, 0] = weights[1, 1] = weights[2, d_ff] = 1.0

    stimuli, activations, runs = [], {}, []
    stimulus_rows = []
    for e, emotion in enumerate(emotions):
        for k in range(2):
            stimulus_rows.append((f"{emotion}-{k}", emotion, [emotion]))
    stimulus_rows.append(("multi-0", None, [emotions[0], emotions[1]]))
    stimulus_rows.append(("neutral-0", "neutral", ["neutral"]))
    for sid, _, labels in stimulus_rows:
        for label in labels:
            stimuli.append({"split": "test", "stimulus_id": sid, "text": f"text of {sid}", "emotion": label,
                            "n_labels": len(labels), "source_row": len(stimuli)})

    profiles = np.zeros((n_runs, n_emotions, n_neurons))
    run_ids = [f"{run_set}-seed{r}" for r in range(n_runs)]
    for r, run_id in enumerate(run_ids):
        per_stimulus = {}
        for sid, emotion, labels in stimulus_rows:
            if emotion in emotions:
                base = attributes[emotions.index(emotion)] @ weights
            else:
                base = np.full(n_neurons, 3.0)
            values = np.round((base + rng.normal(0, 1.0, n_neurons)) * 8) / 8
            per_stimulus[sid] = values.astype(np.float32)
        for e, emotion in enumerate(emotions):
            profiles[r, e] = np.mean([per_stimulus[f"{emotion}-{k}"].astype(np.float64) for k in range(2)], axis=0)
        activations[run_id] = per_stimulus
        runs.append({"run_set": run_set, "status": status if r == n_runs - 1 else "complete", "model": "toy", "dataset": dataset, "split": "test", "position": "mask",
                     "template": "{text}", "n_layers": n_layers, "d_ff": d_ff, "seed": r,
                     "created_at": datetime(2024, 1, 1, tzinfo=timezone.utc)})

    similarity = []
    truth = attributes @ np.array([1.0, 0.5, 2.0])
    for rater in range(n_raters):
        for a, b in combinations(range(n_emotions), 2):
            distance = float(np.clip(np.round(abs(truth[a] - truth[b]) / 4 + rng.normal(0, 1)), 1, 9))
            similarity.append({"rater": f"r{rater}", "emotion_a": emotions[a], "emotion_b": emotions[b],
                               "distance": distance, "source": "synthetic"})
        similarity.append({"rater": f"r{rater}", "emotion_a": emotions[0], "emotion_b": "neutral",
                           "distance": 5.0, "source": "synthetic"})

    with lake.transaction("synthetic analysis fixture") as txn:
        txn.write("stimuli", pa.Table.from_pylist(stimuli), {"dataset": dataset})
        txn.write("emotion_attributes", pa.Table.from_pylist([
            {"emotion": em, "attribute": at, "value": float(attributes[e, a]), "source": "synthetic"}
            for e, em in enumerate(emotions) for a, at in enumerate(ATTRIBUTES)
        ]), {"study": study})
        txn.write("similarity_judgments", pa.Table.from_pylist(similarity), {"study": study})
        for run_id, run in zip(run_ids, runs):
            manifest = {name: run.get(name) for name in TABLES["runs"].schema.names}
            txn.write("runs", pa.Table.from_pylist([manifest], schema=TABLES["runs"].schema), {"run_id": run_id})
            sids = list(activations[run_id])
            matrix = np.stack([activations[run_id][sid] for sid in sids])  # [n_stimuli, n_neurons]
            for layer in range(n_layers):
                table = activation_table(sids, matrix[:, layer * d_ff:(layer + 1) * d_ff])
                txn.write("activations", table, {"run_id": run_id, "layer": layer})
    return Synthetic(emotions, attributes, profiles, run_ids, run_set, study, d_ff, n_layers)


def write_profiles_copy(lake: Lake, run_id: str, run_set: str, parts: int = 2) -> str:
    """Run `run_id`'s vectors stored again as a profiles run (`extract --store profiles`'s tables), in `parts`
    parts over disjoint stimuli; returns the new run id (`<run_set>-seed0`)."""
    from emolake.extract.store import profile_labels, read_activation_matrix, write_profile_chunk
    from emolake.warehouse.database import query

    manifest = query(lake, f"SELECT * EXCLUDE (run_id) FROM runs WHERE run_id = '{run_id}'").to_pylist()[0]
    new_id = f"{run_set}-seed0"
    ids, matrix = read_activation_matrix(lake, run_id)  # [n_stimuli, n_neurons]
    labels = profile_labels(lake, manifest["dataset"])
    d_ff = manifest["d_ff"]
    with lake.transaction("synthetic profiles run") as txn:
        row = {**manifest, "run_set": run_set, "store": "profiles"}
        txn.write("runs", pa.Table.from_pylist([row], schema=TABLES["runs"].schema), {"run_id": new_id})
        for part, rows in enumerate(np.array_split(np.arange(len(ids)), parts)):
            part_ids = [ids[i] for i in rows]
            write_profile_chunk(txn, new_id, part, part_ids, part_ids,
                                [matrix[rows, layer * d_ff:(layer + 1) * d_ff] for layer in range(manifest["n_layers"])],
                                labels)
    return new_id
