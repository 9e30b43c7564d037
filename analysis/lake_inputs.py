"""What the analyses read from the lake: emotion profiles of a run set, attribute values and
human RDMs of a study, all over one sorted list of emotions (neutral excluded).

Reads go through the warehouse views (`emotion_profile`, `emotion_attributes`, `human_rdm`,
`similarity_judgments`), so Python sees exactly what SQL users see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from emolake.warehouse.database import connect
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake

from .rdm import pair_indices, tie_exact

EXCLUDED_EMOTIONS = ("neutral",)


@dataclass(frozen=True)
class Profiles:
    """Emotion profiles of the runs of a run set."""

    run_set: str
    run_ids: list[str]
    emotions: list[str]
    neurons: np.ndarray  # [n_neurons] global neuron id
    layers: np.ndarray  # [n_neurons]
    units: np.ndarray  # [n_neurons]
    values: np.ndarray  # [n_runs, n_emotions, n_neurons] float64

    def select(self, emotions: list[str]) -> "Profiles":
        index = [self.emotions.index(e) for e in emotions]
        return Profiles(self.run_set, self.run_ids, list(emotions), self.neurons, self.layers, self.units,
                        self.values[:, index])


@dataclass(frozen=True)
class Attributes:
    """Per-emotion attribute values of a study."""

    study: str
    emotions: list[str]
    attributes: list[str]
    values: np.ndarray  # [n_emotions, n_attributes]

    def select(self, emotions: list[str]) -> "Attributes":
        index = [self.emotions.index(e) for e in emotions]
        return Attributes(self.study, list(emotions), self.attributes, self.values[index])


def fetch(lake: Lake, sql: str, params: list | None = None) -> pa.Table:
    """Rows of read-only `sql` (with ? parameters) over the warehouse views, as Arrow."""
    with connect(lake) as con:
        return con.sql(sql, params=params or []).to_arrow_table()


def run_set_runs(lake: Lake, run_set: str) -> list[str]:
    """Run ids of `run_set` (a run's run_set defaults to its run_id), sorted."""
    rows = fetch(lake, "SELECT run_id FROM runs WHERE run_set = ? ORDER BY run_id", [run_set])
    run_ids = rows.column("run_id").to_pylist()
    if not run_ids:
        known = fetch(lake, "SELECT DISTINCT run_set FROM runs ORDER BY 1").column(0).to_pylist()
        raise NotFoundError(f"no runs in run set {run_set!r}", expected=f"one of {known}" if known else "an extracted run")
    return run_ids


def require_complete_runs(lake: Lake, run_set: str, allow_incomplete: bool = False) -> list[str]:
    """Run ids of `run_set`; a run whose manifest status is not 'complete' is refused (exit 2).

    An interrupted `extract` leaves status 'running' and only some chunks: analysing it would silently
    use a subset of the stimuli. `allow_incomplete` (the CLI's --allow-incomplete) lets it through
    with a warning on stderr. A run set without runs passes (each analysis says what it misses).
    """
    rows = fetch(lake, "SELECT run_id, status FROM runs WHERE run_set = ? ORDER BY run_id", [run_set]).to_pylist()
    incomplete = [(r["run_id"], r["status"]) for r in rows if r["status"] != "complete"]
    if incomplete and not allow_incomplete:
        run_id, status = incomplete[0]
        raise BadInputError(
            f"run set {run_set!r} has {len(incomplete)} run(s) that are not complete; finish them (run the same "
            "`emolake extract` again) or pass --allow-incomplete", column="runs.status",
            expected="status 'complete' for every run of the run set", found=f"{run_id}: {status}")
    if incomplete:
        from emolake.warehouse.console import err

        err.print(f"[yellow]warning:[/yellow] analysing {len(incomplete)} incomplete run(s) of {run_set!r} "
                  f"(--allow-incomplete): {', '.join(r for r, _ in incomplete[:5])}")
    return [r["run_id"] for r in rows]


def emotion_profiles(lake: Lake, run_set: str) -> Profiles:
    """Profiles of every run of `run_set` (neutral excluded): the `emotion_profile` view's
    definition (mean over the emotion's single-label stimuli), computed from the activation
    matrices read with pyarrow (`extract.store.read_activation_matrix`) for speed, or, for a run
    extracted with `--store profiles`, from its sums (`extract.store.read_profile_sums`)."""
    from emolake.extract.store import is_profiles_run, read_activation_matrix, read_profile_sums

    run_ids = run_set_runs(lake, run_set)
    runs = fetch(lake, "SELECT run_id, dataset, n_layers, d_ff FROM runs WHERE run_set = ? ORDER BY run_id",
                  [run_set]).to_pylist()
    shapes = {(r["n_layers"], r["d_ff"]) for r in runs}
    if len(shapes) != 1:
        raise BadInputError(f"run set {run_set!r} mixes layer shapes", expected="one (n_layers, d_ff)", found=shapes)
    values, emotions = [], None
    for run in runs:
        if is_profiles_run(lake, run["run_id"]):
            names, counts, sums = read_profile_sums(lake, run["run_id"])  # [n_emotions], [n_emotions, n_neurons]
            kept = [k for k, e in enumerate(names) if e not in EXCLUDED_EMOTIONS]
            run_emotions = [names[k] for k in kept]
            if emotions is None:
                emotions = run_emotions
            elif run_emotions != emotions:
                raise BadInputError(f"run set {run_set!r}: run {run['run_id']!r} covers other emotions than the "
                                    "first run", expected=emotions, found=run_emotions)
            if not emotions:
                raise NotFoundError(f"run {run['run_id']!r} has no single-label stimuli of an emotion")
            values.append(sums[kept] / counts[kept, None])  # [n_emotions, n_neurons]
            continue
        labels = _labels(lake, run["dataset"])
        ids, matrix = read_activation_matrix(lake, run["run_id"])  # [n_rows, n_neurons] float32
        row_emotion = [labels.get(i) for i in ids]
        run_emotions = sorted({e for e in row_emotion if e is not None})
        if emotions is None:
            emotions = run_emotions
        elif run_emotions != emotions:
            raise BadInputError(f"run set {run_set!r}: run {run['run_id']!r} covers other emotions than the first run",
                                expected=emotions, found=run_emotions)
        if not emotions:
            raise NotFoundError(f"run {run['run_id']!r} has no single-label stimuli of an emotion")
        lookup = {e: k for k, e in enumerate(emotions)}
        membership = np.zeros((len(emotions), len(ids)))  # [n_emotions, n_rows], rows averaged per emotion
        for row, emotion in enumerate(row_emotion):
            if emotion is not None:
                membership[lookup[emotion], row] = 1.0
        membership /= membership.sum(axis=1, keepdims=True)
        values.append(membership @ matrix.astype(np.float64))  # [n_emotions, n_neurons]
    n_layers, d_ff = shapes.pop()
    neurons = np.arange(n_layers * d_ff)
    return Profiles(run_set, run_ids, emotions, neurons, neurons // d_ff, neurons % d_ff, np.stack(values))


def _labels(lake: Lake, dataset: str) -> dict[str, str]:
    """stimulus_id -> emotion of the dataset's single-label stimuli (the profile policy), neutral excluded."""
    table = fetch(lake, "SELECT stimulus_id, emotion FROM stimuli WHERE dataset = ? AND n_labels = 1", [dataset])
    return {s: e for s, e in zip(table.column("stimulus_id").to_pylist(), table.column("emotion").to_pylist())
            if e not in EXCLUDED_EMOTIONS}


def attribute_values(lake: Lake, study: str) -> Attributes:
    """The study's emotion x attribute table from `emotion_attributes` (neutral excluded)."""
    table = fetch(lake, """
        SELECT emotion, attribute, value FROM emotion_attributes
        WHERE study = ? AND emotion <> 'neutral' ORDER BY emotion, attribute
    """, [study])
    if table.num_rows == 0:
        raise NotFoundError(f"study {study!r} has no emotion_attributes")
    emotions = sorted(set(table.column("emotion").to_pylist()))
    attributes = sorted(set(table.column("attribute").to_pylist()))
    values = np.full((len(emotions), len(attributes)), np.nan)
    e = np.searchsorted(np.array(emotions), table.column("emotion").to_numpy(zero_copy_only=False))
    a = np.searchsorted(np.array(attributes), table.column("attribute").to_numpy(zero_copy_only=False))
    values[e, a] = table.column("value").to_numpy()
    if np.isnan(values).any():
        i, j = np.argwhere(np.isnan(values))[0]
        raise BadInputError(f"study {study!r}: emotion {emotions[i]!r} has no value for attribute {attributes[j]!r}",
                            expected="a value for every emotion and attribute")
    return Attributes(study, emotions, attributes, values)


def _pair_vector(table: pa.Table, emotions: list[str]) -> np.ndarray:
    n = len(emotions)
    square = np.full((n, n), np.nan)
    lookup = {e: k for k, e in enumerate(emotions)}
    for a, b, d in zip(*(table.column(c).to_pylist() for c in ("emotion_a", "emotion_b", "distance"))):
        if a in lookup and b in lookup:
            square[lookup[a], lookup[b]] = square[lookup[b], lookup[a]] = d
    i, j = pair_indices(n)
    return square[i, j]


def human_emotions(lake: Lake, study: str) -> list[str]:
    """Sorted emotions of the study's `human_rdm` (neutral excluded); NotFoundError if it has none."""
    table = fetch(lake, "SELECT emotion_a, emotion_b FROM human_rdm WHERE study = ?", [study])
    if table.num_rows == 0:
        raise NotFoundError(f"study {study!r} has no human similarity judgments (human_rdm is empty)")
    names = set(table.column("emotion_a").to_pylist()) | set(table.column("emotion_b").to_pylist())
    return sorted(names - set(EXCLUDED_EMOTIONS))


def human_rdm(lake: Lake, study: str, emotions: list[str]) -> np.ndarray:
    """The study's mean human RDM over `emotions` [n_pairs] from the `human_rdm` view."""
    table = fetch(lake, "SELECT emotion_a, emotion_b, distance FROM human_rdm WHERE study = ?", [study])
    if table.num_rows == 0:
        raise NotFoundError(f"study {study!r} has no human similarity judgments (human_rdm is empty)")
    vector = _pair_vector(table, emotions)
    if np.isnan(vector).any():
        raise BadInputError(f"study {study!r}: human_rdm lacks {int(np.isnan(vector).sum())} of the {len(vector)} "
                            "emotion pairs", expected="a distance for every pair")
    return tie_exact(vector)  # a mean computed in SQL: equal means must stay equal floats


def rater_rdms(lake: Lake, study: str, emotions: list[str]) -> tuple[list[str], np.ndarray]:
    """(raters, per-rater RDMs [n_raters, n_pairs], NaN where a rater judged no pair), tie-exact."""
    table = fetch(lake, """
        SELECT rater, emotion_a, emotion_b, avg(distance) AS distance FROM similarity_judgments
        WHERE study = ? GROUP BY rater, emotion_a, emotion_b ORDER BY rater
    """, [study])
    raters = sorted(set(table.column("rater").to_pylist()))
    rater_column = np.array(table.column("rater").to_pylist(), dtype=object)
    rdms = np.stack([_pair_vector(table.filter(pa.array(rater_column == r)), emotions) for r in raters]) \
        if raters else np.empty((0, len(emotions) * (len(emotions) - 1) // 2))
    return raters, tie_exact(rdms.T).T if raters else rdms


def shared_emotions(*groups: list[str]) -> list[str]:
    """Sorted emotions present in every group (neutral excluded); at least 4 are needed."""
    common = sorted(set.intersection(*(set(g) for g in groups)) - set(EXCLUDED_EMOTIONS))
    if len(common) < 4:
        raise BadInputError("too few emotions shared by the model profiles and the study",
                            expected="at least 4", found=common)
    return common
