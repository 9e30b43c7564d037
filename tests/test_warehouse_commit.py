"""Atomic commits: a commit is one published record; a kill at any point of a multi-file commit
leaves readers (warehouse views in Python, the DuckDB shell) the old state or the new one, never a
mix, and the next writer cleans up what the killed one left."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, shared_data_dir, tree_hashes
from emolake.warehouse import commit_log
from emolake.warehouse.database import query, table_counts
from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import Lake
from emolake.warehouse.tables import TABLES

SHELL = shutil.which("duckdb") or str(Path(sys.executable).parent / "duckdb")
HAS_SHELL = Path(SHELL).is_file()
# What the checks compare: every data view (the commit log itself grows with checkpoints).
VIEWS = ("stimuli", "emotion_attributes", "loads", "_live_files")


def _attributes(n: int, value: float) -> pa.Table:
    return pa.table({"emotion": [f"e{i}" for i in range(n)], "attribute": ["a"] * n,
                     "value": [value] * n, "source": ["test"] * n})


def _stimuli(n: int) -> pa.Table:
    return pa.table({"split": ["test"] * n, "stimulus_id": [f"s{i}" for i in range(n)], "text": ["t"] * n,
                     "emotion": ["joy"] * n, "n_labels": [1] * n, "source_row": list(range(n))})


# One multi-file commit: three partitions of two tables replaced (3 data files + the loads file moved,
# one record, 3 replaced files deleted). Run as its own process so that a fault point can kill it.
def write_state(lake: Lake, n: int) -> None:
    with lake.transaction(f"state {n}") as txn:
        for study in ("s1", "s2"):
            txn.write("emotion_attributes", _attributes(n, float(n)), {"study": study})
        txn.write("stimuli", _stimuli(n), {"dataset": "d"})


WRITER = "\n".join([
    "import sys", "import pyarrow as pa", "from warehouse.lake import Lake",
    *(line for name in ("_attributes", "_stimuli", "write_state")
      for line in textwrap.dedent(inspect.getsource(globals()[name])).splitlines()),
    "write_state(Lake(sys.argv[1]), int(sys.argv[2]))",
])


FAULT_POINTS = ([f"commit:moved:{i}" for i in range(4)] + ["commit:record-written", "commit:published"]
                + [f"commit:deleted:{i}" for i in range(3)])


def _visible(lake: Lake) -> dict[str, int]:
    row = query(lake, "SELECT " + ", ".join(f"(SELECT count(*) FROM {v}) AS {v}" for v in VIEWS)).to_pylist()
    return row[0]


def _shell_counts(lake: Lake, cwd: Path | None = None) -> dict[str, int]:
    """The same counts from the DuckDB shell: in the lake directory, or from `cwd` with file_search_path."""
    select = " UNION ALL ".join(f"SELECT '{v}', count(*) FROM {v}" for v in VIEWS)
    if cwd is None:
        args, cwd = ["warehouse.duckdb", "-c", select], lake.root
    else:
        args = [str(lake.database_path), "-c", f"SET file_search_path = '{lake.root}'; {select}"]
    result = subprocess.run([SHELL, "-readonly", "-csv", "-noheader", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return {name: int(n) for name, n in (line.split(",") for line in result.stdout.split())}


def _orphans(lake: Lake) -> list[str]:
    """Files in the lake that no commit names: what a killed writer left."""
    live = {f.path for f in lake.live_files()}
    seeds = {str(lake.seed_path(spec).relative_to(lake.root)) for spec in TABLES.values()}
    found = [str(p.relative_to(lake.root)) for p, _, _ in lake._data_files()]
    return sorted(p for p in found if p not in live and p not in seeds) + (
        ["<.staging>"] if (lake.root / ".staging").exists() else [])


def test_a_commit_publishes_one_record_naming_its_files(lake):
    records = commit_log.record_files(lake.root)
    write_state(lake, 3)
    new = [p for p in commit_log.record_files(lake.root) if p not in records]
    assert len(new) == 1
    rows = pq.read_table(new[0]).to_pylist()
    assert sorted(r["table_name"] for r in rows if r["action"] == "add") == [
        "emotion_attributes", "emotion_attributes", "loads", "stimuli"]
    assert all((lake.root / r["path"]).is_file() for r in rows)
    write_state(lake, 5)  # replaces the three partitions: the record removes the three old files
    (latest_path,) = set(commit_log.record_files(lake.root)) - set(records) - set(new)
    latest = pq.read_table(latest_path).to_pylist()
    removed = [r["path"] for r in latest if r["action"] == "remove"]
    assert len(removed) == 3 and not any((lake.root / p).exists() for p in removed)
    assert _visible(lake)["emotion_attributes"] == 10


def test_files_no_commit_names_are_invisible_and_cleaned_by_the_next_writer(lake):
    write_state(lake, 3)
    orphan = lake.table_dir("stimuli") / "dataset=d" / "part-orphan.parquet"
    pq.write_table(_stimuli(7), orphan)  # as a writer killed before its record leaves it
    (lake.root / ".staging" / "killed" / "stimuli").mkdir(parents=True)
    assert query(lake, "SELECT count(*) AS n FROM stimuli").column("n")[0].as_py() == 3
    assert lake.live_paths("stimuli", "dataset=d") != [] and orphan not in lake.live_paths("stimuli")
    write_state(lake, 4)
    assert not orphan.exists() and not (lake.root / ".staging").exists() and _orphans(lake) == []


def test_a_refused_commit_leaves_the_lake_byte_for_byte(lake):
    write_state(lake, 3)
    before = tree_hashes(lake.root)
    with pytest.raises(RuntimeError):
        with lake.transaction() as txn:
            txn.write("stimuli", _stimuli(9), {"dataset": "d"})
            raise RuntimeError("boom")
    assert tree_hashes(lake.root) == before


def test_a_path_the_lake_held_is_never_written_again(lake):
    """A removal must stay final: re-adding a removed path would need the log's order."""
    with lake.transaction() as txn:
        txn.write("stimuli", _stimuli(2), {"dataset": "d"}, part_name="part-fixed.parquet")
    with lake.transaction() as txn:
        txn.write("stimuli", _stimuli(3), {"dataset": "d"})
    with pytest.raises(Exception, match="already holds this path"):
        with lake.transaction() as txn:
            txn.write("stimuli", _stimuli(4), {"dataset": "d"}, part_name="part-fixed.parquet")
    assert query(lake, "SELECT count(*) AS n FROM stimuli").column("n")[0].as_py() == 3


