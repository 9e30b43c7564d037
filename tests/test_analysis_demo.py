"""`emolake demo`: the whole study on the embedded default, and a second run that reuses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emolake.cli import cli


@pytest.mark.slow
def test_demo_runs_end_to_end_then_reuses_every_step(tmp_path: Path) -> None:
    lake, report = tmp_path / "lake", tmp_path / "report"
    runner = CliRunner()
    first = runner.invoke(cli, ["--lake", str(lake), "demo", "--out", str(report), "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    numbers = json.loads(first.stdout[first.stdout.index("{"):])
    assert numbers["stimuli"] == 432 and numbers["neurons"] == 6 * 1536
    tau, p = numbers["model vs human RDM, Kendall tau-b"], numbers["model vs human RDM, permutation p"]
    assert -1 <= tau <= 1 and 0 < p <= 1
    page = Path(numbers["report"])
    assert page.exists()
    summary = json.loads((page.parent / "report.json").read_text())
    assert all(section["images"] for section in summary["sections"].values()), summary["sections"]

    second = runner.invoke(cli, ["--lake", str(lake), "demo", "--out", str(report), "--json"], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert second.stderr.count("already in the lake, skipped") == 8
    assert json.loads(second.stdout[second.stdout.index("{"):])["stimuli"] == 432
