"""Analyses refuse a run set with a run that is not complete (an interrupted extract) unless told.

`rsa --run-set`, `searchlight`, `neurons` and `ablate` read the `runs` manifest first: a status other
than 'complete' exits 2 naming the run and its status and leaves the lake unchanged;
`--allow-incomplete` lets the analysis run, with a warning.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from analysis_lake import write_synthetic
from emolake.cli import cli
from conftest import tree_hashes
from emolake.warehouse.database import rebuild_views
from emolake.warehouse.lake import Lake

COMMANDS = {
    "rsa": ["rsa", "--study", "toy-study", "--run-set", "toy", "--permutations", "0", "--bootstrap", "0"],
    "searchlight": ["searchlight", "--run-set", "toy", "--study", "toy-study"],
    "neurons": ["neurons", "--run-set", "toy", "--study", "toy-study", "--k", "2"],
    "ablate": ["ablate", "--run-set", "toy", "--study", "toy-study", "--k", "2"],
}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("incomplete") / "lake")
    lake.init()
    write_synthetic(lake, status="running")
    rebuild_views(lake)  # warehouse.duckdb is derived: built now, so 'unchanged' compares the data
    return lake


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_incomplete_run_is_refused(command: str, interrupted: Lake) -> None:
    before = tree_hashes(interrupted.root)
    result = CliRunner().invoke(cli, ["--lake", str(interrupted.root), *COMMANDS[command]])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "not complete" in message and "toy-seed1: running" in message and "--allow-incomplete" in message
    assert tree_hashes(interrupted.root) == before


def test_allow_incomplete_lets_the_analysis_run_with_a_warning(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.init()
    write_synthetic(lake, status="running")
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *COMMANDS["rsa"], "--allow-incomplete"])
    assert result.exit_code == 0, result.output
    assert "incomplete run" in result.output


def test_complete_runs_pass(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.init()
    write_synthetic(lake)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *COMMANDS["rsa"]])
    assert result.exit_code == 0, result.output
