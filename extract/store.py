"""Activation files in the lake: streaming chunk writes, resume checks, and fast wide reads.

Layout (chosen by measurement, see docs/BENCHMARKS.md): `activations/run_id=R/layer=L/part-CCCCC.parquet`,
one file per run, layer and chunk of stimuli; one row per stimulus (per token for position 'all')
holding the layer's d_ff activations as one float32 list, BYTE_STREAM_SPLIT + zstd. Each chunk's
files (one per layer) are one lake commit, so a chunk is finished when the lake holds it; a killed
extraction leaves whole chunks only, and rerunning writes exactly the missing ones.
The `activations` view (sql/20_extract.sql) unnests the lists into long form.

`extract --store profiles` writes, per chunk ("part"), `profile_parts/run_id=R/layer=L/part-CCCCC.parquet`
(per emotion: the count, sum and sum of squares of each unit's activation, float64) and
`profile_stimuli/run_id=R/part-CCCCC.parquet` (the stimuli the part covers and the emotion each counted
toward), in one commit. A stimulus counts toward its emotion exactly as the `emotion_profile` view over
vectors counts it (single-label stimuli of the run's dataset), so the views that sum the parts
(sql/31_rdms.sql) give the same profiles. Such a run has no per-stimulus vectors: readers of them
(`read_activation_matrix`) refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake, LakeTransaction, write_parquet_atomic
from emolake.warehouse.tables import TABLES


def layer_dir(lake: Lake, run_id: str, layer: int) -> Path:
    return lake.table_dir("activations") / f"run_id={run_id}" / f"layer={layer}"


def chunk_name(chunk: int) -> str:
    return f"part-{chunk:05d}.parquet"


def chunk_path(lake: Lake, run_id: str, layer: int, chunk: int) -> Path:
    return layer_dir(lake, run_id, layer) / chunk_name(chunk)


def activation_table(
    stimulus_ids: Sequence[str],
    values: np.ndarray,  # [n_rows, d_ff] float32
    tokens: np.ndarray | None = None,  # [n_rows] token index (position 'all')
) -> pa.Table:
    """One layer's rows as an Arrow table of the `activations` file schema (no copy of `values`)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    n_rows, d_ff = values.shape
    offsets = pa.array(np.arange(0, (n_rows + 1) * d_ff, d_ff, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)))
    token = pa.array(tokens, pa.int32()) if tokens is not None else pa.nulls(n_rows, pa.int32())
    return pa.table({"stimulus_id": pa.array(stimulus_ids, pa.string()), "token": token, "activation": lists},
                    schema=TABLES["activations"].schema)


def write_activation_file(table: pa.Table, path: Path) -> None:
    write_parquet_atomic(table, path, **TABLES["activations"].write_options)


def done_chunks(lake: Lake, run_id: str, n_layers: int, store: str = "vectors") -> set[int]:
    """Chunks the lake holds in every layer (committed; a killed writer's files do not count).

    Any chunks, not only 0..k: shards (`extract --shard`) commit chunks out of order.
    A profiles chunk is done when `profile_stimuli` lists its part: its rows are committed with the chunk's
    `profile_parts` files (a chunk of only multi-label stimuli has no emotion rows, so no such files) and
    keep their part when `merge_profile_parts` merges the files."""
    if store == "profiles":
        return {int(part.removeprefix("part-").removesuffix(".parquet")) for part in profile_parts_done(lake, run_id)}
    names: dict[int, set[str]] = {}
    for path in lake.live_paths("activations", f"run_id={run_id}"):
        names.setdefault(int(path.parent.name.split("=", 1)[1]), set()).add(path.name)
    chunks = {int(name[5:-8]) for name in names.get(0, ()) if re.fullmatch(r"part-\d{5,}\.parquet", name)}
    return {k for k in chunks if all(chunk_name(k) in names.get(layer, ()) for layer in range(n_layers))}


