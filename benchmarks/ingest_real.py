"""How long does validated ingest of the real data take, and what do the checks cost?

Times, on the real GoEmotions split (54,263 comments) and the study's release:
- the floor: reading the TSV bytes and splitting lines and fields in plain Python (no checks);
- the naive way: pandas.read_csv + explode of the label ids, with no validation at all;
- ours: `goemotions_pieces` (own checks + great-expectations suite), then the lake transaction;
- `ingest_release` on the release (every part, one transaction);
- the one-off great-expectations import, paid once per process.

    python benchmarks/ingest_real.py [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emolake.ingest.load import write_pieces  # noqa: E402
from emolake.ingest.release import ingest_release  # noqa: E402
from emolake.ingest.stimuli import GOEMOTIONS_SPLITS, goemotions_pieces  # noqa: E402
from emolake.warehouse.lake import Lake  # noqa: E402


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def floor(go: Path) -> int:
    n = 0
    for split in GOEMOTIONS_SPLITS:
        for line in (go / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            n += len(line.split("\t")[1].split(","))
    return n


def naive(go: Path) -> int:
    n = 0
    for split in GOEMOTIONS_SPLITS:
        frame = pd.read_csv(go / f"{split}.tsv", sep="\t", header=None, names=["text", "labels", "id"],
                            quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        n += len(frame.assign(labels=frame["labels"].str.split(",")).explode("labels"))
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    go, release = args.data / "goemotions", args.data / "model_emotion"

    start = time.perf_counter()
    from emolake.ingest.validation import _context
    _context()
    ge_import = time.perf_counter() - start

    t_floor = best_of(args.repeat, lambda: floor(go))
    t_naive = best_of(args.repeat, lambda: naive(go))
    t_ours = best_of(args.repeat, lambda: goemotions_pieces(go))
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        lake.init()
        pieces = goemotions_pieces(go)
        t_write = best_of(args.repeat, lambda: write_pieces(lake, pieces, "benchmark"))
        t_release = best_of(args.repeat, lambda: ingest_release(lake, release))
    rows = sum(p.rows.num_rows for p in pieces)

    print(f"GoEmotions: {rows:,} stimulus-label rows from 54,263 comments (best of {args.repeat})")
    print(f"  floor (read + split, no checks)     {t_floor:7.3f} s")
    print(f"  naive (pandas, no checks)           {t_naive:7.3f} s")
    print(f"  ours  (own checks + GE suite)       {t_ours:7.3f} s   {rows / t_ours:,.0f} rows/s")
    print(f"  ours / naive = {t_ours / t_naive:.1f}x    ours / floor = {t_ours / t_floor:.1f}x")
    print(f"  lake transaction (3 files, fsync)   {t_write:7.3f} s")
    print(f"Release (all RELEASE_PARTS, one transaction): {t_release:.3f} s")
    print(f"great-expectations import (once per process): {ge_import:.3f} s")


if __name__ == "__main__":
    main()
