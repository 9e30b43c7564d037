"""Storage of `extract --store profiles` vs full vectors: bytes per stimulus on GoEmotions test.

Ingests GoEmotions into a fresh lake, extracts the first `--n` test stimuli with the bundled
all-MiniLM-L6-v2 (its default template and mean read-out, default chunk size) twice, as vectors and as
profiles, and measures the bytes of each run's committed files: `activations` for vectors,
`profile_parts` + `profile_stimuli` for profiles. It checks that both give the same
`emotion_profile`, then states the arithmetic for the full split (`--full-n`, 5,427 stimuli):
vectors grow with the stimuli; a finished profiles run holds one merged file per layer (one row per
emotion: 28 on the full split) plus one small `profile_stimuli` row per stimulus. `--full` also
extracts the whole split as profiles and measures it.

    python benchmarks/profiles_storage.py [--n 500] [--full] [--data ../shared/data] [--lake DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emolake.extract.models.loading import load_model  # noqa: E402
from emolake.extract.run import ExtractSettings, extract_run  # noqa: E402
from emolake.warehouse.database import query  # noqa: E402
from emolake.warehouse.lake import Lake  # noqa: E402

TABLES = {"vectors": ("activations",), "profiles": ("profile_parts", "profile_stimuli")}


def run_bytes(lake: Lake, run_id: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Bytes on disk of the run's committed files, per table."""
    return {t: sum((lake.root / f.path).stat().st_size for f in lake.live_files(t, f"run_id={run_id}")) for t in tables}


def extract(lake: Lake, loaded, store: str, limit: int | None) -> tuple[str, float]:
    start = time.perf_counter()
    summary = extract_run(lake, ExtractSettings(dataset="goemotions", split="test", limit=limit, store=store,
                                                run_set=f"{store}-{limit or 'all'}", device="cpu"), loaded=loaded)
    return summary["run_id"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="test stimuli extracted both ways")
    parser.add_argument("--full-n", type=int, default=5427, help="stimuli of the full split, for the arithmetic")
    parser.add_argument("--full", action="store_true", help="also extract the full split as profiles and measure it")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--lake", type=Path, default=None, help="lake folder [default: a temporary one]")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    folder = args.lake or Path(tempfile.mkdtemp(prefix="profiles-storage-"))
    lake = Lake(folder)
    if not lake.exists:
        lake.init()
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "--lake", str(folder), "ingest", "goemotions",
                        str(args.data / "goemotions")], check=True, stdout=subprocess.DEVNULL)
    loaded = load_model(None, "cpu")
    runs, seconds, sizes = {}, {}, {}
    for store in ("vectors", "profiles"):
        runs[store], seconds[store] = extract(lake, loaded, store, args.n)
        sizes[store] = run_bytes(lake, runs[store], TABLES[store])

    sql = "SELECT emotion, neuron, value, n_stimuli FROM emotion_profile WHERE run_id = '{}' ORDER BY emotion, neuron"
    vec, prof = (query(lake, sql.format(runs[s])) for s in ("vectors", "profiles"))
    assert vec.column("n_stimuli").to_pylist() == prof.column("n_stimuli").to_pylist()
    max_diff = float(np.max(np.abs(vec.column("value").to_numpy() - prof.column("value").to_numpy())))
    emotions = query(lake, f"SELECT count(DISTINCT emotion) FROM profile_parts WHERE run_id = '{runs['profiles']}'"
                     ).column(0)[0].as_py()
    manifest = query(lake, f"SELECT chunk_size, n_layers, d_ff FROM runs WHERE run_id = '{runs['profiles']}'").to_pylist()[0]
    parts = len(lake.live_files("profile_stimuli", f"run_id={runs['profiles']}"))

    n = args.n
    vec_bytes = sizes["vectors"]["activations"]
    prof_bytes = sum(sizes["profiles"].values())
    print(f"# emolake profiles storage, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"model {loaded.name}: {manifest['n_layers']} layers x {manifest['d_ff']} = "
          f"{manifest['n_layers'] * manifest['d_ff']} neurons; chunk size {manifest['chunk_size']}")
    print(f"sample: first {n} GoEmotions test stimuli; {parts} part(s); {emotions} emotions with single-label stimuli")
    print(f"emotion_profile vectors vs profiles: same rows, max |difference| {max_diff:.3g}")
    print("| store | bytes | bytes / stimulus | extract s (wall, busy VM) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| vectors (activations) | {vec_bytes:,} | {vec_bytes / n:,.1f} | {seconds['vectors']:.1f} |")
    for table, size in sizes["profiles"].items():
        print(f"| profiles: {table} | {size:,} | {size / n:,.1f} | |")
    print(f"| profiles (total) | {prof_bytes:,} | {prof_bytes / n:,.1f} | {seconds['profiles']:.1f} |")
    print(f"ratio vectors / profiles at n = {n}: {vec_bytes / prof_bytes:,.1f}x")

    # the full split by arithmetic: vectors per stimulus x N; profiles: 28 emotion rows (all layers) + stimuli rows
    full_n = args.full_n
    full_parts = math.ceil(full_n / manifest["chunk_size"])
    per_emotion = sizes["profiles"]["profile_parts"] / emotions  # bytes of one emotion's rows, all layers
    stimuli_per = sizes["profiles"]["profile_stimuli"] / n
    vec_full = vec_bytes / n * full_n
    prof_full = 28 * per_emotion + stimuli_per * full_n
    print(f"full split ({full_n:,} stimuli, written in {full_parts} parts of {manifest['chunk_size']}, merged at the "
          f"end): vectors {vec_bytes / n:,.1f} x {full_n:,} = {vec_full / 1e6:,.1f} MB; profiles 28 x "
          f"{per_emotion:,.0f} + {stimuli_per:.1f} x {full_n:,} = {prof_full / 1e6:,.2f} MB "
          f"({prof_full / full_n:,.0f} bytes / stimulus); ratio {vec_full / prof_full:,.0f}x")
    if args.full:
        run_id, wall = extract(lake, loaded, "profiles", None)
        measured = run_bytes(lake, run_id, TABLES["profiles"])
        total = sum(measured.values())
        print(f"full split measured as profiles: {total:,} bytes ({measured}), {total / full_n:,.1f} bytes / stimulus, "
              f"{wall:.0f} s; ratio to the vectors estimate {vec_full / total:,.0f}x")


if __name__ == "__main__":
    main()