def run_layers(lake: Lake, run_id: str) -> list[int]:
    layers = {int(p.parent.name.split("=", 1)[1]) for p in lake.live_paths("activations", f"run_id={run_id}")}
    if not layers:
        if is_profiles_run(lake, run_id):
            raise BadInputError(
                f"run {run_id!r} stores emotion profiles (extract --store profiles), not one activation vector per "
                "stimulus; re-extract it with `emolake extract ... --store vectors` for per-stimulus analyses",
                column="store", expected="vectors", found="profiles")
        raise NotFoundError(f"no activations for run {run_id!r} in {lake.root}")
    return sorted(layers)


def is_profiles_run(lake: Lake, run_id: str) -> bool:
    """Whether the lake holds `run_id` as emotion profiles (`extract --store profiles`)."""
    return bool(lake.live_files("profile_stimuli", f"run_id={run_id}"))


def profile_labels(lake: Lake, dataset: str) -> dict[str, list[str]]:
    """stimulus_id -> the emotions it counts toward, as the `emotion_profile` view over vectors joins them:
    the dataset's rows with n_labels = 1 (one emotion; a stimulus id on several such rows counts once per row)."""
    from emolake.warehouse.database import connect

    with connect(lake) as con:
        rows = con.execute("SELECT stimulus_id, emotion FROM stimuli WHERE dataset = ? AND n_labels = 1 "
                           "ORDER BY stimulus_id, emotion", [dataset]).fetchall()
    labels: dict[str, list[str]] = {}
    for stimulus_id, emotion in rows:
        labels.setdefault(stimulus_id, []).append(emotion)
    return labels


