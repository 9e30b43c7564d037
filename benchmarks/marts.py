"""Materialised marts and `status`: before (computing view, counting every view) vs after, in one run.

On a lake holding the study's release (`emolake ingest model-emotion`; with `--lake`, an existing
one, else one is filled from `../shared/data/model_emotion` or `EMOLAKE_SHARED_DATA`), measures:

- `SELECT * FROM model_rdm` (the stored rows) vs `SELECT * FROM model_rdm_computed` (the view as it
  was before: computed from every activation), in DuckDB's Python API and in the `duckdb` CLI shell
  (`-readonly warehouse.duckdb` started in the lake, as the README shows) when one is installed;
- `lake_status` (commit log and footers) vs what `status` did before: `table_counts`, a count(*)
  of every view, plus the same DISTINCT queries;
- `refresh --force` once: what a commit that changes the release's inputs now adds;
- with `--searchlight`, the searchlight marts (not materialised) over a release-sized
  `searchlight_results` of random values, in a second temporary lake.

Each figure is the median of `--repeat` runs, after one warm-up; ratios are before / after.

    PYTHONPATH=/path/to/ns python benchmarks/marts.py [--lake DIR] [--repeat 3] [--searchlight]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from emolake.warehouse.database import connect, table_counts
from emolake.warehouse.lake import Lake
from emolake.warehouse.marts import refresh
from emolake.warehouse.status import lake_status

REPO = Path(__file__).resolve().parent.parent


def old_status(lake: Lake) -> dict:
    """What `status` computed before: every view's row count, then DISTINCT values of four views."""
    counts = table_counts(lake)
    with connect(lake) as con:
        distinct = {v: con.execute(f'SELECT DISTINCT "{c}" FROM "{v}"').fetchall()
                    for v, c in (("stimuli", "dataset"), ("ratings", "study"), ("emotion_attributes", "study"),
                                 ("runs", "run_id"))}
        stale = con.execute("SELECT count(*) FROM stale_results").fetchall()
    return {"views": counts, "distinct": distinct, "stale": stale}


def timed(fn, repeat: int) -> float:
    fn()  # warm-up: views built, file cache warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python_query(lake: Lake, view: str):
    def run() -> int:
        with connect(lake) as con:
            return len(con.sql(f"SELECT * FROM {view}").fetchall())
    return run


def shell_query(shell: str, lake: Lake, view: str):
    def run() -> None:
        subprocess.run([shell, "-readonly", "warehouse.duckdb", "-c", f"SELECT * FROM {view}"], cwd=lake.root,
                       check=True, capture_output=True, timeout=600)
    return run


def release_lake(root: Path) -> Lake:
    from emolake.ingest.release import ingest_release

    data = Path(os.environ.get("EMOLAKE_SHARED_DATA", REPO.parent / "shared" / "data")) / "model_emotion"
    lake = Lake(root)
    lake.init()
    print(f"ingesting the release from {data} ...", file=sys.stderr)
    ingest_release(lake, data)
    return lake


SEARCHLIGHT_MARTS = ("searchlight", "searchlight_counts", "attribute_neuron_ranks", "attribute_neurons",
                     "attribute_neuron_overlap")


def searchlight_marts(root: Path, repeat: int) -> dict[str, float]:
    """The searchlight marts over a release-sized `searchlight_results` (36,864 neurons x 14 attributes,
    random taus and p, seed 0) with k = 500, 1000, 4000: candidates for materialising next."""
    import numpy as np
    import pyarrow as pa

    from emolake.warehouse.tables import TABLES

    lake = Lake(root)
    lake.init()
    rng = np.random.default_rng(0)
    n, attributes = 36_864, [f"attribute{i:02d}" for i in range(14)]
    neuron = np.tile(np.arange(n, dtype=np.int32), len(attributes))
    p = rng.random(n * len(attributes))
    results = pa.table({"neuron": neuron, "layer": neuron // 3072, "unit": neuron % 3072,
                        "attribute": np.repeat(attributes, n), "tau": rng.normal(0, 0.1, n * len(attributes)),
                        "p": p, "q": p, "q_monotone": p, "q_study": p, "inference": ["asymptotic"] * len(p),
                        "p_asymptotic": p})
    analysis = {"analysis_id": "bench", "params": "{}", "seed": 0, "fdr": "monotone", "alpha": 0.05, "run_ids": "",
                "n_emotions": 27, "emotions": "", "created_at": datetime.now(timezone.utc), "code_version": ""}
    with lake.transaction("benchmarks/marts.py") as txn:
        txn.write("searchlight_results", results, {"run_set": "bench", "study": "bench"})
        txn.write("analyses", pa.Table.from_pylist([analysis], schema=TABLES["analyses"].schema),
                  {"analysis": "searchlight", "run_set": "bench", "study": "bench"})
        txn.write("neuron_set_sizes", pa.Table.from_pylist([{"k": k, "scope": "global"} for k in (500, 1000, 4000)],
                                                           schema=TABLES["neuron_set_sizes"].schema),
                  {"run_set": "bench", "study": "bench"})
    return {f"{view}, Python API (not materialised)": timed(python_query(lake, view), repeat)
            for view in SEARCHLIGHT_MARTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=None, help="a lake holding the release (default: ingest one)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--searchlight", action="store_true",
                        help="also time the searchlight marts on a release-sized searchlight_results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(args.lake) if args.lake else release_lake(Path(tmp) / "lake")
        refresh(lake, progress=False)  # a lake written before marts: materialise once
        shell = shutil.which("duckdb") or (str(Path(sys.executable).parent / "duckdb")
                                           if (Path(sys.executable).parent / "duckdb").exists() else None)
        rows = {}
        rows["model_rdm, Python API: computed (before)"] = timed(python_query(lake, "model_rdm_computed"), args.repeat)
        rows["model_rdm, Python API: materialised (after)"] = timed(python_query(lake, "model_rdm"), args.repeat)
        if shell:
            rows["model_rdm, duckdb shell: computed (before)"] = timed(shell_query(shell, lake, "model_rdm_computed"),
                                                                       args.repeat)
            rows["model_rdm, duckdb shell: materialised (after)"] = timed(shell_query(shell, lake, "model_rdm"),
                                                                          args.repeat)
        rows["status: counting every view (before)"] = timed(lambda: old_status(lake), args.repeat)
        rows["status: commit log and footers (after)"] = timed(lambda: lake_status(lake), args.repeat)
        start = time.perf_counter()
        built = refresh(lake, force=True, progress=False)
        rows["refresh --force (one rebuild, after a commit)"] = time.perf_counter() - start
        if args.searchlight:
            rows.update(searchlight_marts(Path(tmp) / "searchlight", args.repeat))

    shell_version = subprocess.run([shell, "--version"], capture_output=True, text=True).stdout.strip() if shell else "-"
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, python {platform.python_version()}, duckdb shell {shell_version}")
    print(f"# {len(built)} run set(s) materialised; median of {args.repeat} runs after a warm-up")
    print("| what | seconds |\n| --- | ---: |")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} |")
    pairs = [("model_rdm, Python API", "model_rdm, Python API"), ("model_rdm, duckdb shell", "model_rdm, duckdb shell"),
             ("status", "status")]
    for label, _ in pairs:
        before = [v for k, v in rows.items() if k.startswith(label) and k.endswith("(before)")]
        after = [v for k, v in rows.items() if k.startswith(label) and k.endswith("(after)")]
        if before and after:
            print(f"| {label}: before / after | {before[0] / after[0]:.0f}x |")


if __name__ == "__main__":
    main()
