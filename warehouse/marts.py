"""Materialised marts: the rows of an expensive computing view, stored per run set (dbt-style).

`model_rdm` computed from every activation on each query took 16.5 s in the DuckDB shell on the
study's release. Its rows are now stored in the table `model_rdm_mart` (one partition per run
set) by `refresh`, which runs the computing view `model_rdm_computed` itself, so the stored rows
are the view's rows, and writes them in one `LakeTransaction` together with a `mart_builds` row
naming what they were computed from: the run set's input files (their paths; a path is never
reused, so equal paths are equal data), their load ids and the SQL files' fingerprint.

Who rebuilds: every commit that writes a mart input (`runs`, `stimuli`, any table partitioned by
`run_id` first, such as `activations`) calls `after_commit` right after it is published
(`Lake.transaction`), which rebuilds every mart that is not fresh, except those of run sets with a
run still being extracted (an extraction commits once per chunk; its last commit, the finished
manifest, triggers the build). `emolake rsa` refreshes its run set, `emolake refresh` any.

How it is read (sql/35_marts.sql): the view `model_rdm` serves a run set's stored rows only while
`mart_freshness` finds them fresh, recomputing that from the commit log on every query, and raises
an error naming any run set that is stale or missing, so a reader never gets stale rows, in
emolake, the DuckDB shell or R alike. The computing view always answers, at the cost of the scan.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .errors import EmolakeError
from .lake import Lake
from .tables import TABLES
from .version import code_version


@dataclass(frozen=True)
class Mart:
    name: str  # the view readers query
    table: str  # where its rows are stored, partitioned by run_set
    computing_view: str  # the view that computes the rows from the lake's tables


MARTS: dict[str, Mart] = {"model_rdm": Mart("model_rdm", "model_rdm_mart", "model_rdm_computed")}


def is_input(table: str) -> bool:
    """Whether a commit writing `table` can change some run set's marts (see `_run_set_inputs`)."""
    spec = TABLES.get(table)
    return table in ("runs", "stimuli") or (spec is not None and spec.partition_names[:1] == ["run_id"])


def freshness(lake: Lake) -> list[dict]:
    """One dict per mart and run set: mart, run_set, status ('fresh', 'stale', 'missing', 'gone'), reason,
    built_at, n_rows (the `mart_freshness` view)."""
    from .database import connect

    with connect(lake) as con:
        return con.sql("SELECT mart, run_set, status, reason, built_at, n_rows FROM mart_freshness "
                       "ORDER BY mart, run_set").to_arrow_table().to_pylist()


def refresh(lake: Lake, run_sets: list[str] | None = None, *, force: bool = False, skip_incomplete: bool = False,
            progress: bool = True, command: str = "refresh") -> list[dict]:
    """Materialise every mart (of `run_sets`, default all) that is stale or missing; with `force`, fresh ones too.

    `skip_incomplete` leaves run sets with a run whose status is not 'complete' as they are. Returns
    one summary per mart and run set built (mart, run_set, rows, seconds)."""
    from .database import connect

    lake.require()
    with connect(lake) as con:
        state = con.sql("""
            SELECT f.mart, f.run_set, f.status,
                   coalesce(bool_and(r.status = 'complete'), true) AS complete
            FROM mart_freshness f LEFT JOIN runs r ON r.run_set = f.run_set
            GROUP BY ALL ORDER BY ALL""").fetchall()
    wanted = None if run_sets is None else set(run_sets)
    todo: dict[str, list[str]] = {}
    for mart, run_set, status, complete in state:
        if wanted is not None and run_set not in wanted:
            continue
        if status in ("stale", "missing") or (force and status == "fresh"):
            if complete or not skip_incomplete:
                todo.setdefault(mart, []).append(run_set)
    built: list[dict] = []
    for mart, names in todo.items():
        built += _build(lake, MARTS[mart], names, progress, command)
    return built


def _build(lake: Lake, mart: Mart, run_sets: list[str], progress: bool, command: str) -> list[dict]:
    """One transaction: each run set's rows of the computing view and its `mart_builds` row.

    The inputs are listed BEFORE the rows are computed: a commit in between makes the build look
    stale (recomputed next time), never fresh with older rows."""
    from .console import err
    from .database import connect, views_fingerprint

    start = time.perf_counter()
    with connect(lake) as con:
        inputs = {r["run_set"]: r for r in con.sql("""
            SELECT f.run_set, f.current_sha256, i.files, i.loads
            FROM mart_freshness f
            JOIN (SELECT run_set, list_sort(list(DISTINCT path)) AS files, list_sort(list(DISTINCT load_id)) AS loads
                  FROM _run_set_inputs GROUP BY run_set) i ON i.run_set = f.run_set
            WHERE f.mart = $mart AND list_contains($run_sets, f.run_set)""",
            params={"mart": mart.name, "run_sets": run_sets}).to_arrow_table().to_pylist()}
        views = views_fingerprint()
        what = f"materialising {mart.name} for {len(run_sets)} run set(s): {', '.join(run_sets[:3])}" + (
            ", ..." if len(run_sets) > 3 else "")
        with err.status(what) if progress else contextlib.nullcontext():
            try:
                rows = con.sql(f"SELECT * FROM {mart.computing_view} WHERE list_contains($run_sets, run_set)",
                               params={"run_sets": run_sets}).to_arrow_table()
            except duckdb.Error as exc:
                raise EmolakeError(f"{mart.computing_view} failed for run set(s) {', '.join(run_sets)}: {exc}") from exc
    seconds = time.perf_counter() - start
    now = datetime.now(timezone.utc)
    summaries = []
    with lake.transaction(f"{command} {mart.name}") as txn:
        for run_set in run_sets:
            if run_set not in inputs:  # no runs any more (removed since the state was read): nothing to store
                continue
            part = rows.filter(pc.equal(rows.column("run_set"), run_set)).drop_columns(["run_set"])
            txn.write(mart.table, part, {"run_set": run_set})
            snapshot = inputs[run_set]
            build = {"inputs_sha256": snapshot["current_sha256"], "views_sha256": views,
                     "input_files": snapshot["files"], "load_ids": snapshot["loads"], "n_rows": part.num_rows,
                     "seconds": seconds, "built_at": now, "code_version": code_version()}
            txn.write("mart_builds", pa.Table.from_pylist([build], schema=TABLES["mart_builds"].schema),
                      {"mart": mart.name, "run_set": run_set})
            summaries.append({"mart": mart.name, "run_set": run_set, "rows": part.num_rows,
                              "seconds": round(seconds, 3)})
    return summaries


def after_commit(lake: Lake, tables: set[str]) -> None:
    """Called by `Lake.transaction` after each commit: rebuild the marts its tables may have changed.

    The commit stands whatever happens here; a mart that cannot be built stays stale, which the
    view reports by name when read, and a warning says why now."""
    if not any(is_input(t) for t in tables):
        return
    if not any(f.table_name in ("runs", "mart_builds") for f in lake.live_files()):
        return  # no run and no mart: nothing to build (spares a warehouse connection per load of stimuli)
    from .console import err

    try:
        refresh(lake, skip_incomplete=True, command="refresh after commit")
    except (EmolakeError, duckdb.Error) as exc:
        err.print(f"[yellow]warning:[/yellow] the commit stands, but a mart could not be rebuilt ({exc}); "
                  "`model_rdm` refuses the run sets concerned until `emolake refresh` succeeds")