def profile_membership(row_ids: Sequence[str], labels: Mapping[str, Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """(emotions present, `[n_emotions, n_rows]` float64 multiplicity of each row in each emotion's sum)."""
    emotions = sorted({e for sid in set(row_ids) for e in labels.get(sid, ())})
    lookup = {e: k for k, e in enumerate(emotions)}
    membership = np.zeros((len(emotions), len(row_ids)))  # [n_emotions, n_rows]
    for row, sid in enumerate(row_ids):
        for emotion in labels.get(sid, ()):
            membership[lookup[emotion], row] += 1.0
    return emotions, membership


def profile_part_table(part: str, emotions: Sequence[str], membership: np.ndarray,
                       values: np.ndarray) -> pa.Table:
    """One layer's `profile_parts` rows: per emotion, count, sum and sum of squares of each unit.

    `membership` [n_emotions, n_rows] from `profile_membership`; `values` [n_rows, d_ff] float32 activations,
    summed in float64 (each float32 value is exact in float64; only the additions round)."""
    wide = np.asarray(values, dtype=np.float64)  # [n_rows, d_ff]
    sums = membership @ wide  # [n_emotions, d_ff]
    sumsqs = membership @ (wide * wide)  # [n_emotions, d_ff]
    d_ff = wide.shape[1]
    offsets = pa.array(np.arange(0, (len(emotions) + 1) * d_ff, d_ff, dtype=np.int32))
    return pa.table({
        "part": pa.array([part] * len(emotions), pa.string()),
        "emotion": pa.array(list(emotions), pa.string()),
        "n_rows": pa.array(membership.sum(axis=1).astype(np.int64)),
        "value_sum": pa.ListArray.from_arrays(offsets, pa.array(sums.reshape(-1))),
        "value_sumsq": pa.ListArray.from_arrays(offsets, pa.array(sumsqs.reshape(-1))),
    }, schema=TABLES["profile_parts"].schema)


def profile_stimuli_table(part: str, stimulus_ids: Sequence[str], row_ids: Sequence[str],
                          labels: Mapping[str, Sequence[str]]) -> pa.Table:
    """The `profile_stimuli` rows of a part: each stimulus once per emotion it counted toward (NULL: none)."""
    rows_per_stimulus: dict[str, int] = {}
    for sid in row_ids:
        rows_per_stimulus[sid] = rows_per_stimulus.get(sid, 0) + 1
    rows = [{"part": part, "stimulus_id": sid, "emotion": emotion, "n_rows": rows_per_stimulus.get(sid, 0)}
            for sid in stimulus_ids for emotion in (labels.get(sid) or [None])]
    return pa.Table.from_pylist(rows, schema=TABLES["profile_stimuli"].schema)


def write_profile_chunk(txn: LakeTransaction, run_id: str, chunk: int, stimulus_ids: Sequence[str],
                        row_ids: Sequence[str], layers: Sequence[np.ndarray],
                        labels: Mapping[str, Sequence[str]]) -> None:
    """Stage one chunk of a profiles run: a `profile_parts` file per layer (`layers[l]`: [n_rows, d_ff]
    float32) and the `profile_stimuli` file recording the stimuli it covers, all in `txn`'s one commit."""
    part = chunk_name(chunk)
    emotions, membership = profile_membership(row_ids, labels)
    if emotions:
        for layer, values in enumerate(layers):
            txn.write("profile_parts", profile_part_table(part, emotions, membership, values),
                      {"run_id": run_id, "layer": layer}, replace=False, part_name=part)
    txn.write("profile_stimuli", profile_stimuli_table(part, stimulus_ids, row_ids, labels), {"run_id": run_id},
              replace=False, part_name=part)


def read_activation_matrix(lake: Lake, run_id: str, layers: Sequence[int] | None = None) -> tuple[list[str], np.ndarray]:
    """(stimulus ids, `[n_rows, n_layers * d_ff]` float32): a run's activations as one wide matrix.

    Columns are the chosen layers in ascending order, `d_ff` units each: with all layers, column j is
    neuron j (= layer * d_ff + unit). Rows are in stored order (the order stimuli were selected);
    for position 'all' there is one row per token and stimulus ids repeat.
    """
    available = run_layers(lake, run_id)
    layers = available if layers is None else sorted(layers)
    missing = sorted(set(layers) - set(available))
    if missing:
        raise NotFoundError(f"run {run_id!r} has no layers {missing}", expected=f"layers in {available}")
    ids: list[str] | None = None
    matrix = None
    for j, layer in enumerate(layers):
        parts = lake.live_paths("activations", f"run_id={run_id}/layer={layer}")
        table = pa.concat_tables(lake.read_table(p, columns=["stimulus_id", "activation"]) for p in parts)
        column = table.column("activation").combine_chunks()
        values = column.values.to_numpy(zero_copy_only=False)
        n_rows = table.num_rows
        d_ff = len(values) // max(n_rows, 1)
        if matrix is None:
            ids = table.column("stimulus_id").to_pylist()
            matrix = np.empty((n_rows, len(layers) * d_ff), dtype=np.float32)  # [n_rows, n_neurons]
        elif table.column("stimulus_id").to_pylist() != ids:
            raise NotFoundError(f"run {run_id!r}: layer {layer} holds other stimuli than layer {layers[0]}")
        matrix[:, j * d_ff:(j + 1) * d_ff] = values.reshape(n_rows, d_ff)
    return ids or [], matrix if matrix is not None else np.empty((0, 0), np.float32)


def profile_parts_done(lake: Lake, run_id: str) -> set[str]:
    """The parts (chunk file names) whose stimuli a profiles run holds, from `profile_stimuli`'s rows."""
    paths = lake.live_paths("profile_stimuli", f"run_id={run_id}")
    return {part for p in paths for part in lake.read_table(p, columns=["part"]).column("part").unique().to_pylist()}


def merge_profile_parts(lake: Lake, run_id: str, command: str) -> int:
    """Replace a profiles run's part files by one per layer, in one commit: per emotion, the parts'
    counts and sums added in float64, an earlier merge's file first and then the parts in chunk
    order, so a run merged, resumed and merged again adds in the order of a run merged once.
    `profile_stimuli`'s rows keep the part that counted each stimulus, so resume and the coverage
    record are unchanged. Returns the number of files merged away (0: nothing to merge). Files
    shrink from parts x emotions rows to emotions rows."""
    def merged_first(path: Path) -> tuple[bool, str]:
        return not path.name.startswith("part-merged-"), path.name

    by_layer: dict[str, list[Path]] = {}
    for f in lake.live_files("profile_parts", f"run_id={run_id}"):
        by_layer.setdefault(f.partition, []).append(lake.root / f.path)
    stimuli = sorted(lake.live_paths("profile_stimuli", f"run_id={run_id}"), key=merged_first)
    if all(len(paths) <= 1 for paths in by_layer.values()) and len(stimuli) <= 1:
        return 0
    with lake.transaction(f"{command} (merge profile parts)") as txn:
        for partition, paths in sorted(by_layer.items()):
            table = pa.concat_tables(lake.read_table(p) for p in sorted(paths, key=merged_first))
            emotions = sorted(set(table.column("emotion").to_pylist()))
            index = np.searchsorted(emotions, table.column("emotion").to_numpy(zero_copy_only=False))
            d_ff = len(table.column("value_sum")[0])
            counts = np.zeros(len(emotions), dtype=np.int64)
            np.add.at(counts, index, table.column("n_rows").to_numpy())
            merged = {}
            for column in ("value_sum", "value_sumsq"):
                values = table.column(column).combine_chunks().values.to_numpy(zero_copy_only=False)
                total = np.zeros((len(emotions), d_ff))  # [n_emotions, d_ff]
                for row, row_values in enumerate(values.reshape(table.num_rows, d_ff)):
                    total[index[row]] += row_values
                merged[column] = total
            offsets = pa.array(np.arange(0, (len(emotions) + 1) * d_ff, d_ff, dtype=np.int32))
            out = pa.table({
                "part": pa.array(["merged"] * len(emotions), pa.string()), "emotion": pa.array(emotions, pa.string()),
                "n_rows": pa.array(counts),
                **{c: pa.ListArray.from_arrays(offsets, pa.array(v.reshape(-1))) for c, v in merged.items()},
            }, schema=TABLES["profile_parts"].schema)
            txn.write("profile_parts", out, {"run_id": run_id, "layer": int(partition.rsplit("=", 1)[1])},
                      part_name=f"part-merged-{txn.load_id}.parquet")
        txn.write("profile_stimuli", pa.concat_tables(lake.read_table(p) for p in stimuli), {"run_id": run_id},
                  part_name=f"part-merged-{txn.load_id}.parquet")
    return sum(len(paths) for paths in by_layer.values()) + len(stimuli)


def read_profile_sums(lake: Lake, run_id: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(emotions, counts `[n_emotions]`, sums `[n_emotions, n_layers * d_ff]` float64) of a profiles run,
    added up over its parts; column j is neuron j. The `profile_sums` view's numbers, read with pyarrow."""
    by_layer: dict[int, list[Path]] = {}
    for path in lake.live_paths("profile_parts", f"run_id={run_id}"):
        by_layer.setdefault(int(path.parent.name.split("=", 1)[1]), []).append(path)
    if not by_layer:
        raise NotFoundError(f"no emotion profiles for run {run_id!r} in {lake.root}")
    layers = sorted(by_layer)
    if layers != list(range(len(layers))):
        raise NotFoundError(f"run {run_id!r}: profile_parts hold layers {layers}", expected="layers 0..n-1")
    counts: dict[str, int] | None = None
    blocks = []
    for layer in layers:
        table = pa.concat_tables(lake.read_table(p, columns=["emotion", "n_rows", "value_sum"]) for p in by_layer[layer])
        emotions = table.column("emotion").to_pylist()
        n_rows = table.column("n_rows").to_numpy()
        values = table.column("value_sum").combine_chunks().values.to_numpy(zero_copy_only=False)
        d_ff = len(values) // max(len(emotions), 1)
        values = values.reshape(len(emotions), d_ff)  # [n_part_rows, d_ff]
        layer_counts: dict[str, int] = {}
        layer_sums: dict[str, np.ndarray] = {}
        for row, emotion in enumerate(emotions):
            layer_counts[emotion] = layer_counts.get(emotion, 0) + int(n_rows[row])
            layer_sums[emotion] = layer_sums[emotion] + values[row] if emotion in layer_sums else values[row].copy()
        if counts is None:
            counts = layer_counts
        elif layer_counts != counts:
            raise NotFoundError(f"run {run_id!r}: layer {layer} counts other stimuli than layer {layers[0]}")
        blocks.append(np.stack([layer_sums[e] for e in sorted(counts)]))
    names = sorted(counts or {})
    return names, np.array([counts[e] for e in names], dtype=np.int64), np.concatenate(blocks, axis=1)
