"""Replacing data and stale results: replacing a partition that another source loaded needs
`--replace`; stored results record the input versions they were computed from, and
`stale_results` / `emolake status` show those whose inputs changed since."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from emolake.analysis.rsa import run_rsa
from emolake.analysis.searchlight import run_searchlight
from analysis_lake import write_synthetic
from emolake.cli import cli
from conftest import REPO, shared_data_dir, tree_hashes
from emolake.ingest.embedded import similarity_path
from emolake.warehouse.database import query
from emolake.warehouse.errors import ReplaceRefusedError
from emolake.warehouse.lake import Lake
from emolake.warehouse.status import lake_status


def _stale(lake: Lake) -> list[tuple]:
    rows = query(lake, "SELECT analysis, run_set, study, input_table, input_partition FROM stale_results "
                       "ORDER BY ALL").to_pylist()
    return [tuple(r.values()) for r in rows]


def _similarity(lake: Lake, study: str, distance: float, **source) -> None:
    """Two raters' judgments of every pair of the study's emotions."""
    emotions = sorted(query(lake, f"SELECT DISTINCT emotion FROM emotion_attributes WHERE study = '{study}'")
                      .column(0).to_pylist())
    rows = [{"rater": r, "emotion_a": a, "emotion_b": b, "distance": distance + k % 5, "source": "test"}
            for r in ("r1", "r2") for k, (a, b) in enumerate(combinations(emotions, 2))]
    with lake.transaction("similarity", replace=source.pop("replace", False)) as txn:
        txn.write("similarity_judgments", pa.Table.from_pylist(rows), {"study": study}, **source)


@pytest.fixture
def analysed(lake) -> tuple[Lake, object]:
    data = write_synthetic(lake)
    run_rsa(lake, data.study, data.run_set, n_perm=20, n_boot=0, progress=False)
    run_searchlight(lake, data.run_set, data.study, progress=False)
    return lake, data


def test_results_record_their_inputs_and_are_fresh(analysed):
    lake, data = analysed
    inputs = query(lake, "SELECT analysis, input_table, input_partition FROM result_inputs ORDER BY ALL").to_pylist()
    rsa_inputs = {(r["input_table"], r["input_partition"]) for r in inputs if r["analysis"] == "rsa"}
    assert ("similarity_judgments", f"study={data.study}") in rsa_inputs
    assert {("activations", f"run_id={r}") for r in data.run_ids} <= rsa_inputs
    assert {r["analysis"] for r in inputs} == {"attribute_importance", "rsa", "searchlight"}
    assert _stale(lake) == [] and lake_status(lake)["stale_results"] == []


def test_replacing_an_input_makes_the_results_that_read_it_stale(analysed):
    lake, data = analysed
    _similarity(lake, data.study, 3.0)  # new human judgments: RSA and attribute importance read them
    assert _stale(lake) == [("attribute_importance", "none", data.study, "similarity_judgments", f"study={data.study}"),
                            ("rsa", data.run_set, data.study, "similarity_judgments", f"study={data.study}")]
    assert [s.split(":")[0] for s in lake_status(lake)["stale_results"]] == [
        f"attribute_importance run_set=none study={data.study}", f"rsa run_set={data.run_set} study={data.study}"]
    run_rsa(lake, data.study, data.run_set, n_perm=20, n_boot=0, progress=False)  # recomputed: fresh again
    assert _stale(lake) == []


def test_a_new_run_of_extraction_data_makes_the_searchlight_stale(analysed):
    lake, data = analysed
    with lake.transaction("more activations") as txn:  # a chunk added to one run's activations
        txn.write("activations", query(lake, f"SELECT stimulus_id, token, activation FROM activation_vectors "
                                             f"WHERE run_id = '{data.run_ids[0]}' AND layer = 0 LIMIT 1"),
                  {"run_id": data.run_ids[0], "layer": 0}, replace=False)
    stale = {(a, t) for a, _, _, t, _ in _stale(lake)}
    assert stale == {("rsa", "activations"), ("searchlight", "activations")}


def test_reloading_the_same_source_is_idempotent_and_keeps_results_fresh(lake):
    data = write_synthetic(lake)
    _similarity(lake, data.study, 2.0, source_path="a.csv", source_sha256="aaa")
    run_rsa(lake, data.study, None, n_perm=20, n_boot=0, progress=False)
    _similarity(lake, data.study, 2.0, source_path="copy/of/a.csv", source_sha256="aaa")  # same bytes
    assert _stale(lake) == []
    before = tree_hashes(lake.root)
    with pytest.raises(ReplaceRefusedError, match=rf"partition similarity_judgments/study={data.study} was loaded "
                                                  r"from another source \(copy/of/a.csv, load .*--replace"):
        _similarity(lake, data.study, 5.0, source_path="b.csv", source_sha256="bbb")
    assert tree_hashes(lake.root) == before
    _similarity(lake, data.study, 5.0, source_path="b.csv", source_sha256="bbb", replace=True)
    assert [r[0] for r in _stale(lake)] == ["attribute_importance"]


def _ingest(lake: Lake, *args: str):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), "ingest", *args])


def test_ingest_refuses_to_replace_another_source_without_replace(lake, tmp_path):
    first = similarity_path()
    other = tmp_path / "other_similarity.csv"
    other.write_text(Path(first).read_text().replace("5.26229508196721", "5.5"))
    assert _ingest(lake, "similarity", str(first), "--study", "s").exit_code == 0
    assert _ingest(lake, "similarity", str(first), "--study", "s").exit_code == 0  # same source: idempotent
    before = tree_hashes(lake.root)
    refused = _ingest(lake, "similarity", str(other), "--study", "s")
    assert refused.exit_code == 2
    assert f"partition similarity_judgments/study=s was loaded from another source ({first}" in refused.output
    assert "give --replace" in refused.output
    assert tree_hashes(lake.root) == before
    replaced = _ingest(lake, "similarity", str(other), "--study", "s", "--replace")
    assert replaced.exit_code == 0, replaced.output
    commands = query(lake, "SELECT DISTINCT command FROM loads WHERE table_name = 'similarity_judgments' ORDER BY 1")
    assert f"ingest similarity {other} --study s --replace" in commands.column(0).to_pylist()
    assert query(lake, "SELECT max(distance) AS d FROM similarity_judgments WHERE emotion_a = 'admiration' "
                       "AND emotion_b = 'amusement'").column("d")[0].as_py() == 5.5


@pytest.mark.slow
def test_the_readme_scenario_embedded_similarity_over_the_release(tmp_path):
    """README: `ingest model-emotion`, then the embedded `ingest similarity ... --study li2024`."""
    release = shared_data_dir() / "model_emotion"
    if not release.is_dir():
        pytest.skip(f"real data not found at {release}")
    lake = Lake(tmp_path / "lake")
    cli_args = [sys.executable, str(REPO / "cli.py"), "--lake", str(lake.root)]
    env = {"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)}

    def emolake(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli_args, *args], env=env, capture_output=True, text=True, cwd=REPO)

    assert emolake("ingest", "model-emotion", str(release)).returncode == 0
    rsa = emolake("rsa", "--study", "li2024", "--permutations", "100", "--bootstrap", "0")
    assert rsa.returncode == 0, rsa.stderr
    before = tree_hashes(lake.root)
    refused = emolake("ingest", "similarity", "ingest/embedded/study_similarity.csv", "--study", "li2024")
    assert refused.returncode == 2
    assert "partition similarity_judgments/study=li2024 was loaded from another source" in refused.stderr
    assert "--replace" in refused.stderr
    assert tree_hashes(lake.root) == before
    replaced = emolake("ingest", "similarity", "ingest/embedded/study_similarity.csv", "--study", "li2024", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    status = json.loads(emolake("status", "--json").stdout)
    assert any(s.startswith("attribute_importance run_set=none study=li2024: input changed since: "
                            "similarity_judgments/study=li2024") for s in status["stale_results"]), status
