"""Activation files in the lake: streaming chunk writes, resume checks, and fast wide reads.

Layout (chosen by measurement, see docs/BENCHMARKS.md): `activations/run_id=R/layer=L/part-CCCCC.parquet`,
one file per run, layer and chunk of stimuli; one row per stimulus (per token for position 'all')
holding the layer's d_ff activations as one float32 list, BYTE_STREAM_SPLIT + zstd. Each chunk's
files (one per layer) are one lake commit, so a chunk is finished when the lake holds it; a killed
extraction leaves whole chunks only, and rerunning writes exactly the missing ones.
The `activations` view (sql/20_extract.sql) unnests the lists into long form.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from emolake.warehouse.errors import NotFoundError
from emolake.warehouse.lake import Lake, write_parquet_atomic
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


def done_chunks(lake: Lake, run_id: str, n_layers: int) -> set[int]:
    """Chunks the lake holds in every layer (committed; a killed writer's files do not count)."""
    names: dict[int, set[str]] = {}
    for path in lake.live_paths("activations", f"run_id={run_id}"):
        names.setdefault(int(path.parent.name.split("=", 1)[1]), set()).add(path.name)
    return {k for k in range(max((len(v) for v in names.values()), default=0) + 1)
            if all(chunk_name(k) in names.get(layer, ()) for layer in range(n_layers))}


def run_layers(lake: Lake, run_id: str) -> list[int]:
    layers = {int(p.parent.name.split("=", 1)[1]) for p in lake.live_paths("activations", f"run_id={run_id}")}
    if not layers:
        raise NotFoundError(f"no activations for run {run_id!r} in {lake.root}")
    return sorted(layers)


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
