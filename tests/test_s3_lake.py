"""A lake on S3 (`--lake s3://bucket/prefix`) against a local moto server: the same commands and commits.

Every test gets a fresh bucket on one moto server started on 127.0.0.1 for the session (`s3_server.py`).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import emolake
from emolake.cli import cli
from emolake.ingest import embedded
from emolake.warehouse import commit_log
from emolake.warehouse.database import query
from emolake.warehouse.errors import LockedError, ReadOnlyQueryError
from emolake.warehouse.lake import Lake
from emolake.warehouse.storage import ObjectPath
from emolake.warehouse.tables import TABLES
from s3_server import make_bucket, s3_env, s3_lake_url  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _ingest_embedded(url: str) -> None:
    _cli("--lake", url, "ingest", "stimuli", str(embedded.situations_path()), "--layout", "table", "--text-col",
         "text", "--label-col", "emotion", "--split-col", "split", "--id-col", "stimulus_id",
         "--dataset", "emolake-situations")
    _cli("--lake", url, "ingest", "attributes", str(embedded.attributes_path()), "--study", "li2024")
    _cli("--lake", url, "ingest", "similarity", str(embedded.similarity_path()), "--study", "li2024")


def _s3fs():
    import s3fs

    return s3fs.S3FileSystem(use_listings_cache=False)


def _keys(url: str) -> list[str]:
    root = ObjectPath.from_url(url)
    return sorted(str(ObjectPath(k).relative_to(root)) for k in _s3fs().find(root.key))


def test_ingest_query_and_status_on_an_s3_lake(s3_lake_url, tmp_path):
    _ingest_embedded(s3_lake_url)
    lake = Lake(s3_lake_url)
    counts = query(lake, "SELECT (SELECT count(*) FROM stimuli) AS stimuli, "
                         "(SELECT count(DISTINCT emotion) FROM emotion_attributes) AS emotions, "
                         "(SELECT count(*) FROM human_rdm WHERE study = 'li2024') AS pairs").to_pylist()[0]
    assert counts == {"stimuli": 432, "emotions": 27, "pairs": 351}
    out = _cli("--lake", s3_lake_url, "query", "SELECT split, count(*) AS n FROM stimuli GROUP BY 1 ORDER BY 1",
               "--format", "csv")
    assert out.replace('"', '').split() == ["split,n", "dev,54", "test,108", "train,270"]
    status = json.loads(_cli("--lake", s3_lake_url, "status", "--json"))
    assert status["lake"] == s3_lake_url and status["rows"]["stimuli"] == 432
    summary = json.loads(_cli("--lake", s3_lake_url, "export", "stimuli", "--format", "csv", "--out",
                              str(tmp_path / "test.csv"), "--where", "split = 'test'", "--json"))
    assert summary["rows"] == 108 and len((tmp_path / "test.csv").read_text().splitlines()) == 109
    _cli("--lake", s3_lake_url, "export", "human_rdm", "--format", "parquet", "--out", str(tmp_path / "rdm.parquet"))
    assert pq.read_table(tmp_path / "rdm.parquet").num_rows == 351
    keys = _keys(s3_lake_url)
    assert ".emolake" in keys and any(k.startswith("stimuli/dataset=emolake-situations/part-") for k in keys)
    assert len([k for k in keys if k.startswith("_commits/")]) == 4  # the seed + one record per ingest
    assert not any(k.startswith(("_locks/", ".staging")) for k in keys)  # no lock left held, nothing staged
    assert not any(".tmp" in k for k in keys)


def test_a_small_activations_set_reads_back_exactly_from_s3(s3_lake_url, tmp_path):
    from test_extract_released_activations import fake_release

    from emolake.extract.store import read_activation_matrix
    from emolake.ingest.model_emotion_activations import load_released_activations

    values = fake_release(tmp_path / "release", seeds=(1,))
    lake = Lake(s3_lake_url)
    lake.init()
    load_released_activations(tmp_path / "release", lake, {})
    ids, matrix = read_activation_matrix(lake, "li2024-roberta-seed1")
    assert ids == ["anger", "joy"]
    np.testing.assert_array_equal(matrix, np.stack([values[("anger", 1)], values[("joy", 1)]]))
    got = query(lake, "SELECT value FROM activations WHERE stimulus_id = 'joy' AND neuron = 5000").column(0)[0]
    assert np.float32(got.as_py()) == values[("joy", 1)][5000]


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def test_user_sql_on_an_s3_lake_reads_nothing_outside_its_tables(s3_lake_url, tmp_path):
    lake = Lake(s3_lake_url)
    lake.init()
    root = ObjectPath.from_url(s3_lake_url)
    secret = _parquet(pa.table({"secret": [42]}))
    outside = [f"{root.parent.key}/study2/stimuli/x.parquet",  # a sibling prefix sharing the name's start
               f"{root.parent.key}/x.parquet",  # the prefix above
               f"{root.key}/_locks/x.parquet",  # a folder of the lake that is no table
               f"{make_bucket()}/stimuli/x.parquet"]  # another bucket
    for key in outside:
        _s3fs().pipe_file(key, secret)
    local = tmp_path / "local.parquet"
    local.write_bytes(secret)
    tries = [f"s3://{key}" for key in outside] + [str(local), f"{s3_lake_url}/stimuli/../_locks/x.parquet"]
    for path in tries:
        with pytest.raises(ReadOnlyQueryError, match="refused"):
            query(lake, f"SELECT * FROM read_parquet('{path}')")
    result = CliRunner().invoke(cli, ["--lake", s3_lake_url, "query", f"SELECT * FROM read_parquet('{tries[0]}')"])
    assert result.exit_code == 2 and "refused" in result.output
    # the lake's own tables stay readable, through the views and by their paths
    assert query(lake, f"SELECT count(*) AS n FROM read_parquet('{s3_lake_url}/stimuli/*/*.parquet')").to_pylist() \
        == [{"n": 0}]


# A commit of three partitions of two tables (3 data files + the loads file, one record, 3 replaced
# files deleted), run as its own process so that a fault point can SIGKILL it mid-commit.
def write_state(lake: Lake, n: int) -> None:
    with lake.transaction(f"state {n}") as txn:
        for study in ("s1", "s2"):
            txn.write("emotion_attributes", pa.table({"emotion": [f"e{i}" for i in range(n)], "attribute": ["a"] * n,
                                                      "value": [float(n)] * n, "source": ["test"] * n}), {"study": study})
        txn.write("stimuli", pa.table({"split": ["test"] * n, "stimulus_id": [f"s{i}" for i in range(n)],
                                       "text": ["t"] * n, "emotion": ["joy"] * n, "n_labels": [1] * n,
                                       "source_row": list(range(n))}), {"dataset": "d"})


WRITER = "\n".join(["import sys", "import pyarrow as pa", "from emolake.warehouse.lake import Lake",
                    *textwrap.dedent(inspect.getsource(write_state)).splitlines(),
                    "write_state(Lake(sys.argv[1]), int(sys.argv[2]))"])


def _counts(lake: Lake) -> dict[str, int]:
    return query(lake, "SELECT (SELECT count(*) FROM stimuli) AS stimuli, "
                       "(SELECT count(*) FROM emotion_attributes) AS attributes").to_pylist()[0]


def _orphans(lake: Lake) -> list[str]:
    """Data files no commit names: what a killed writer left."""
    named = {f.path for f in lake.live_files()} | {str(lake.seed_path(spec).relative_to(lake.root))
                                                   for spec in TABLES.values()}
    return sorted(p for p in (str(path.relative_to(lake.root)) for path, _, _ in lake._data_files()) if p not in named)


@pytest.mark.parametrize("point", [
    "commit:moved:1", pytest.param("commit:record-written", marks=pytest.mark.heavy),
    "commit:published", pytest.param("commit:deleted:0", marks=pytest.mark.heavy),
])  # one kill before the record's PUT and one after by default; all four with -m heavy
def test_a_commit_killed_on_s3_shows_old_or_new_and_the_next_writer_cleans_up(s3_lake_url, point):
    lake = Lake(s3_lake_url)
    lake.init()
    write_state(lake, 3)
    old, new = {"stimuli": 3, "attributes": 6}, {"stimuli": 5, "attributes": 10}
    assert _counts(lake) == old
    package_parent = str(Path(emolake.__file__).resolve().parent.parent)
    env = {**os.environ, commit_log.FAULT_ENV: point,
           "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), package_parent) if p)}
    killed = subprocess.run([sys.executable, "-c", WRITER, s3_lake_url, "5"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr  # SIGKILL at the fault point
    published = point.startswith(("commit:published", "commit:deleted"))
    assert _counts(lake) == (new if published else old)  # whole commits only
    if point.startswith(("commit:moved", "commit:record")):
        assert _orphans(lake), "the killed writer's uploaded files should be there, unnamed"
    assert "_locks/lake.lock" in _keys(s3_lake_url)  # the dead writer's lock
    write_state(lake, 7)  # the next writer breaks the dead writer's lock, cleans up and commits
    assert _counts(lake) == {"stimuli": 7, "attributes": 14}
    assert _orphans(lake) == [] and not any(k.startswith("_locks/") for k in _keys(s3_lake_url))


def test_an_s3_lake_takes_one_writer_at_a_time_and_breaks_only_stale_locks(s3_lake_url, monkeypatch):
    lake = Lake(s3_lake_url)
    lake.init()
    with lake.run_lock("r1", "extract --run-id r1").held():
        with pytest.raises(LockedError, match=r"run 'r1' is locked by pid \d+ \(`extract --run-id r1`"):
            lake.run_lock("r1", "extract again").require(timeout=0.3)
    with lake.run_lock("r1", "extract again").held():  # released: free again
        pass
    assert not any(k.startswith("_locks/") for k in _keys(s3_lake_url))

    # a holder that stops renewing (hung, or its machine died) is stale after its lease, and then
    # learns that it lost the lock: its next renewal fails and `check` refuses to publish
    monkeypatch.setenv("EMOLAKE_LOCK_LEASE", "1")
    hung = lake.run_lock("r2", "hung")
    hung.require()
    hung._stop.set()
    hung._renewer.join()
    taker = lake.run_lock("r2", "taker").require(timeout=10)
    assert hung.renew() is False
    with pytest.raises(LockedError, match="broken by another writer"):
        hung.check()
    taker.release()
    hung._renewer = None  # its lock object is the taker's: nothing to release


S3_EMOTIONS = ("admiration", "anger", "fear", "gratitude", "joy", "love", "pride", "sadness", "surprise")  # 36 pairs


def _study(lake: str) -> dict[str, list]:
    """ingest, extract (bundled MiniLM), rsa, searchlight, neurons on `lake`; the results as rows."""
    _ingest_embedded(lake)
    _cli("--lake", lake, "extract", "--dataset", "emolake-situations", "--split", "test", "--run-set", "s3-minilm",
         "--chunk-size", "24", "--emotions", ",".join(S3_EMOTIONS))  # 2 chunks: the S3 server runs in this process
    _cli("--lake", lake, "rsa", "--study", "li2024", "--run-set", "s3-minilm", "--permutations", "20",
         "--bootstrap", "20", "--seed", "0", "--no-layers")
    _cli("--lake", lake, "searchlight", "--run-set", "s3-minilm", "--study", "li2024", "--inference", "asymptotic")
    _cli("--lake", lake, "neurons", "--run-set", "s3-minilm", "--study", "li2024", "--k", "100")
    sql = {"model_rsa": "SELECT target, metric, tau, p FROM model_rsa ORDER BY ALL",
           "searchlight": "SELECT attribute, count(*) AS n, sum(tau) AS tau FROM searchlight GROUP BY 1 ORDER BY 1",
           "attribute_neurons": "SELECT attribute, k, neuron, rank FROM attribute_neurons ORDER BY ALL"}
    rows = {}
    for name, text in sql.items():
        out = CliRunner().invoke(cli, ["--lake", lake, "query", text, "--format", "json"])
        assert out.exit_code == 0, out.output
        rows[name] = json.loads(out.stdout)
    return rows


@pytest.mark.slow
def test_extraction_and_analyses_on_s3_give_the_local_lake_s_results(s3_lake_url, tmp_path):
    on_s3 = _study(s3_lake_url)
    assert on_s3["model_rsa"] and on_s3["attribute_neurons"] and len(on_s3["searchlight"]) == 14
    assert on_s3 == _study(str(tmp_path / "local-lake"))
    runs = query(Lake(s3_lake_url), "SELECT n_stimuli, status FROM runs").to_pylist()
    assert runs == [{"n_stimuli": 4 * len(S3_EMOTIONS), "status": "complete"}]
