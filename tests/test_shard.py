"""`extract --shard I/N` on the bundled all-MiniLM-L6-v2: shards together hold exactly the
unsharded run (same run id, manifest, files, rows, values), resume each other, report progress in
`runs`, and lock each other out only where they would overlap."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from emolake.cli import cli
from emolake.extract.models.loading import load_model
from emolake.extract.run import ExtractSettings, Shard, extract_run, parse_shard, read_manifest
from emolake.extract.store import read_activation_matrix
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError, LockedError
from emolake.warehouse.lake import Lake

TEXTS = ["I can't believe they did this to me", "What a lovely surprise, thank you!", "This is so boring",
         "I'm scared of what comes next", "Well that was unexpected", "I miss her every day",
         "Best day of my life", "Ugh, gross", "Thanks, that helps a lot"]
CHUNK = 2  # 9 stimuli -> chunks 0..4 (the last holds 1)
TIMES = ("created_at", "finished_at")  # when, not what: the only manifest fields that may differ


def write_stimuli(lake: Lake, order: list[int] | None = None) -> list[str]:
    """The nine stimuli; `order` permutes the rows of the ingested table (source_row stays the text's)."""
    order = order or list(range(len(TEXTS)))
    ids = [f"s{i:02d}" for i in range(len(TEXTS))]
    with lake.transaction("test") as txn:
        txn.write("stimuli", pa.table({
            "split": ["test"] * len(order), "stimulus_id": [ids[i] for i in order], "text": [TEXTS[i] for i in order],
            "emotion": ["joy" if i % 2 else "anger" for i in order], "n_labels": [1] * len(order),
            "source_row": order}), {"dataset": "toy"})
    return ids


@pytest.fixture(scope="module")
def minilm():
    return load_model(None)


def new_lake(tmp_path, name: str, order: list[int] | None = None) -> Lake:
    lake = Lake(tmp_path / name)
    lake.init()
    write_stimuli(lake, order)
    return lake


def settings(shard: Shard = Shard()) -> ExtractSettings:
    return ExtractSettings(dataset="toy", batch_size=3, chunk_size=CHUNK, shard=shard)


def files(lake: Lake, run_id: str) -> list[str]:
    return sorted(f.path for f in lake.live_files("activations", f"run_id={run_id}"))


def progress(lake: Lake, run_id: str) -> tuple:
    row = query(lake, f"SELECT status, n_chunks, chunks_done FROM runs WHERE run_id = '{run_id}'").to_pylist()[0]
    return row["status"], row["n_chunks"], row["chunks_done"]


def without_times(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k not in TIMES}


def test_shard_parsing_and_ownership():
    assert parse_shard("1/4") == Shard(1, 4) and parse_shard(" 0 / 1 ").whole
    assert [k for k in range(10) if Shard(1, 3).owns(k)] == [1, 4, 7]
    for bad in ("4/4", "-1/2", "1/0", "a/b", "1", "1/2/3", ""):
        with pytest.raises(BadInputError, match="shard"):
            parse_shard(bad)


def test_shards_together_hold_exactly_the_unsharded_run(tmp_path, minilm):
    whole_lake = new_lake(tmp_path, "whole")
    whole = extract_run(whole_lake, settings(), loaded=minilm)
    assert whole["chunks"] == 5
    # the sharded lake ingested its rows in another order: the shards are the same all the same
    lake = new_lake(tmp_path, "sharded", order=[8, 3, 0, 5, 1, 7, 2, 6, 4])
    summaries = []
    for index in (2, 0, 1):  # any order
        summaries.append(extract_run(lake, settings(Shard(index, 3)), loaded=minilm))
        assert summaries[-1]["run_id"] == whole["run_id"]
    run_id = whole["run_id"]
    assert [s["chunks_written"] for s in summaries] == [1, 2, 2]  # shard 2: chunk 2; 0: 0, 3; 1: 1, 4
    assert [s["status"] for s in summaries] == ["shard complete, run running"] * 2 + ["complete"]
    assert summaries[0]["shard_stimuli"] == 2 and summaries[1]["shard_stimuli"] == 4
    assert files(lake, run_id) == files(whole_lake, run_id)
    ids_whole, values_whole = read_activation_matrix(whole_lake, run_id)
    ids, values = read_activation_matrix(lake, run_id)
    assert ids == ids_whole and values.shape == (9, 6 * 1536)
    np.testing.assert_array_equal(values, values_whole)  # same rows, same order, same bits
    assert without_times(read_manifest(lake, run_id)) == without_times(read_manifest(whole_lake, run_id))
    assert progress(lake, run_id) == progress(whole_lake, run_id) == ("complete", 5, 5)
    long = "SELECT stimulus_id, neuron, value FROM activations ORDER BY ALL"
    assert query(lake, long).equals(query(whole_lake, long))


def test_the_run_is_complete_only_when_every_shard_is_and_shards_resume_each_other(tmp_path, minilm):
    lake = new_lake(tmp_path, "lake")
    first = extract_run(lake, settings(Shard(1, 2)), loaded=minilm)  # chunks 1, 3
    run_id = first["run_id"]
    assert progress(lake, run_id) == ("running", 5, 2)
    assert extract_run(lake, settings(Shard(1, 2)), loaded=minilm)["chunks_written"] == 0  # a rerun: nothing new
    other_n = extract_run(lake, settings(Shard(0, 3)), loaded=minilm)  # chunks 0, 3: only 0 is missing
    assert other_n["chunks_written"] == 1 and progress(lake, run_id) == ("running", 5, 3)
    rest = extract_run(lake, settings(), loaded=minilm)  # unsharded: writes what no shard wrote
    assert rest["chunks_written"] == 2 and rest["status"] == "resumed and complete"
    assert progress(lake, run_id) == ("complete", 5, 5)
    assert extract_run(lake, settings(Shard(0, 2)), loaded=minilm)["status"] == "already complete"
    commands = query(lake, "SELECT DISTINCT command FROM loads WHERE table_name = 'activations' ORDER BY 1")
    assert "extract --shard 1/2 (chunk 3)" in commands.column(0).to_pylist()


def test_shard_locks_refuse_overlap_only(tmp_path, minilm):
    lake = new_lake(tmp_path, "lake")
    run_id = extract_run(lake, settings(Shard(0, 5)), loaded=minilm)["run_id"]  # shard 0/5: chunk 0
    # shard 1/5 running elsewhere holds what every shard holds: the run lock shared, its own exclusively
    run_lock, shard_lock = lake.run_lock(run_id), lake.run_lock(f"{run_id} shard 1/5", "another extract")
    assert run_lock.acquire(shared=True, timeout=0)
    try:
        with shard_lock.held():
            with pytest.raises(LockedError, match="shard 1/5"):
                extract_run(lake, settings(Shard(1, 5)), loaded=minilm)
            with pytest.raises(LockedError, match=run_id):  # the unsharded run would overlap it
                extract_run(lake, settings(), loaded=minilm)
            assert extract_run(lake, settings(Shard(2, 5)), loaded=minilm)["chunks_written"] == 1  # others go on
    finally:
        run_lock.release()
    whole = lake.run_lock(run_id, "extract (unsharded)")
    with whole.held():
        with pytest.raises(LockedError, match="unsharded"):
            extract_run(lake, settings(Shard(3, 5)), loaded=minilm)
    assert progress(lake, run_id) == ("running", 5, 2)


def _cli(lake: Lake, *args: str):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), "extract", "--dataset", "toy", *args])


def test_cli_shard_flag_and_its_bad_input(tmp_path, minilm, monkeypatch):
    lake = new_lake(tmp_path, "lake")
    before = sorted(p.relative_to(lake.root).as_posix() for p in lake.root.rglob("*") if p.is_file())
    for args, message in ((["--shard", "2/2"], "0 <= I < N"), (["--shard", "x"], "I/N"),
                          (["--workers", "2"], "--workers is an option of --ray")):
        result = _cli(lake, *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert sorted(p.relative_to(lake.root).as_posix() for p in lake.root.rglob("*") if p.is_file()) == before
    import emolake.extract.run as run_module

    monkeypatch.setattr(run_module, "load_model", lambda *a, **k: minilm)  # the module's model, loaded once
    result = _cli(lake, "--shard", "1/2", "--chunk-size", "4", "--batch-size", "4", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["shard"] == "1/2" and summary["chunks_written"] == 1 and summary["shard_stimuli"] == 4
    assert summary["status"] == "shard complete, run running" and summary["chunks_done"] == 1
