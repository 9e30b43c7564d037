"""The `prompts` table: stored soft prompts come back bit for bit, listed by the views, errors name the run."""

from __future__ import annotations

import numpy as np
import pytest

from emolake.extract.inference.prompt_store import StoredPrompt, read_prompts, write_prompts
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError, NotFoundError


def _prompt(emotion: str, seed: int, inference_id: str = "inf-1") -> StoredPrompt:
    rng = np.random.default_rng(seed)
    return StoredPrompt(inference_id, emotion, seed, rng.normal(size=(3, 5)).astype(np.float32), ["no", "yes"],
                        {"n_prompt": 3, "epochs": 2}, best_epoch=1, select_accuracy=0.75, report_accuracy=0.5,
                        losses=[0.7, 0.6], model="tiny", weights_sha256="w", tokenizer_sha256="t")


def test_prompts_round_trip_exactly(lake):
    prompts = [_prompt("joy", 3), _prompt("joy", 1), _prompt("anger", 1)]
    with lake.transaction() as txn:
        write_prompts(txn, "inf-1", prompts)
    back = read_prompts(lake, "inf-1")
    assert [p.key for p in back] == [("anger", 1), ("joy", 1), ("joy", 3)]
    original = {p.key: p for p in prompts}
    for p in back:
        o = original[p.key]
        assert p.vectors.dtype == np.float32 and p.vectors.shape == (3, 5)
        assert np.array_equal(p.vectors, o.vectors)
        assert (p.words, p.settings, p.best_epoch, p.losses, p.select_accuracy, p.report_accuracy) == \
               (o.words, o.settings, o.best_epoch, o.losses, o.select_accuracy, o.report_accuracy)
        assert (p.model, p.weights_sha256, p.tokenizer_sha256) == ("tiny", "w", "t")
    assert [p.key for p in read_prompts(lake, "inf-1", emotions=["joy"], seeds=[3])] == [("joy", 3)]


def test_prompt_summary_lists_prompts_without_vectors(lake):
    write_prompts(lake, "inf-1", [_prompt("joy", 1), _prompt("joy", 2)])
    rows = query(lake, "SELECT * FROM prompt_summary ORDER BY seed").to_pylist()
    assert [r["seed"] for r in rows] == [1, 2] and "vectors" not in rows[0]
    assert rows[0]["epochs"] == 2 and rows[0]["final_loss"] == pytest.approx(0.6)


def test_adding_prompts_keeps_the_stored_ones_and_replacing_drops_them(lake):
    write_prompts(lake, "inf-1", [_prompt("joy", 1)], replace=False)
    write_prompts(lake, "inf-1", [_prompt("joy", 2)], replace=False)
    assert [p.seed for p in read_prompts(lake, "inf-1")] == [1, 2]
    write_prompts(lake, "inf-1", [_prompt("anger", 5)])
    assert [p.key for p in read_prompts(lake, "inf-1")] == [("anger", 5)]


def test_unknown_inference_names_it(lake):
    write_prompts(lake, "inf-1", [_prompt("joy", 1)])
    with pytest.raises(NotFoundError, match="inf-2"):
        read_prompts(lake, "inf-2")
    with pytest.raises(NotFoundError, match="inf-1"):
        read_prompts(lake, "inf-1", seeds=[9])


def test_duplicate_or_foreign_prompts_are_refused(lake):
    with pytest.raises(BadInputError, match="same"):
        write_prompts(lake, "inf-1", [_prompt("joy", 1), _prompt("joy", 1)])
    with pytest.raises(BadInputError, match="another inference"):
        write_prompts(lake, "inf-1", [_prompt("joy", 1, "inf-2")])
    assert not lake.partitions("prompts")
