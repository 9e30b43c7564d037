"""Concurrent writers: a lock per extraction run and per partition being committed. Two writers of
one run or partition never both "succeed" with one of them lost: they serialize, or the loser
exits 2 with a message naming what is locked and by whom."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import REPO
from emolake.extract.run import ExtractSettings, extract_run
from extract_models import save_tiny_model
from test_extract_run import write_stimuli
from emolake.warehouse import lake as lake_module
from emolake.warehouse.database import query
from emolake.warehouse.errors import LockedError, ReplaceRefusedError
from emolake.warehouse.lake import Lake
from emolake.warehouse.locks import FileLock, lock_file_name

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _attributes(value: float, n: int = 4) -> pa.Table:
    return pa.table({"emotion": [f"e{i}" for i in range(n)], "attribute": ["a"] * n,
                     "value": [value] * n, "source": ["test"] * n})


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "roberta", "roberta-mlm")


def test_an_extraction_of_a_locked_run_fails_at_once_naming_the_holder(lake, tiny_folder):
    write_stimuli(lake, 6)
    holder = lake.run_lock("r1", "extract --run-id r1 (the other one)")
    with holder.held():
        with pytest.raises(LockedError, match=r"run 'r1' is locked by pid \d+ \(`extract --run-id r1 \(the other one\)`"):
            extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="toy", run_id="r1", position="cls"))
    assert query(lake, "SELECT count(*) AS n FROM runs").column("n")[0].as_py() == 0
    summary = extract_run(lake, ExtractSettings(model=str(tiny_folder), dataset="toy", run_id="r1", position="cls"))
    assert summary["status"] == "complete"
    assert holder.path.read_text() == ""  # released: the lock file is empty again


def test_a_commit_waits_for_a_partition_being_committed_then_fails_naming_it(lake, monkeypatch):
    monkeypatch.setattr(lake_module, "LOCK_TIMEOUT", 0.3)
    path = lake.root / "_locks" / lock_file_name("partition", "emotion_attributes/study=s")
    with FileLock(path, "partition emotion_attributes/study=s", "ingest attributes x.csv --study s").held():
        with pytest.raises(LockedError, match=r"partition emotion_attributes/study=s is locked by pid \d+ "
                                              r"\(`ingest attributes x.csv --study s`.*waited 0.3 s"):
            with lake.transaction("ingest attributes y.csv --study s") as txn:
                txn.write("emotion_attributes", _attributes(1.0), {"study": "s"}, source_sha256="y")
    assert query(lake, "SELECT count(*) AS n FROM emotion_attributes").column("n")[0].as_py() == 0


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pyarrow as pa
    from emolake.warehouse.errors import EmolakeError
    from emolake.warehouse.lake import Lake
    root, source, value, go = sys.argv[1], sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])
    table = pa.table({"emotion": [f"e{i}" for i in range(4)], "attribute": ["a"] * 4,
                      "value": [value] * 4, "source": ["test"] * 4})
    Path(f"{go}.{source}.{value}.ready").touch()
    while not go.exists():
        time.sleep(0.001)
    try:
        with Lake(root).transaction(f"load {source}") as txn:
            txn.write("emotion_attributes", table, {"study": "s"}, source_path=source, source_sha256=source)
    except EmolakeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
""")


def _race(lake: Lake, tmp_path: Path, sources: list[str]) -> list[subprocess.CompletedProcess]:
    """Start one writer process per source, release them at once, wait for all."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(lake.root), source, str(k + 1), str(go)],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, source in enumerate(sources)]
    deadline = time.time() + 60
    while len(list(tmp_path.glob("go.*.ready"))) < len(sources) and time.time() < deadline:
        time.sleep(0.01)  # until every writer has imported and waits
    go.touch()
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


@pytest.mark.parametrize("trial", range(4))
def test_two_loads_of_one_partition_from_different_sources_one_wins_the_other_exits_2(lake, tmp_path, trial):
    results = _race(lake, tmp_path, ["a.csv", "b.csv"])
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 2)
    assert "partition emotion_attributes/study=s was loaded from another source" in loser.stderr
    assert "--replace" in loser.stderr
    winner = results.index(next(r for r in results if r.returncode == 0))
    rows = query(lake, "SELECT value FROM emotion_attributes").column("value").to_pylist()
    assert rows == [float(winner + 1)] * 4  # the winner's rows, once


@pytest.mark.parametrize("trial", range(2))
def test_two_loads_of_one_partition_from_the_same_source_serialize(lake, tmp_path, trial):
    results = _race(lake, tmp_path, ["a.csv", "a.csv"])
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert query(lake, "SELECT count(*) AS n FROM emotion_attributes").column("n")[0].as_py() == 4


def test_replace_refusal_is_bad_input(lake):
    with lake.transaction() as txn:
        txn.write("emotion_attributes", _attributes(1.0), {"study": "s"}, source_sha256="a")
    with pytest.raises(ReplaceRefusedError):
        with lake.transaction() as txn:
            txn.write("emotion_attributes", _attributes(2.0), {"study": "s"}, source_sha256="b")


def _extract_cli(lake: Lake, tiny: Path, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "cli.py"), "--lake", str(lake.root), "extract", "--model", str(tiny),
            "--dataset", "toy", "--run-id", "r1", "--batch-size", "4", "--chunk-size", "8", *args]


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_two_extractions_with_one_run_id_and_other_settings_one_exits_2(lake, tiny_folder, trial):
    """The issue's race: same --run-id, different templates, at once. Never both exit 0."""
    write_stimuli(lake, 120)
    settings = [("--position", "cls", "--template", "{text}"), ("--position", "cls", "--template", "say {text}")]
    procs = [subprocess.Popen(_extract_cli(lake, tiny_folder, *s), env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in settings]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    message = next(err for code, err in results if code == 2)
    assert "run 'r1' is locked by pid" in message or "already exists with other settings" in message
    winner = next(k for k, (code, _) in enumerate(results) if code == 0)
    run = query(lake, "SELECT template, status, n_stimuli FROM runs").to_pylist()
    assert run == [{"template": settings[winner][3], "status": "complete", "n_stimuli": 120}]
    assert query(lake, "SELECT count(*) AS n FROM activation_vectors").column("n")[0].as_py() == 120 * 2


READER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from emolake.warehouse.database import query
    from emolake.warehouse.lake import Lake
    go = Path(sys.argv[2])
    Path(f"{go}.{sys.argv[3]}.ready").touch()
    while not go.exists():
        time.sleep(0.001)
    print(query(Lake(sys.argv[1]), "SELECT count(*) AS n FROM emotion_attributes").column("n")[0].as_py())
""")


def test_readers_of_a_fresh_lake_build_its_views_once_and_all_succeed(lake, tmp_path):
    """The first query of a lake builds warehouse.duckdb: concurrent first queries must not collide."""
    with lake.transaction() as txn:
        txn.write("emotion_attributes", _attributes(1.0), {"study": "s"})
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", READER, str(lake.root), str(go), str(k)], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(3)]
    deadline = time.time() + 60
    while len(list(tmp_path.glob("go.*.ready"))) < 3 and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    results = [(p.wait(timeout=120), p.stdout.read().strip(), p.stderr.read()) for p in procs]
    assert [(code, out) for code, out, _ in results] == [(0, "4")] * 3, results
