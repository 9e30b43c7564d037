"""An ablation sweep: unablated + attribute neuron sets + random controls, evaluated and stored.

Neuron sets are read from `attribute_neurons` (run set, study, attribute, k, scope); the read-out is
a fitted inference run (`extract/inference/run.py`), applied to the report split's binary tasks. Results go
to `ablations` (condition definitions, seeds and neuron lists) and `ablation_accuracy`, partitioned
by (run_set, study, k): re-running a k replaces it; the unablated condition is k = 0. Predictions of
every condition are stored only with `save_predictions` (one row per stimulus, task and condition;
the latest sweep of a run set replaces its predictions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from emolake.extract.ablation.edits import (
    AblationEdit, Condition, attribute_conditions, condition_masks, random_conditions, reference_statistics,
    stacked_hook_factory, unablated_condition,
)
from emolake.extract.hooks import ffn_hook_points, ffn_width
from emolake.extract.models.families import DEFAULT_NEURON
from emolake.extract.inference.readouts import readout_features
from emolake.extract.inference.run import FittedInference, split_union
from emolake.extract.inference.tasks import task_texts
from emolake.extract.inference.tasks import MULTICLASS, derive_seed
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake, LakeTransaction


@dataclass
class SweepConfig:
    run_set: str
    study: str
    ks: list[int]
    attributes: list[str] | None = None  # None: every attribute with neurons in attribute_neurons
    controls: int = 10
    layer_matched: bool = False
    mode: str = "zero"
    value: float = 0.0  # scale factor (mode scale) or noise sd in reference sds (mode noise)
    scope: str = "global"
    seed: int = 0
    conditions_per_pass: int = 12
    batch_size: int = 32
    reference_size: int = 2000
    save_predictions: bool = False
    neuron: str = DEFAULT_NEURON  # the neuron definition the run set's neurons were read at


def read_attribute_neurons(lake: Lake, run_set: str, study: str, ks: list[int], attributes: list[str] | None,
                           scope: str = "global") -> dict[tuple[str, int], np.ndarray]:
    """{(attribute, k): neuron ids} from the `attribute_neurons` view."""
    from emolake.warehouse.database import connect

    with connect(lake) as con:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        if "attribute_neurons" not in views:
            raise NotFoundError("no attribute_neurons view: run the searchlight and `neurons` first")
        frame = con.execute(
            "SELECT attribute, k, neuron FROM attribute_neurons WHERE run_set = ? AND study = ? AND scope = ? "
            f"AND k IN ({', '.join(str(int(k)) for k in ks)})", [run_set, study, scope]).df()
    found = sorted(frame["attribute"].unique())
    if frame.empty:
        raise NotFoundError(f"no attribute neurons for run set {run_set!r}, study {study!r}, scope {scope!r}, "
                            f"k in {ks}", expected="`emolake neurons --k ...` run for these k")
    wanted = attributes or found
    missing = [a for a in wanted if a not in found]
    if missing:
        raise BadInputError("attributes without neuron sets", column="attribute", expected=f"some of {found}",
                            found=missing)
    sets = {}
    for (attribute, k), group in frame[frame["attribute"].isin(wanted)].groupby(["attribute", "k"]):
        sets[(attribute, int(k))] = np.sort(group["neuron"].to_numpy(np.int64))
    absent_k = sorted(set(ks) - {k for _, k in sets})
    if absent_k:
        raise NotFoundError(f"no neuron sets of size {absent_k}", expected=f"k in {sorted({k for _, k in sets})}")
    return sets


def sweep_conditions(config: SweepConfig, neuron_sets: dict[tuple[str, int], np.ndarray], n_layers: int,
                     d_ff: int) -> list[Condition]:
    """Unablated, one condition per attribute set, and the random controls; an empty set is refused."""
    empty = sorted(f"{a} (k = {k})" for (a, k), neurons in neuron_sets.items() if len(neurons) == 0)
    if not neuron_sets or empty:
        raise BadInputError("empty attribute neuron set", column="neurons", expected="at least one neuron per set",
                            found=empty or "no sets")
    sizes = {k: len(neurons) for (_, k), neurons in neuron_sets.items()}  # controls as large as the sets
    controls = random_conditions(config.ks, config.controls, n_layers, d_ff, config.seed,
                                 match=neuron_sets if config.layer_matched else None, sizes=sizes)
    return [unablated_condition(), *attribute_conditions(neuron_sets), *controls]


def evaluate_conditions(loaded, fitted: FittedInference, stimuli: pd.DataFrame, conditions: list[Condition],
                        config: SweepConfig, edit: AblationEdit, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy of every condition on every report-split task: (accuracy rows, prediction rows).

    Conditions go through the model `conditions_per_pass` at a time, stacked along the batch.
    """
    model, tokenizer = loaded.model, loaded.tokenizer
    n_layers, d_ff = len(ffn_hook_points(model)), ffn_width(model)
    tasks = fitted.tasks[fitted.config.report_split]
    if fitted.readout is None:
        raise BadInputError("ablation sweeps need a probe or verbalizer read-out", column="readout",
                            expected="probe or verbalizer", found=fitted.config.readout)
    if any(t.emotion == MULTICLASS for t in tasks):
        raise BadInputError("ablation sweeps use the binary task (as the study)", column="task", found="multiclass")
    ids = split_union(tasks)
    texts = task_texts(stimuli, ids)
    position = {s: i for i, s in enumerate(ids)}
    task_index = {t.emotion: np.array([position[s] for s in t.stimulus_ids]) for t in tasks}
    masks = condition_masks(conditions, n_layers, d_ff)  # [n_conditions, n_layers, d_ff]
    accuracy, predictions = [], []
    for start in range(0, len(conditions), config.conditions_per_pass):
        group = conditions[start:start + config.conditions_per_pass]
        hook = stacked_hook_factory(masks[start:start + len(group)], edit, derive_seed(edit.seed, "noise", start))
        features = readout_features(model, tokenizer, texts, fitted.readout, batch_size=config.batch_size,
                                    copies=len(group), hook_factory=hook, device=fitted.config.device, neuron=config.neuron,
                                    on_batch=(lambda n, c=len(group): progress(n * c)) if progress else None)
        for task in tasks:
            probe = fitted.probes[task.emotion]
            x = features[:, task_index[task.emotion]]  # [group, n, F]
            predicted = probe.predict(x)  # [group, n]
            correct = (predicted == task.labels[None, :]).mean(1)  # [group]
            for condition, acc in zip(group, correct):
                accuracy.append({"condition_id": condition.condition_id, "k": condition.k, "emotion": task.emotion,
                                 "n_stimuli": len(task.labels), "accuracy": float(acc)})
            if config.save_predictions:
                scores = probe.scores(x)[..., 0]
                for condition, pred, score in zip(group, predicted, scores):
                    predictions.append(pd.DataFrame({
                        "condition_id": condition.condition_id, "emotion": task.emotion,
                        "stimulus_id": task.stimulus_ids.astype(str), "label": task.labels, "predicted": pred,
                        "score": score.astype(np.float32)}))
    return pd.DataFrame(accuracy), (pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame())


