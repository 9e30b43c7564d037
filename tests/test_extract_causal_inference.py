"""Emotion inference and ablation on decoder LMs (tiny random Llama, GPT-2, Qwen3 with their LM heads):
the verbalizer's next-token scores and the probe's last-token states against one-prompt-at-a-time
hand computations, soft prompts in front of the text, and ablation sweeps through the same hooks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ablation_fixtures import stimuli
from emolake.extract.ablation.edits import AblationEdit, condition_masks, stacked_hook_factory, unablated_condition
from emolake.extract.inference.readouts import ProbeReadout, readout_features, verbalizer_readout
from emolake.extract.inference.run import InferenceConfig, fit_inference
from extract_models import tiny_model, tiny_tokenizer
from test_extract_ablation import _condition

TEXTS = ["I am so happy today", "this makes me furious and I want to scream", "scared", "a quiet afternoon"]
WORDS = ["joy", "anger", "fear"]


def tiny(kind: str = "llama") -> SimpleNamespace:
    return SimpleNamespace(model=tiny_model(kind), tokenizer=tiny_tokenizer())


@pytest.mark.parametrize("kind", ["llama", "gpt2", "qwen3"])
def test_causal_verbalizer_scores_the_next_token_after_the_prompt(kind):
    lm = tiny(kind)
    readout = verbalizer_readout(lm.model, lm.tokenizer, WORDS, "{text} I feel {mask}.")
    assert readout.template == "{text} I feel" and readout.mask_token_id is None
    batched = readout_features(lm.model, lm.tokenizer, TEXTS, readout, batch_size=4)[0]  # [texts, words]
    ids = [lm.tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in WORDS]
    for i, text in enumerate(TEXTS):
        alone = lm.tokenizer([f"{text} I feel"], return_tensors="pt")
        with torch.inference_mode():
            logits = lm.model(input_ids=alone["input_ids"]).logits[0, -1]  # [vocab]
        expected = torch.log_softmax(logits, -1)[ids].numpy()
        np.testing.assert_allclose(batched[i], expected, atol=1e-5, rtol=1e-5)


def test_causal_probe_pools_the_last_real_token():
    lm = tiny("llama")
    features = readout_features(lm.model, lm.tokenizer, TEXTS, ProbeReadout("last", "{text}"), batch_size=4)[0]
    for i, text in enumerate(TEXTS):
        alone = lm.tokenizer([text], return_tensors="pt")
        with torch.inference_mode():
            hidden = lm.model.base_model(input_ids=alone["input_ids"]).last_hidden_state[0, -1]
        np.testing.assert_allclose(features[i], hidden.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("readout", ["probe", "verbalizer", "soft-prompt"])
def test_every_read_out_fits_and_scores_on_a_decoder(readout):
    lm, frame = tiny("llama"), stimuli(per_emotion=4)
    config = InferenceConfig(model="tiny-llama", dataset="demo", readout=readout, emotions=["joy", "anger"],
                             soft_prompt={"n_prompt": 2, "epochs": 1, "batch_size": 8})
    fitted = fit_inference(lm, frame, config)
    assert config.pooling == "last" and config.template == (
        "{text}\nThe emotion expressed here is")
    report = fitted.accuracy[fitted.accuracy["split"] == "test"]
    assert set(report["emotion"]) == {"joy", "anger"} and report["accuracy"].between(0, 1).all()


def test_soft_prompt_logits_do_not_depend_on_the_batch():
    from emolake.extract.inference.soft_prompt import word_logits

    lm = tiny("llama")
    prompt = torch.randn(3, lm.model.config.hidden_size)
    ids = [lm.tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in WORDS]
    with torch.inference_mode():
        batched = word_logits(lm.model, lm.tokenizer, TEXTS, prompt, ids, "cpu")
        alone = torch.cat([word_logits(lm.model, lm.tokenizer, [t], prompt, ids, "cpu") for t in TEXTS])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("neuron", ["mlp_post", "mlp_gate"])
@pytest.mark.parametrize("mode", ["zero", "mean", "scale", "noise"])
def test_stacked_ablation_on_a_decoder_equals_one_condition_per_pass(mode, neuron):
    from emolake.extract.ablation.edits import reference_statistics

    lm = tiny("llama")
    n_layers, d_ff = 2, 24
    conditions = [unablated_condition(), _condition([0, 5, 30]), _condition(list(range(24, 48)))]
    masks = condition_masks(conditions, n_layers, d_ff)
    mean, sd = reference_statistics(lm.model, lm.tokenizer, TEXTS, n_layers, d_ff, neuron=neuron)
    edit = AblationEdit(mode, {"scale": 0.5, "noise": 1.0}.get(mode, 0.0), mean, sd, seed=0)
    readout = verbalizer_readout(lm.model, lm.tokenizer, WORDS, "{text} I feel")
    stacked = readout_features(lm.model, lm.tokenizer, TEXTS, readout, batch_size=4, copies=len(conditions),
                               hook_factory=stacked_hook_factory(masks, edit, 0), neuron=neuron)
    plain = readout_features(lm.model, lm.tokenizer, TEXTS, readout, batch_size=4)[0]
    np.testing.assert_allclose(stacked[0], plain, atol=1e-5)  # the unablated copy is untouched
    assert not np.allclose(stacked[2], plain, atol=1e-3)  # a whole layer's neurons edited moves the scores
    if mode != "noise":  # (noise draws depend on the stacking; its seeding is tested elsewhere)
        for i in (1, 2):
            alone = readout_features(lm.model, lm.tokenizer, TEXTS, readout, batch_size=2,
                                     hook_factory=stacked_hook_factory(masks[i:i + 1], edit, 0), neuron=neuron)[0]
            np.testing.assert_allclose(stacked[i], alone, atol=1e-5)


def test_ablation_sweep_on_a_decoder_fills_the_summary_and_importance_link(lake):
    from emolake.extract.ablation.sweep import SweepConfig, run_sweep
    from emolake.warehouse.database import query

    lm, frame = tiny("llama"), stimuli(per_emotion=3)
    fitted = fit_inference(lm, frame, InferenceConfig(model="tiny-llama", dataset="demo", readout="verbalizer",
                                                      emotions=["joy", "anger", "fear"]))
    sets = {("valence", 6): np.array([0, 1, 2, 30, 31, 32]), ("arousal", 6): np.array([3, 4, 5, 40, 41, 42])}
    summary = run_sweep(lake, lm, fitted, frame, SweepConfig("rs", "st", ks=[6], controls=2, neuron="mlp_gate"),
                        neuron_sets=sets)
    assert summary["conditions"] == 1 + 2 + 2
    assert query(lake, "SELECT count(*) FROM ablation_summary WHERE run_set = 'rs'").column(0)[0].as_py() == 2 * 3
