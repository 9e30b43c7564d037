"""Materialised marts and `status`: before (computing view, counting every view) vs after, in one run.

On a lake holding the study's release (`emolake ingest model-emotion`; with `--lake`, an existing
one, else one is filled from `../shared/data/model_emotion` or `EMOLAKE_SHARED_DATA`), measures:

- `SELECT * FROM model_rdm` (the stored rows) vs `SELECT * FROM model_rdm_computed` (the view as it
  was before: computed from every activation), in DuckDB's Python API and in the `duckdb` CLI shell
  (`-readonly warehouse.duckdb` started in the lake, as the README shows) when one is installed;
- `lake_status` (commit log and footers) vs what `status` did before: `table_counts`, a count(*)
  of every view, plus the same DISTINCT queries;
- `refresh --force` once: what a commit that changes the release's inputs now adds.

Each figure is the median of `--repeat` runs, after one warm-up; ratios are before / after.

    PYTHONPATH=/path/to/ns python benchmarks/marts.py [--lake DIR] [--repeat 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=None, help="a lake holding the release (default: ingest one)")
    parser.add_argument("--repeat", type=int, default=3)
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