def make_edit(loaded, fitted: FittedInference, stimuli: pd.DataFrame, config: SweepConfig) -> AblationEdit:
    """The edit of the sweep; mean/noise modes get reference statistics over fit-split stimuli (seeded sample)."""
    return reference_edit(loaded, stimuli, split_union(fitted.tasks[fitted.config.fit_split]), config,
                          fitted.config.device)


def reference_edit(loaded, stimuli: pd.DataFrame, ids: np.ndarray, config: SweepConfig, device: str) -> AblationEdit:
    """The edit of the sweep; mean/noise modes get reference statistics over `ids` (a seeded sample of
    `config.reference_size` of them)."""
    if config.mode not in ("mean", "noise"):
        return AblationEdit(config.mode, config.value, seed=config.seed)
    rng = np.random.default_rng(derive_seed(config.seed, "reference"))
    if len(ids) > config.reference_size:
        ids = np.sort(rng.choice(ids, size=config.reference_size, replace=False))
    model = loaded.model
    mean, sd = reference_statistics(model, loaded.tokenizer, task_texts(stimuli, ids), len(ffn_hook_points(model)),
                                    ffn_width(model), config.batch_size, device, config.neuron)
    return AblationEdit(config.mode, config.value, mean, sd, seed=config.seed)


def write_sweep(txn: LakeTransaction, config: SweepConfig, conditions: list[Condition], accuracy: pd.DataFrame,
                source: dict, predictions: pd.DataFrame | None = None) -> None:
    """Stage conditions and accuracies per (run_set, study, k) partition, and predictions if any.

    `accuracy` has one row per condition, emotion and replicate (columns condition_id, k, emotion,
    replicate, inference_id, n_stimuli, accuracy); `source` names the model, dataset and split scored
    (and the inference_id the predictions belong to).
    """
    for k in sorted({c.k for c in conditions}):
        chosen = [c for c in conditions if c.k == k]
        txn.write("ablations", pa.Table.from_pylist([{
            "condition_id": c.condition_id, "kind": c.kind, "attribute": c.attribute, "draw": c.draw, "seed": c.seed,
            "layer_matched": c.layer_matched, "scope": config.scope, "mode": config.mode, "mode_value": config.value,
            "neurons": c.neurons.astype(np.int32).tolist(), "source": "emolake",
        } for c in chosen]), {"run_set": config.run_set, "study": config.study, "k": k})
        rows = accuracy[accuracy["k"] == k]
        txn.write("ablation_accuracy", pa.table({
            "condition_id": rows["condition_id"].tolist(), "emotion": rows["emotion"].tolist(),
            "replicate": rows["replicate"].astype(np.int64).tolist(), "inference_id": rows["inference_id"].tolist(),
            "model": [source["model"]] * len(rows), "dataset": [source["dataset"]] * len(rows),
            "split": [source["split"]] * len(rows), "n_stimuli": rows["n_stimuli"].tolist(),
            "accuracy": rows["accuracy"].tolist(),
        }), {"run_set": config.run_set, "study": config.study, "k": k})
    if predictions is not None and len(predictions):
        frame = predictions.assign(split=source["split"])
        txn.write("predictions", pa.Table.from_pandas(frame, preserve_index=False),
                  {"inference_id": source["inference_id"], "run_set": config.run_set})


