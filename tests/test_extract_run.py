"""Extraction runs into the lake: views, manifest, wide reads, resume after kill -9, reruns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, tree_hashes
from emolake.extract.models.loading import load_model
from emolake.extract.run import ExtractSettings, extract_run
from emolake.extract.store import read_activation_matrix
from extract_models import save_tiny_model
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake

WORDS = "so happy sad angry today never again this is the best worst thing ever I feel great awful".split()


def write_stimuli(lake: Lake, n: int, dataset: str = "toy") -> list[str]:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 25)))) for _ in range(n)]
    ids = [f"{dataset}-{i:04d}" for i in range(n)]
    emotions = ["joy" if i % 3 else "anger" for i in range(n)]
    with lake.transaction("test") as txn:
        txn.write("stimuli", pa.table({
            "split": ["test"] * n, "stimulus_id": ids, "text": texts, "emotion": emotions,
            "n_labels": [1] * n, "source_row": list(range(n)),
        }), {"dataset": dataset})
    return ids


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "roberta", "roberta-mlm")


def _scalar(lake: Lake, sql: str):
    return query(lake, sql).column(0)[0].as_py()


def test_extraction_lands_in_the_long_view_and_reads_back_wide(lake, tiny_folder):
    ids = write_stimuli(lake, 23)
    loaded = load_model(str(tiny_folder))
    summary = extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="toy", batch_size=4, chunk_size=10),
                          loaded=loaded)
    run_id = summary["run_id"]
    assert summary["status"] == "complete" and summary["chunks"] == 3
    assert _scalar(lake, f"SELECT count(DISTINCT neuron) FROM activations WHERE run_id = '{run_id}'") == 2 * 37
    assert _scalar(lake, "SELECT count(*) FROM activations") == 23 * 2 * 37
    assert _scalar(lake, "SELECT count(*) FROM (SELECT DISTINCT run_id, stimulus_id, neuron FROM activations)") == 23 * 74
    described = query(lake, "SELECT column_name, column_type FROM (DESCRIBE activations)").to_pylist()
    types = {r["column_name"]: r["column_type"] for r in described}
    assert types["run_id"] == "VARCHAR" and types["layer"] == "INTEGER" and types["value"] == "FLOAT"

    stimulus_ids, matrix = read_activation_matrix(lake, run_id)
    assert stimulus_ids == ids and matrix.shape == (23, 74) and matrix.dtype == np.float32
    long = query(lake, f"SELECT stimulus_id, neuron, value FROM activations WHERE run_id = '{run_id}'").to_pandas()
    wide = long.pivot(index="stimulus_id", columns="neuron", values="value").loc[ids].to_numpy()
    np.testing.assert_array_equal(wide, matrix)
    _, layer1 = read_activation_matrix(lake, run_id, layers=[1])
    np.testing.assert_array_equal(layer1, matrix[:, 37:])

    files = sorted((lake.root / "activations" / f"run_id={run_id}").glob("layer=*/part-*.parquet"))
    assert [f.relative_to(lake.root / "activations").as_posix() for f in files[:3]] == [
        f"run_id={run_id}/layer=0/part-00000.parquet", f"run_id={run_id}/layer=0/part-00001.parquet",
        f"run_id={run_id}/layer=0/part-00002.parquet"]
    column = pq.ParquetFile(files[0]).metadata.row_group(0).column(2)
    assert column.path_in_schema == "activation.list.element"
    assert "BYTE_STREAM_SPLIT" in column.encodings and column.compression == "ZSTD"

    run = query(lake, f"SELECT * FROM runs WHERE run_id = '{run_id}'").to_pylist()[0]
    assert run["status"] == "complete" and run["model_class"] == "RobertaForMaskedLM"
    assert (run["n_layers"], run["d_ff"], run["n_stimuli"], run["position"]) == (2, 37, 23, "mask")
    assert run["weights_sha256"] == loaded.weights_sha256 and '"torch"' in run["package_versions"]


def test_rerunning_a_finished_run_is_a_no_op(lake, tiny_folder):
    write_stimuli(lake, 12)
    settings = ExtractSettings(model=str(tiny_folder), dataset="toy", position="cls", template="{text}")
    first = extract_run(lake, settings)
    before = tree_hashes(lake.root / "activations")
    again = extract_run(lake, settings)
    assert again["status"] == "already complete" and again["run_id"] == first["run_id"]
    assert tree_hashes(lake.root / "activations") == before


def test_a_run_id_reused_with_other_settings_is_refused(lake, tiny_folder):
    write_stimuli(lake, 12)
    extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="toy", run_id="r1", position="cls"))
    with pytest.raises(BadInputError, match="other settings .*position"):
        extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="toy", run_id="r1", position="mean"))


def test_emotion_filter_limit_and_position_all(lake, tiny_folder):
    write_stimuli(lake, 30)
    summary = extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="toy", emotions=("anger",),
                                                limit=4, position="all", batch_size=3))
    assert summary["n_stimuli"] == 4
    rows = query(lake, "SELECT stimulus_id, count(DISTINCT token) AS n FROM activations GROUP BY 1 ORDER BY 1").to_pylist()
    assert [r["stimulus_id"] for r in rows] == ["toy-0000", "toy-0003", "toy-0006", "toy-0009"]
    assert all(r["n"] >= 3 for r in rows)  # [CLS] ... [SEP]: every token kept


def test_unknown_dataset_and_bad_template_are_clear_errors(lake, tiny_folder):
    write_stimuli(lake, 3)
    with pytest.raises(NotFoundError, match="no stimuli for dataset 'nope'"):
        extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="nope"))
    with pytest.raises(BadInputError, match="needs a \\{mask\\}"):
        extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="toy", template="{text}"))


def _cli(lake: Lake, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "cli.py"), "--lake", str(lake.root), "extract", "--dataset", "toy",
            "--batch-size", "4", "--chunk-size", "8", *args]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_extraction_killed_with_sigkill_resumes_to_the_same_lake(tmp_path):
    """kill -9 mid-run, rerun the same command: the data equal an uninterrupted run's, no duplicates."""
    lakes = {name: Lake(tmp_path / name) for name in ("killed", "clean")}
    for lake in lakes.values():
        lake.init()
        write_stimuli(lake, 160)
    # the bundled MiniLM: slow enough per chunk to be killed in the middle
    proc = subprocess.Popen(_cli(lakes["killed"]), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120

    def committed() -> int:  # chunks the lake holds (a file moved in place just before the kill is not one)
        return len([f for f in lakes["killed"].live_files("activations") if f.partition.endswith("/layer=5")])

    while time.time() < deadline and committed() < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = committed()
    assert 3 <= written < 20, "the run was not killed mid-way"
    assert query(lakes["killed"], "SELECT status FROM runs").column(0).to_pylist() == ["running"]

    resumed = subprocess.run(_cli(lakes["killed"], "--json"), env=_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert '"chunks_written": ' + str(20 - written) in resumed.stdout
    clean = subprocess.run(_cli(lakes["clean"]), env=_env(), capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr

    assert tree_hashes(lakes["killed"].root / "activations") == tree_hashes(lakes["clean"].root / "activations")
    for lake in lakes.values():
        assert _scalar(lake, "SELECT count(*) FROM activations") == 160 * 9216
        assert _scalar(lake, "SELECT count(*) FROM (SELECT DISTINCT stimulus_id, neuron FROM activations)") == 160 * 9216
        assert query(lake, "SELECT status FROM runs").column(0).to_pylist() == ["complete"]
    again = subprocess.run(_cli(lakes["killed"]), env=_env(), capture_output=True, text=True)
    assert again.returncode == 0 and "already complete" in again.stdout
