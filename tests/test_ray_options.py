"""`extract --ray` without starting Ray: its refusals, the progress book-keeping of retried
shards, and the kill-once test hook (the Ray runs themselves: tests/test_ray_extract.py, slow)."""

from __future__ import annotations

import pytest

from emolake.extract.distributed import KILL_ONCE_ENV, _kill_hook, _Progress, extract_ray
from emolake.extract.run import ExtractSettings, Shard
from emolake.warehouse.errors import BadInputError


def test_ray_refuses_a_shard_and_zero_workers_before_starting_anything(lake):
    with pytest.raises(BadInputError, match="drop --shard"):
        extract_ray(lake, ExtractSettings(shard=Shard(0, 2)), workers=2)
    with pytest.raises(BadInputError, match="at least 1"):
        extract_ray(lake, ExtractSettings(), workers=0)


def test_a_retried_shard_restarts_its_count_from_what_the_lake_holds():
    progress = _Progress()
    progress.start(0, 10, 0)
    progress.start(1, 8, 0)
    progress.advance(1, 6)  # shard 1 dies after 6 prompts, 4 of them committed
    progress.start(1, 8, 4)  # its retry starts from the lake
    progress.advance(0, 10)
    progress.advance(1, 4)
    assert progress.snapshot() == (18, 18, 2)


def test_the_kill_hook_fires_once_for_its_shard_and_batch(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv(KILL_ONCE_ENV, f"1:2:{marker}")
    assert _kill_hook(Shard(0, 2))() is None  # another shard: a no-op
    marker.touch()  # already fired: the retried attempt runs through
    hook = _kill_hook(Shard(1, 2))
    for _ in range(3):
        hook()
    monkeypatch.delenv(KILL_ONCE_ENV)
    assert _kill_hook(Shard(1, 2))() is None
