"""`extract --ray` on a local Ray instance (127.0.0.1, no dashboard, 2 CPUs): the shards' union is
the unsharded run, a shard whose worker is SIGKILLed is retried by Ray and resumes without
duplicating a chunk, and an emolake error in a shard is raised, not retried.

Slow: starting Ray and two workers that import torch and load the model takes 30-90 s on the
2-core CI machine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emolake.cli import cli
from emolake.extract.distributed import KILL_ONCE_ENV, extract_ray
from emolake.extract.models.loading import load_model
from emolake.extract.run import ExtractSettings, Shard, extract_run
from emolake.extract.store import read_activation_matrix
from emolake.warehouse.database import query
from emolake.warehouse.errors import LockedError
from test_shard import CHUNK, files, new_lake, progress

ray = pytest.importorskip("ray", reason="the test extra installs ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    lake = new_lake(tmp_path_factory.mktemp("whole"), "lake")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers run (--num-cpus 1): float32 sums then round alike, bit for bit
    try:
        summary = extract_run(lake, ExtractSettings(dataset="toy", batch_size=1, chunk_size=CHUNK),
                              loaded=load_model(None))
    finally:
        torch.set_num_threads(threads)
    return lake, summary["run_id"]


def test_a_killed_shard_is_retried_and_the_run_equals_the_unsharded_one(tmp_path, local_ray, unsharded, monkeypatch):
    whole_lake, run_id = unsharded
    lake = new_lake(tmp_path, "lake")
    marker = tmp_path / "killed-once"
    # shard 1 (chunks 1, 3) is killed with SIGKILL in its 3rd batch: chunk 1 committed, chunk 3 half done
    monkeypatch.setenv(KILL_ONCE_ENV, f"1:3:{marker}")
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "extract", "--dataset", "toy", "--batch-size", "1",
                                      "--chunk-size", str(CHUNK), "--ray", "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert marker.exists()  # the kill happened, and Ray's retry finished the shard
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["run_id"] == run_id and summary["status"] == "complete" and summary["workers"] == 2
    assert summary["chunks_written"] == 4  # 5 chunks; the killed attempt's chunk 1 was kept, not redone
    assert files(lake, run_id) == files(whole_lake, run_id)
    ids, values = read_activation_matrix(lake, run_id)
    ids_whole, values_whole = read_activation_matrix(whole_lake, run_id)
    assert ids == ids_whole
    np.testing.assert_array_equal(values, values_whole)
    assert progress(lake, run_id) == ("complete", 5, 5)
    # never duplicated: one commit per chunk, each file committed once, whatever the retry did
    commits = query(lake, "SELECT path, count(*) AS n FROM _commit_log WHERE table_name = 'activations' "
                          "AND action = 'add' GROUP BY path HAVING n > 1")
    assert commits.num_rows == 0
    chunk_commits = query(lake, "SELECT count(DISTINCT load_id) FROM _commit_log WHERE table_name = 'activations'")
    assert chunk_commits.column(0)[0].as_py() == 5


def test_an_emolake_error_in_a_shard_is_raised_not_retried(tmp_path, local_ray, unsharded):
    _, run_id = unsharded
    lake = new_lake(tmp_path, "lake")
    settings = ExtractSettings(dataset="toy", batch_size=3, chunk_size=CHUNK)
    run_lock, shard_lock = lake.run_lock(run_id), lake.run_lock(f"{run_id} shard 0/2", "a shard elsewhere")
    assert run_lock.acquire(shared=True, timeout=0)
    try:
        with shard_lock.held(), pytest.raises(LockedError, match="shard 0/2"):
            extract_ray(lake, settings, workers=2)
    finally:
        run_lock.release()
    assert progress(lake, run_id) == ("running", 5, 2)  # shard 1/2 ran through: chunks 1 and 3
    assert extract_ray(lake, settings, workers=2)["status"] == "complete"  # the rerun finishes shard 0 only
    assert progress(lake, run_id) == ("complete", 5, 5)
