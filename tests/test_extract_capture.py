"""Capture: batched read-outs equal one-prompt-at-a-time ones, hooks go away on error, model loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emolake.extract.capture import capture, encode
from emolake.extract.hooks import active_hook_count
from emolake.extract.models.loading import load_model
from emolake.extract.prompts import fill_template
from extract_models import save_tiny_model
from emolake.warehouse.errors import BadInputError

TEXTS = [
    "I love this so much!", "meh", "Why would anyone ever do that to a dog, honestly I do not understand it at all.",
    "Thanks a lot.", "That is terrifying", "ok", "What a wonderful surprise, I did not expect this from you guys.",
]
IDS = [f"s{i}" for i in range(len(TEXTS))]


@pytest.fixture(scope="module")
def minilm():
    return load_model()


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    return load_model(str(save_tiny_model(tmp_path_factory.mktemp("tiny") / "roberta", "roberta-mlm")))


def _read_outs(loaded, position: str, batch_size: int, order=None):
    texts = TEXTS if order is None else [TEXTS[i] for i in order]
    ids = IDS if order is None else [IDS[i] for i in order]
    prompts = fill_template("{text} I feel {mask}.", texts, loaded.tokenizer.mask_token)
    encoded = encode(loaded, prompts, position, ids)
    captured = capture(loaded, encoded, position, batch_size)
    return np.stack([captured.layer(layer) for layer in range(loaded.n_layers)], axis=1), captured  # [rows, layers, d_ff]


@pytest.mark.parametrize("model_name", ["minilm", "tiny_roberta"])
@pytest.mark.parametrize("position", ["mask", "cls", "mean", "all"])
def test_batched_read_outs_equal_one_prompt_at_a_time(request, model_name, position):
    loaded = request.getfixturevalue(model_name)
    one_at_a_time, _ = _read_outs(loaded, position, batch_size=1)
    for batch_size in (3, 7):
        batched, _ = _read_outs(loaded, position, batch_size)
        assert batched.shape == one_at_a_time.shape
        np.testing.assert_allclose(batched, one_at_a_time, rtol=0, atol=1e-5)
    assert np.abs(one_at_a_time).max() > 1e-3  # not trivially zero


def test_read_outs_do_not_depend_on_batch_composition_or_padding_side(minilm):
    reference, _ = _read_outs(minilm, "mean", batch_size=1)
    for subset in ([2, 1, 3], [6, 2, 0, 5]):  # prompt 2 padded against different neighbours
        batched, _ = _read_outs(minilm, "mean", batch_size=7, order=subset)
        np.testing.assert_allclose(batched, reference[subset], rtol=0, atol=1e-5)
    minilm.tokenizer.padding_side = "left"
    try:
        left, _ = _read_outs(minilm, "mean", batch_size=7)
    finally:
        minilm.tokenizer.padding_side = "right"
    np.testing.assert_allclose(left, reference, rtol=0, atol=1e-5)


def test_read_outs_match_a_plain_forward_pass(minilm):
    """The hooked capture equals reading the FFN output of an unhooked model by hand."""
    captured, _ = _read_outs(minilm, "mask", batch_size=3)
    prompt = fill_template("{text} I feel {mask}.", [TEXTS[2]], minilm.tokenizer.mask_token)
    enc = minilm.tokenizer(prompt, return_tensors="pt")
    seen = {}
    handles = [layer.intermediate.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o))
               for n, layer in enumerate(minilm.model.encoder.layer)]
    try:
        with torch.inference_mode():
            minilm.model(**enc)
    finally:
        for h in handles:
            h.remove()
    where = int((enc["input_ids"][0] == minilm.tokenizer.mask_token_id).nonzero()[0, 0])
    for layer in range(minilm.n_layers):
        np.testing.assert_allclose(captured[2, layer], seen[layer][0, where].numpy(), rtol=0, atol=1e-5)


def test_position_all_keeps_one_row_per_token(tiny_roberta):
    values, captured = _read_outs(tiny_roberta, "all", batch_size=3)
    prompts = fill_template("{text} I feel {mask}.", TEXTS, tiny_roberta.tokenizer.mask_token)
    lengths = [len(x) for x in tiny_roberta.tokenizer(prompts)["input_ids"]]
    assert values.shape == (sum(lengths), 2, 37)
    assert captured.tokens.tolist() == [t for n in lengths for t in range(n)]


def test_hooks_are_removed_when_the_forward_pass_raises(minilm, monkeypatch):
    layer = minilm.model.encoder.layer[3].output

    def broken(*args, **kwargs):
        assert active_hook_count(minilm.model) == minilm.n_layers  # hooks were live during the pass
        raise RuntimeError("boom in layer 3")

    monkeypatch.setattr(layer, "forward", broken)
    with pytest.raises(RuntimeError, match="boom"):
        _read_outs(minilm, "cls", batch_size=4)
    assert active_hook_count(minilm.model) == 0


def test_mlm_head_checkpoint_loads_with_its_head(tiny_roberta):
    assert tiny_roberta.has_mlm_head
    assert type(tiny_roberta.model).__name__ == "RobertaForMaskedLM"
    assert tiny_roberta.hook_point == "roberta.encoder.layer.{layer}.intermediate"
    assert not tiny_roberta.model.training
    assert next(tiny_roberta.model.parameters()).dtype == torch.float32


def test_bundled_model_has_no_mlm_head(minilm):
    assert not minilm.has_mlm_head
    assert (minilm.n_layers, minilm.d_ff) == (6, 1536)
    assert len(minilm.weights_sha256) == 64


def test_unsupported_architecture_is_refused_naming_the_supported_ones(tmp_path):
    folder = save_tiny_model(tmp_path / "electra", "electra")
    with pytest.raises(BadInputError, match="unsupported architecture 'electra'.*bert, roberta, xlm-roberta.*llama"):
        load_model(str(folder))


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        load_model(str(tmp_path / "nothing-here"))


def test_prompt_without_a_mask_token_is_refused(minilm):
    with pytest.raises(BadInputError, match="exactly one mask token"):
        encode(minilm, ["no mask here"], "mask", ["s0"])
