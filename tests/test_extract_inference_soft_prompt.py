"""Soft-prompt tuning on a tiny random-weight RoBERTa: the loss falls and only the prompt is trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ablation_fixtures import stimuli, tiny_bert, tiny_roberta
from emolake.extract.inference.run import InferenceConfig, fit_inference
from emolake.extract.inference.soft_prompt import train_soft_prompt, word_logits
from emolake.warehouse.errors import BadInputError


def _data():
    texts = [f"I am {w} today" for w in ("happy", "glad", "cheerful", "delighted")] + \
            [f"I am {w} today" for w in ("furious", "angry", "livid", "mad")]
    return texts, np.array([1, 1, 1, 1, 0, 0, 0, 0])


def test_soft_prompt_loss_falls_and_only_the_prompt_changes():
    tiny = tiny_roberta(seed=1)
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    texts, labels = _data()
    result = train_soft_prompt(tiny.model, tiny.tokenizer, (texts, labels), (texts, labels), ["no", "yes"],
                               seed=0, n_prompt=4, epochs=8, lr=0.1, batch_size=8)
    assert result.losses[-1] < result.losses[0]
    after = tiny.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the model is frozen
    assert result.prompt.shape == (4, 32)
    assert not torch.equal(result.prompt, tiny.model.get_input_embeddings().weight[:4])


def test_best_prompt_is_the_best_epoch_on_the_select_split():
    tiny = tiny_roberta(seed=2)
    texts, labels = _data()
    result = train_soft_prompt(tiny.model, tiny.tokenizer, (texts, labels), (texts[::-1], labels[::-1]),
                               ["no", "yes"], seed=0, n_prompt=3, epochs=4, lr=0.1, batch_size=4)
    word_ids = [tiny.tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in ("no", "yes")]
    with torch.no_grad():
        predicted = word_logits(tiny.model, tiny.tokenizer, texts[::-1], result.prompt, word_ids, "cpu").argmax(1)
    assert float((predicted.numpy() == labels[::-1]).mean()) == pytest.approx(result.select_accuracy)
    assert 0 <= result.best_epoch < 4


def test_soft_prompt_inference_reports_each_split():
    tiny = tiny_roberta()
    config = InferenceConfig(model="tiny", dataset="demo", readout="soft-prompt", emotions=["joy"],
                             soft_prompt={"n_prompt": 2, "epochs": 2, "batch_size": 8})
    fitted = fit_inference(tiny, stimuli(per_emotion=3), config)
    assert sorted(fitted.accuracy["split"]) == ["dev", "test", "train"]
    assert fitted.probes == {} and fitted.readout is None


def test_soft_prompt_needs_an_mlm_head():
    tiny = tiny_bert()
    with pytest.raises(BadInputError, match="masked-LM or causal-LM head"):
        train_soft_prompt(tiny.model, tiny.tokenizer, _data(), _data(), ["no", "yes"], epochs=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_soft_prompt_runs_on_the_gpu():
    tiny = tiny_roberta()
    texts, labels = _data()
    result = train_soft_prompt(tiny.model, tiny.tokenizer, (texts, labels), (texts, labels), ["no", "yes"],
                               device="cuda", n_prompt=2, epochs=2)
    assert result.prompt.device.type == "cuda"
