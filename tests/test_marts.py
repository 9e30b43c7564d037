"""Materialised marts (warehouse/marts.py, sql/35_marts.sql): `model_rdm` reads stored rows that
equal the computing view's, follows every change of its inputs, and never serves stale rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from emolake.cli import cli
from emolake.extract.store import activation_table
from emolake.warehouse import marts
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import Lake

from analysis_lake import write_synthetic

METRICS = ("correlation", "cosine", "euclidean")


def _rows(lake: Lake, view: str, run_set: str | None = None) -> list[tuple]:
    where = "" if run_set is None else f" WHERE run_set = '{run_set}'"
    return sorted(tuple(r.values()) for r in query(
        lake, f"SELECT run_set, emotion_a, emotion_b, metric, distance, n_runs FROM {view}{where}").to_pylist())


def _status(lake: Lake) -> dict[str, str]:
    return {r["run_set"]: r["status"] for r in marts.freshness(lake)}


def _rewrite_layer(lake: Lake, run_id: str, emotions: list[str], d_ff: int, value: float) -> str:
    """Replace layer 0 of `run_id` with constant activations (as a re-extract would); returns the load id."""
    ids = [f"{e}-{k}" for e in emotions for k in range(2)]
    rng = np.random.default_rng(int(value))
    with lake.transaction("test: re-extract a layer") as txn:
        txn.write("activations", activation_table(ids, (value + rng.random((len(ids), d_ff))).astype(np.float32)),
                  {"run_id": run_id, "layer": 0})
    return txn.load_id


@pytest.fixture
def toy(lake: Lake):
    return lake, write_synthetic(lake, n_emotions=6, units=4)


def test_materialised_model_rdm_equals_the_computing_view_for_every_metric(toy) -> None:
    lake, s = toy
    assert _status(lake) == {s.run_set: "fresh"}  # the fixture's commit rebuilt it
    stored, computed = _rows(lake, "model_rdm"), _rows(lake, "model_rdm_computed")
    assert stored == computed == _rows(lake, "model_rdm_mart")  # bit-identical: == on floats
    assert {r[3] for r in stored} == set(METRICS) and len(stored) == 3 * 15
    build = query(lake, "SELECT * FROM mart_builds").to_pylist()
    assert len(build) == 1 and build[0]["mart"] == "model_rdm" and build[0]["n_rows"] == 45
    files = build[0]["input_files"]
    assert sum(f.startswith("activations/") for f in files) == len(s.run_ids) * s.n_layers
    assert sum(f.startswith("runs/") for f in files) == len(s.run_ids)
    assert [f for f in files if f.startswith("stimuli/")] and len(build[0]["load_ids"]) == 1


def test_model_rdm_reads_no_activation_when_its_mart_is_fresh(toy) -> None:
    """With every activation file unreadable, the mart still answers; the computing view cannot."""
    lake, s = toy
    expected = _rows(lake, "model_rdm")
    files = lake.live_paths("activations")
    saved = {path: path.read_bytes() for path in files}
    try:
        for path in files:
            path.write_bytes(b"not a parquet file")
        assert _rows(lake, "model_rdm") == expected
        with pytest.raises(BadInputError):
            _rows(lake, "model_rdm_computed")
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


def test_the_mart_follows_a_replaced_run(toy) -> None:
    lake, s = toy
    before = _rows(lake, "model_rdm")
    load_id = _rewrite_layer(lake, s.run_ids[0], s.emotions, s.d_ff, 5.0)
    assert _status(lake) == {s.run_set: "fresh"}
    after = _rows(lake, "model_rdm")
    assert after == _rows(lake, "model_rdm_computed") and after != before
    [build] = query(lake, "SELECT load_ids, input_files FROM mart_builds").to_pylist()
    assert load_id in build["load_ids"]
    assert not any("layer=0/part-" in f and load_id not in f for f in build["input_files"] if s.run_ids[0] in f)


def test_a_stale_mart_is_refused_by_name_and_refresh_rebuilds_it(toy, monkeypatch) -> None:
    lake, s = toy
    other = write_synthetic(lake, n_emotions=5, units=3, run_set="other", dataset="other-stimuli", seed=1)
    monkeypatch.setattr(marts, "after_commit", lambda lake, tables: None)  # a commit whose rebuild never ran
    _rewrite_layer(lake, s.run_ids[1], s.emotions, s.d_ff, 7.0)
    assert _status(lake) == {s.run_set: "stale", other.run_set: "fresh"}
    for sql in ("SELECT * FROM model_rdm", "SELECT count(*) FROM model_rdm",
                f"SELECT distance FROM model_rdm WHERE run_set = '{s.run_set}' LIMIT 1"):
        with pytest.raises(BadInputError, match=rf"model_rdm is not materialised for run set '{s.run_set}' "
                                                r"\(its input files changed since it was built\); run `emolake refresh`"):
            query(lake, sql)
    assert _rows(lake, "model_rdm", other.run_set) == _rows(lake, "model_rdm_computed", other.run_set)

    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "refresh", "--json"])
    assert result.exit_code == 0, result.output
    assert [(b["run_set"], b["rows"]) for b in json.loads(result.output)["built"]] == [(s.run_set, 45)]
    assert _status(lake) == {s.run_set: "fresh", other.run_set: "fresh"}
    assert _rows(lake, "model_rdm") == _rows(lake, "model_rdm_computed")
    again = CliRunner().invoke(cli, ["--lake", str(lake.root), "refresh", "--json"])
    assert json.loads(again.output)["built"] == []  # nothing stale: nothing rebuilt
    forced = CliRunner().invoke(cli, ["--lake", str(lake.root), "refresh", "--run-set", "other", "--force", "--json"])
    assert [b["run_set"] for b in json.loads(forced.output)["built"]] == ["other"]


def test_changed_view_definitions_make_every_mart_stale(toy, monkeypatch) -> None:
    lake, s = toy
    import emolake.warehouse.database as database

    monkeypatch.setattr(database, "views_fingerprint", lambda: "0" * 64)  # as after an upgrade of sql/
    database.rebuild_views(lake)
    [row] = marts.freshness(lake)
    assert row["status"] == "stale" and "view definitions" in row["reason"]
    with pytest.raises(BadInputError, match="view definitions in sql/ changed"):
        query(lake, "SELECT * FROM model_rdm")
    assert marts.refresh(lake, progress=False)[0]["run_set"] == s.run_set
    assert _rows(lake, "model_rdm") == _rows(lake, "model_rdm_computed")


def test_a_run_set_still_being_extracted_is_built_only_when_asked(lake: Lake) -> None:
    s = write_synthetic(lake, n_emotions=4, units=3, status="running")
    assert _status(lake) == {s.run_set: "missing"}  # not rebuilt after each chunk's commit
    with pytest.raises(BadInputError, match="never materialised"):
        query(lake, "SELECT * FROM model_rdm")
    assert [b["run_set"] for b in marts.refresh(lake, progress=False)] == [s.run_set]
    assert _rows(lake, "model_rdm") == _rows(lake, "model_rdm_computed")


def _duckdb_cli() -> str | None:
    here = Path(sys.executable).parent / "duckdb"
    return str(here) if here.exists() else shutil.which("duckdb")


@pytest.mark.skipif(_duckdb_cli() is None, reason="no duckdb CLI (pip install duckdb-cli)")
def test_the_plain_duckdb_shell_reads_the_mart_and_refuses_a_stale_one(toy, monkeypatch) -> None:
    lake, s = toy
    expected = _rows(lake, "model_rdm")

    def shell(sql: str) -> subprocess.CompletedProcess:
        return subprocess.run([_duckdb_cli(), "-readonly", "-csv", "-noheader", "warehouse.duckdb", "-c", sql],
                              cwd=lake.root, capture_output=True, text=True, timeout=60)

    out = shell("SELECT run_set, emotion_a, emotion_b, metric, distance, n_runs FROM model_rdm")
    assert out.returncode == 0, out.stderr
    got = sorted((a, b, c, d, float(e), int(f)) for a, b, c, d, e, f in (line.split(",") for line in out.stdout.split()))
    assert got == [(a, b, c, d, pytest.approx(e, rel=1e-15), f) for a, b, c, d, e, f in expected]
    monkeypatch.setattr(marts, "after_commit", lambda lake, tables: None)
    _rewrite_layer(lake, s.run_ids[0], s.emotions, s.d_ff, 3.0)
    stale = shell("SELECT count(*) FROM model_rdm")
    assert stale.returncode != 0 and f"not materialised for run set '{s.run_set}'" in stale.stderr