def run_sweep(lake: Lake, loaded, fitted: FittedInference, stimuli: pd.DataFrame, config: SweepConfig,
              neuron_sets: dict[tuple[str, int], np.ndarray] | None = None, progress=None) -> dict:
    """Evaluate the sweep, store it in one transaction, then recompute its statistics.

    `neuron_sets` defaults to the `attribute_neurons` of (run_set, study, scope) for `config.ks`.
    `progress(total)` is called once with the number of condition x stimulus evaluations and returns
    the per-batch callback (or None).
    """
    from emolake.analysis.ablation_stats import refresh_ablation_statistics

    if neuron_sets is None:
        neuron_sets = read_attribute_neurons(lake, config.run_set, config.study, config.ks, config.attributes,
                                             config.scope)
    model = loaded.model
    conditions = sweep_conditions(config, neuron_sets, len(ffn_hook_points(model)), ffn_width(model))
    edit = make_edit(loaded, fitted, stimuli, config)
    n_texts = len(split_union(fitted.tasks[fitted.config.report_split]))
    callback = progress(len(conditions) * n_texts) if progress else None
    accuracy, predictions = evaluate_conditions(loaded, fitted, stimuli, conditions, config, edit, callback)
    accuracy = accuracy.assign(replicate=fitted.config.seed, inference_id=fitted.inference_id)
    source = {"model": fitted.config.model, "dataset": fitted.config.dataset, "split": fitted.config.report_split,
              "inference_id": fitted.inference_id}
    with lake.transaction(f"ablate {config.run_set} {config.study}") as txn:
        write_sweep(txn, config, conditions, accuracy, source, predictions)
    statistics = refresh_ablation_statistics(lake, config.run_set, config.study)
    return {
        "run_set": config.run_set, "study": config.study, "inference_id": fitted.inference_id,
        "conditions": len(conditions), "attribute_sets": len(neuron_sets),
        "controls_per_k": config.controls, "stimuli": n_texts, "evaluations": len(conditions) * n_texts,
        "importance_link": statistics.get("importance_link", "stored"),
    }
