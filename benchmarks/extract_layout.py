"""Which Parquet layout stores FFN activations best? Measured on real MiniLM activations.

Captures the bundled all-MiniLM-L6-v2's 9,216 FFN activations at the mask position of real
GoEmotions test texts, then writes the same numbers in several layouts and encodings and
reports bytes per stored activation, write time and the time to read them back as a wide
[stimuli x neurons] float32 matrix (pyarrow) and to count them in DuckDB in long form.

    python benchmarks/extract_layout.py [--n 1000] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emolake.extract.capture import capture, encode  # noqa: E402
from emolake.extract.models.loading import load_model  # noqa: E402
from emolake.extract.prompts import DEFAULT_TEMPLATE, fill_template  # noqa: E402
from emolake.extract.store import activation_table  # noqa: E402
from emolake.warehouse.tables import ACTIVATION_WRITE_OPTIONS  # noqa: E402

ZSTD = {"compression": "zstd", "compression_level": 3}
LAYOUTS = {
    # name: (row layout, writer options)
    "long rows, zstd (dictionary on)": ("long", ZSTD),
    "long rows, BYTE_STREAM_SPLIT value + zstd": ("long", {**ZSTD, "use_dictionary": ["stimulus_id", "unit"],
                                                          "column_encoding": {"value": "BYTE_STREAM_SPLIT"}}),
    "list per stimulus+layer, zstd (dictionary on)": ("list", ZSTD),
    "list per stimulus+layer, PLAIN + zstd": ("list", {**ZSTD, "use_dictionary": ["stimulus_id"]}),
    "list per stimulus+layer, BYTE_STREAM_SPLIT + zstd (chosen)": ("list", ACTIVATION_WRITE_OPTIONS),
    "list per stimulus+layer, BYTE_STREAM_SPLIT + zstd level 9": ("list", {**ACTIVATION_WRITE_OPTIONS,
                                                                          "compression_level": 9}),
    "list per stimulus+layer, uncompressed PLAIN": ("list", {"compression": "none", "use_dictionary": ["stimulus_id"]}),
}


def long_table(ids: list[str], values: np.ndarray) -> pa.Table:  # values: [n, d_ff]
    n, d_ff = values.shape
    return pa.table({
        "stimulus_id": pa.array(np.repeat(np.array(ids, dtype=object), d_ff), pa.string()),
        "unit": pa.array(np.tile(np.arange(d_ff, dtype=np.int16), n)),
        "value": pa.array(values.reshape(-1)),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="GoEmotions test texts to capture")
    parser.add_argument("--data", default=os.environ.get("EMOLAKE_SHARED_DATA", "../shared/data"))
    args = parser.parse_args()
    lines = (Path(args.data) / "goemotions" / "test.tsv").read_text(encoding="utf-8").splitlines()[:args.n]
    texts = [line.split("\t")[0] for line in lines]
    ids = [f"test-{i:05d}" for i in range(len(texts))]
    loaded = load_model()
    prompts = fill_template(DEFAULT_TEMPLATE, texts, loaded.tokenizer.mask_token)
    captured = capture(loaded, encode(loaded, prompts, "mask", ids), "mask", 64)
    layers = [captured.layer(layer) for layer in range(loaded.n_layers)]  # each [n, d_ff]
    n_values = len(texts) * loaded.n_layers * loaded.d_ff
    print(f"{len(texts)} GoEmotions test prompts x {loaded.n_layers} layers x {loaded.d_ff} units = {n_values:,} activations "
          f"(raw float32: 4.00 bytes each)")
    print(f"{'layout':62s} {'bytes/act':>9s} {'write s':>8s} {'wide read s':>11s} {'duckdb count s':>14s}")
    for name, (layout, options) in LAYOUTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            start = time.perf_counter()
            for layer, values in enumerate(layers):
                table = activation_table(ids, values) if layout == "list" else long_table(ids, values)
                folder = root / f"layer={layer}"
                folder.mkdir()
                pq.write_table(table, folder / "part-00000.parquet", **options)
            write_s = time.perf_counter() - start
            size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
            start = time.perf_counter()
            for layer in range(loaded.n_layers):
                table = pq.read_table(root / f"layer={layer}" / "part-00000.parquet")
                if layout == "list":
                    wide = table.column("activation").combine_chunks().values.to_numpy().reshape(len(ids), -1)
                else:
                    wide = table.column("value").to_numpy().reshape(len(ids), -1)
                assert np.array_equal(wide, layers[layer])
            read_s = time.perf_counter() - start
            con = duckdb.connect()
            glob = str(root / "*" / "*.parquet")
            start = time.perf_counter()
            if layout == "list":
                count = con.sql(f"SELECT count(*) FROM (SELECT unnest(activation) FROM read_parquet('{glob}'))").fetchall()[0][0]
            else:
                count = con.sql(f"SELECT count(*) FROM read_parquet('{glob}') WHERE value IS NOT NULL").fetchall()[0][0]
            count_s = time.perf_counter() - start
            assert count == n_values
        print(f"{name:62s} {size / n_values:9.3f} {write_s:8.2f} {read_s:11.3f} {count_s:14.3f}")


if __name__ == "__main__":
    main()
