"""`emolake status` counts from the commit log and file footers, never by scanning views."""

from __future__ import annotations

import dataclasses
import json

from click.testing import CliRunner

from emolake.cli import cli
from emolake.warehouse import commit_log, marts
from emolake.warehouse.database import query
from emolake.warehouse.lake import Lake
from emolake.warehouse.status import lake_status, table_rows

from analysis_lake import write_synthetic
from test_marts import _rewrite_layer

VIEW_OF = {"activations": "activation_vectors"}  # tables whose rows a view of another name lists one to one


def _view_counts(lake: Lake) -> dict[str, int]:
    counts = {}
    for table in ("stimuli", "runs", "activations", "similarity_judgments", "emotion_attributes", "loads",
                  "model_rdm_mart", "mart_builds"):
        counts[table] = query(lake, f"SELECT count(*) AS n FROM {VIEW_OF.get(table, table)}").column("n")[0].as_py()
    return counts


def test_row_counts_equal_the_views_counts(lake: Lake) -> None:
    s = write_synthetic(lake, n_emotions=5, units=3)
    info = lake_status(lake)
    assert {t: info["rows"][t] for t in _view_counts(lake)} == _view_counts(lake)
    assert info["runs"] == sorted(s.run_ids) and info["datasets"] == ["toy-stimuli"]
    assert info["studies"] == [s.study] and info["loads"] == info["rows"]["loads"] > 0
    assert info["marts"][0].startswith(f"model_rdm run_set={s.run_set}: fresh (built ") and info["stale_marts"] == []


def test_files_without_a_row_count_in_the_log_are_counted_from_their_footers(lake: Lake, monkeypatch) -> None:
    write_synthetic(lake, n_emotions=4, units=3)
    expected = table_rows(lake)
    unknown = {p: dataclasses.replace(f, rows=None) for p, f in commit_log.live_files(lake.root).items()}
    monkeypatch.setattr(commit_log, "live_files", lambda root: unknown)  # as files adopted by a lake upgrade
    assert table_rows(lake) == expected


def test_status_reads_no_table_data(lake: Lake) -> None:
    """With every data file but the commit log unreadable, status still answers: it never opens them."""
    write_synthetic(lake, n_emotions=4, units=3)
    expected = lake_status(lake)
    files = [p for t in ("activations", "stimuli", "similarity_judgments") for p in lake.live_paths(t)]
    saved = {path: path.read_bytes() for path in files}
    try:
        for path in files:
            path.write_bytes(b"not a parquet file")
        assert lake_status(lake) == expected
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


def test_status_shows_a_stale_mart(lake: Lake, monkeypatch) -> None:
    s = write_synthetic(lake, n_emotions=4, units=3)
    monkeypatch.setattr(marts, "after_commit", lambda lake, tables: None)
    _rewrite_layer(lake, s.run_ids[0], s.emotions, s.d_ff, 2.0)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "status", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["stale_marts"] == [f"model_rdm run_set={s.run_set}: its input files changed since it was built"]
    text = CliRunner().invoke(cli, ["--lake", str(lake.root), "status"])
    assert "Rows per table" in text.output and "stale_marts" in text.output