def test_checkpoint_folds_the_log_and_keeps_the_lake(lake, monkeypatch):
    monkeypatch.setattr(commit_log, "CHECKPOINT_AFTER", 4)
    for n in range(2, 9):
        write_state(lake, n)
    with lake.writing():  # the clean-up of the first writer checkpoints
        pass
    names = [p.name for p in commit_log.record_files(lake.root)]
    assert len(names) <= 3 and any(n.endswith(commit_log.CHECKPOINT_SUFFIX) for n in names)
    assert _visible(lake)["emotion_attributes"] == 16 and _visible(lake)["loads"] == 7 * 3
    write_state(lake, 2)
    assert _visible(lake)["stimuli"] == 2


def test_a_lake_written_before_the_commit_log_is_adopted(lake):
    write_state(lake, 3)
    for record in commit_log.record_files(lake.root):  # what a format-1 lake looks like
        record.unlink()
    (lake.root / ".emolake").write_text('{"format": 1}')
    assert _visible(lake)["stimuli"] == 3 and _visible(lake)["emotion_attributes"] == 6
    assert lake._format() == 2


@pytest.mark.skipif(not HAS_SHELL, reason="the DuckDB shell is not installed (pip install duckdb-cli)")
def test_the_shell_sees_the_same_lake_in_the_lake_and_from_elsewhere(lake, tmp_path):
    write_state(lake, 3)
    write_state(lake, 4)
    pq.write_table(_stimuli(7), lake.table_dir("stimuli") / "dataset=d" / "part-orphan.parquet")
    expected = _visible(lake)
    assert _shell_counts(lake) == expected
    assert _shell_counts(lake, cwd=tmp_path) == expected


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> tuple[Lake, dict, dict]:
    """A lake in the old state (views built), and what readers see in the old and the new state."""
    lake = Lake(tmp_path_factory.mktemp("old") / "lake")
    lake.init()
    write_state(lake, 3)
    old = _visible(lake)
    reference = Lake(tmp_path_factory.mktemp("new") / "lake")
    shutil.copytree(lake.root, reference.root)
    write_state(reference, 5)
    return lake, old, _visible(reference)


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_commit_killed_at_any_point_shows_old_or_new_never_a_mix(tmp_path, states, point):
    base, old, new = states
    lake = Lake(tmp_path / "lake")
    shutil.copytree(base.root, lake.root)
    env = {**os.environ, commit_log.FAULT_ENV: point}
    killed = subprocess.run([sys.executable, "-c", WRITER, str(lake.root), "5"],
                            env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr  # SIGKILL at the fault point
    seen = _visible(lake)
    assert seen in (old, new), f"killed at {point}: a mix of commits is visible: {seen}"
    assert seen == (new if point.startswith(("commit:published", "commit:deleted")) else old)
    if HAS_SHELL:
        assert _shell_counts(lake) == seen
    write_state(lake, 5)  # the next writer cleans up and succeeds
    data = ("stimuli", "emotion_attributes")
    assert {v: _visible(lake)[v] for v in data} == {v: new[v] for v in data}
    assert _orphans(lake) == []


@pytest.fixture(scope="module")
def release_lake(tmp_path_factory) -> Lake:
    """A lake holding the study's release, loaded once by the real command."""
    release = shared_data_dir() / "model_emotion"
    if not release.is_dir():
        pytest.skip(f"real data not found at {release}")
    lake = Lake(tmp_path_factory.mktemp("release") / "lake")
    first = subprocess.run([*_cli(lake), "ingest", "model-emotion", str(release)], env=_env(), capture_output=True,
                           text=True)
    assert first.returncode == 0, first.stderr
    return lake


def _cli(lake: Lake) -> list[str]:
    return [sys.executable, str(REPO / "cli.py"), "--lake", str(lake.root)]


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


@pytest.mark.slow
@pytest.mark.parametrize("point", [
    pytest.param("commit:moved:40", marks=pytest.mark.heavy),  # rolled back (as every point on the small lake)
    "commit:published",  # rolled forward: the mart's own rebuild has not run
])
def test_ingest_model_emotion_killed_mid_commit(release_lake, tmp_path, point):
    """The real command: an `emolake ingest model-emotion` reload (one commit of 202 files) killed mid-commit.

    Every fault point is tested on a small lake above; here, at the scale of the release, one after the
    commit is published (rolled forward; by default) and one before (rolled back; `-m heavy`)."""
    release = shared_data_dir() / "model_emotion"
    lake = Lake(tmp_path / "lake")
    shutil.copytree(release_lake.root, lake.root)
    record = max((pq.read_table(p).to_pylist() for p in commit_log.record_files(lake.root)), key=len)
    replaced = sum(r["action"] == "add" and r["table_name"] not in ("loads", "_json") for r in record)
    point = point.replace("deleted:last", f"deleted:{replaced - 1}")  # the data files; loads and JSON stay
    old = _visible_all(lake)
    killed = subprocess.run([*_cli(lake), "ingest", "model-emotion", str(release)], capture_output=True, text=True,
                            env=_env(**{commit_log.FAULT_ENV: point}))
    assert killed.returncode == -9, killed.stderr
    seen = _visible_all(lake)
    _assert_model_rdm_old_or_refused(lake, old["model_rdm"], rolled_forward=point == "commit:published")
    # Same source again: the new state's data equal the old; a mix would double or drop rows. The
    # manifest (`loads`, and the live files: one more loads file and validation JSONs) tells them apart.
    assert _data(seen) == _data(old)
    assert seen["loads"] in (old["loads"], old["loads"] + replaced)  # one loads row per data file of the commit
    assert (seen["loads"] == old["loads"]) == (seen["_live_files"] == old["_live_files"])
    if HAS_SHELL:
        assert _shell_counts(lake) == {v: seen[v] for v in VIEWS}
    again = subprocess.run([*_cli(lake), "ingest", "model-emotion", str(release)], env=_env(), capture_output=True,
                           text=True)
    assert again.returncode == 0, again.stderr
    assert _orphans(lake) == []
    after = _visible_all(lake)
    assert _data(after) == _data(old)
    assert query(lake, "SELECT count(*) AS n FROM model_rdm").to_pylist() == [{"n": old["model_rdm"]}]


def _assert_model_rdm_old_or_refused(lake: Lake, rows: int, *, rolled_forward: bool) -> None:
    """The mart's rebuild is its own commit, after the data's: a kill in between leaves it stale, and
    `model_rdm` then refuses the run set by name (never serves stale rows) until the next commit or
    `emolake refresh` rebuilds it; a kill before the data's commit leaves it fresh with the old rows."""
    if not rolled_forward:
        assert query(lake, "SELECT count(*) AS n FROM model_rdm").to_pylist() == [{"n": rows}]
        return
    with pytest.raises(BadInputError, match=r"model_rdm is not materialised for run set 'li2024-roberta' "
                                            r"\(its input files changed since it was built\); run `emolake refresh`"):
        query(lake, "SELECT count(*) FROM model_rdm")
    assert query(lake, "SELECT count(*) AS n FROM model_rdm_computed").to_pylist() == [{"n": rows}]


def _data(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k not in ("loads", "_live_files")}


def _visible_all(lake: Lake) -> dict[str, int]:
    """Row counts of every view but the commit log itself; `model_rdm` (a mart that may be stale after a kill)
    counted through its computing view."""
    counts = {v: n for v, n in table_counts(lake, skip=("model_rdm",)).items() if v != "_commit_log"}
    return {**counts, "model_rdm": counts["model_rdm_computed"]}
