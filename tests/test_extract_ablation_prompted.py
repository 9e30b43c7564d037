"""Ablation of prompted models: stored soft prompts re-evaluated with neurons zeroed, the seed as replicate,
on a tiny random RoBERTa (masked LM) and Llama (causal LM), against a hand computation with the test's own hook."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ablation_fixtures import stimuli
from conftest import tree_hashes
from emolake.extract.ablation.prompted import prompt_task, run_prompt_sweep
from emolake.extract.ablation.sweep import SweepConfig
from emolake.extract.inference.prompt_store import StoredPrompt
from emolake.extract.inference.readouts import label_word_ids
from emolake.extract.inference.soft_prompt import BINARY_WORDS, train_soft_prompt, word_logits
from emolake.extract.inference.tasks import task_texts
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError
from extract_models import tiny_config, tiny_model, tiny_tokenizer

EMOTIONS, SEEDS = ["joy", "anger"], [1, 2]


def tiny(kind: str) -> SimpleNamespace:
    """A tiny random RoBERTa masked LM or Llama causal LM, weights of order one (so that answers depend on them)."""
    if kind == "roberta":
        from transformers import RobertaForMaskedLM

        torch.manual_seed(3)
        model = RobertaForMaskedLM(tiny_config("roberta")).eval()
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.dim() >= 2:
                    parameter.normal_(0.0, 0.3)
        return SimpleNamespace(model=model, tokenizer=tiny_tokenizer())
    return SimpleNamespace(model=tiny_model("llama", seed=3), tokenizer=tiny_tokenizer())


def trained_prompts(lm, frame) -> list[StoredPrompt]:
    """One prompt per emotion and seed, trained on the train split (1 epoch), as `infer --seeds` stores them."""
    prompts = []
    for emotion in EMOTIONS:
        for seed in SEEDS:
            fit = prompt_task(frame, StoredPrompt("p", emotion, seed, np.zeros((1, 1)), BINARY_WORDS), "train", None)
            result = train_soft_prompt(lm.model, lm.tokenizer, (task_texts(frame, fit.stimulus_ids), fit.labels),
                                       (task_texts(frame, fit.stimulus_ids), fit.labels), BINARY_WORDS, seed=seed,
                                       n_prompt=2, epochs=1, lr=0.1, batch_size=8)
            prompts.append(StoredPrompt("tiny-demo-soft-prompt", emotion, seed, result.prompt.numpy(), BINARY_WORDS))
    return prompts


def ffn_neurons(model) -> tuple[int, int]:
    layers = model.config.num_hidden_layers
    return layers, model.config.intermediate_size


def hand_accuracy(lm, frame, prompt: StoredPrompt, zeroed: np.ndarray | None) -> float:
    """Accuracy of one prompted model, one text per forward pass, `zeroed` global neuron ids set to 0 by a
    hook registered here (RoBERTa: output of `intermediate`; Llama: input of `mlp.down_proj`)."""
    model = lm.model
    _, d_ff = ffn_neurons(model)
    causal = model.config.model_type == "llama"
    layers = model.model.layers if causal else model.roberta.encoder.layer
    handles = []
    for index, layer in enumerate(layers):
        units = [] if zeroed is None else [int(n) % d_ff for n in zeroed if int(n) // d_ff == index]
        if not units:
            continue
        if causal:
            def pre(_module, inputs, units=units):
                x = inputs[0].clone()
                x[..., units] = 0.0
                return (x,)
            handles.append(layer.mlp.down_proj.register_forward_pre_hook(pre))
        else:
            def post(_module, _inputs, output, units=units):
                output = output.clone()
                output[..., units] = 0.0
                return output
            handles.append(layer.intermediate.register_forward_hook(post))
    task = prompt_task(frame, prompt, "test", None)
    word_ids = label_word_ids(lm.tokenizer, prompt.words)
    try:
        with torch.no_grad():
            hits = [int(word_logits(model, lm.tokenizer, [text], torch.as_tensor(prompt.vectors), word_ids,
                                    "cpu")[0].argmax()) == label
                    for text, label in zip(task_texts(frame, task.stimulus_ids), task.labels)]
    finally:
        for handle in handles:
            handle.remove()
    return float(np.mean(hits))


@pytest.mark.parametrize("kind", ["roberta", "llama"])
def test_prompted_ablation_matches_a_hand_computation_and_pairs_over_seeds(lake, kind):
    torch.manual_seed(0)
    lm, frame = tiny(kind), stimuli(per_emotion=3)
    n_layers, d_ff = ffn_neurons(lm.model)
    prompts = trained_prompts(lm, frame)
    everything = np.arange(n_layers * d_ff)
    some = np.array([0, 3, 5, d_ff + 1, d_ff + 7])
    sets = {("valence", 5): some, ("arousal", 5): np.array([1, 2, 4, d_ff, d_ff + 2]), ("all", 5): everything}
    config = SweepConfig("rs", "st", ks=[5], controls=3, conditions_per_pass=4, batch_size=5)
    summary = run_prompt_sweep(lake, lm, prompts, frame, config, {"model": f"tiny-{kind}", "dataset": "demo"},
                               split="test", neuron_sets=sets)
    assert summary["conditions"] == 1 + 3 + 3 and summary["replicates (seeds)"] == 2
    rows = query(lake, "SELECT condition_id, emotion, replicate, accuracy, n_stimuli, split, inference_id "
                       "FROM ablation_accuracy WHERE run_set = 'rs'").to_pandas()
    assert len(rows) == 7 * len(prompts)
    assert set(rows["replicate"]) == set(SEEDS) and set(rows["split"]) == {"test"}
    stored = rows.set_index(["condition_id", "emotion", "replicate"])["accuracy"]
    for prompt in prompts[::3]:  # conditions against one-text-at-a-time forwards (one prompt per emotion)
        key = (prompt.emotion, prompt.seed)
        assert stored[("unablated", *key)] == pytest.approx(hand_accuracy(lm, frame, prompt, None))
        assert stored[("attribute:valence:k5:d0", *key)] == pytest.approx(hand_accuracy(lm, frame, prompt, some))
        assert stored[("attribute:all:k5:d0", *key)] == pytest.approx(hand_accuracy(lm, frame, prompt, everything))
    changed = [stored[("attribute:all:k5:d0", p.emotion, p.seed)] != stored[("unablated", p.emotion, p.seed)]
               for p in prompts]
    assert any(changed)  # zeroing every FFN neuron changes what the prompted model answers
    controls = query(lake, "SELECT draw, neurons FROM ablations WHERE run_set = 'rs' AND kind = 'random'").to_pandas()
    assert sorted(controls["draw"]) == [0, 1, 2] and all(len(n) == n_layers * d_ff for n in controls["neurons"])
    summary_rows = query(lake, "SELECT emotion, attribute, n_replicates, n_controls, unit FROM ablation_summary "
                               "WHERE run_set = 'rs'").to_pandas()
    assert len(summary_rows) == len(EMOTIONS) * 3
    assert set(summary_rows["n_replicates"]) == {len(SEEDS)}  # the replicate is the seed
    assert set(summary_rows["n_controls"]) == {3 * len(SEEDS)}
    assert set(summary_rows["unit"]) == {"replicate"}


def test_empty_or_unknown_neuron_sets_are_refused_and_the_lake_is_unchanged(lake):
    lm, frame = tiny("roberta"), stimuli(per_emotion=2)
    prompts = [StoredPrompt("i", "joy", 1, np.zeros((2, 16), np.float32), BINARY_WORDS)]
    source = {"model": "tiny", "dataset": "demo"}
    query(lake, "SELECT 1")  # the warehouse's view database exists before the snapshot
    before = tree_hashes(lake.root)
    with pytest.raises(BadInputError, match="empty attribute neuron set"):
        run_prompt_sweep(lake, lm, prompts, frame, SweepConfig("rs", "st", ks=[3]), source, "test",
                         neuron_sets={("valence", 3): np.array([], dtype=np.int64)})
    with pytest.raises(BadInputError, match="outside the model"):
        run_prompt_sweep(lake, lm, prompts, frame, SweepConfig("rs", "st", ks=[1], controls=0), source, "test",
                         neuron_sets={("valence", 1): np.array([2 * 24])})
    with pytest.raises(BadInputError, match="no attribute_neurons|no attribute neurons"):
        run_prompt_sweep(lake, lm, prompts, frame, SweepConfig("rs", "st", ks=[3]), source, "test")
    with pytest.raises(BadInputError, match="does not fit the model"):
        wrong = [StoredPrompt("i", "joy", 1, np.zeros((2, 8), np.float32), BINARY_WORDS)]
        run_prompt_sweep(lake, lm, wrong, frame, SweepConfig("rs", "st", ks=[1], controls=0), source, "test",
                         neuron_sets={("valence", 1): np.array([3])})
    with pytest.raises(BadInputError, match="no split"):
        run_prompt_sweep(lake, lm, prompts, frame, SweepConfig("rs", "st", ks=[1], controls=0), source, "val",
                         neuron_sets={("valence", 1): np.array([3])})
    assert tree_hashes(lake.root) == before


def _lake_with_stimuli_and_neurons(lake, n_layers: int, d_ff: int, ks=(5,)):
    """Stimuli of dataset 'demo', and searchlight results / k values / human importance of run set 'rs', study
    'st', as the analysis commands would store them."""
    import pyarrow as pa

    attributes = ("arousal", "valence", "control")
    frame = stimuli(per_emotion=3).assign(source_row=0)
    rng = np.random.default_rng(0)
    n, m = n_layers * d_ff, len(attributes)
    with lake.transaction() as txn:
        txn.write("stimuli", pa.Table.from_pandas(frame, preserve_index=False), {"dataset": "demo"})
        txn.write("searchlight_results", pa.table({
            "neuron": np.tile(np.arange(n), m).astype("int32"), "layer": np.tile(np.arange(n) // d_ff, m).astype("int32"),
            "unit": np.tile(np.arange(n) % d_ff, m).astype("int32"), "attribute": np.repeat(attributes, n),
            "tau": rng.normal(size=n * m), "p": np.full(n * m, 0.5), "q": np.full(n * m, 0.5),
            "q_monotone": np.full(n * m, 0.5), "q_study": np.full(n * m, 0.5),
            "inference": ["permutation"] * (n * m), "p_asymptotic": np.full(n * m, 0.5),
        }), {"run_set": "rs", "study": "st"})
        txn.write("neuron_set_sizes", pa.table({"k": list(ks), "scope": ["global"] * len(ks)}),
                  {"run_set": "rs", "study": "st"})
        txn.write("attribute_importance_results", pa.table({
            "attribute": list(attributes), "method": ["tau_b"] * m, "tau": [0.3, 0.1, 0.2], "p": [0.01] * m,
            "p_perm": [None] * m, "n_perm": [0] * m, "ci_raters_low": [None] * m, "ci_raters_high": [None] * m,
            "n_boot": [0] * m, "n_pairs": [351] * m, "n_raters": [10] * m,
        }), {"study": "st"})


def test_ablate_soft_prompt_cli_reuses_the_stored_prompts_and_fills_the_summary(lake, tmp_path):
    import json

    from click.testing import CliRunner

    from emolake.cli import cli
    from emolake.extract.inference.prompt_store import read_prompts
    from extract_models import save_tiny_model

    folder = save_tiny_model(tmp_path / "tiny-llama", "llama", seed=3)
    _lake_with_stimuli_and_neurons(lake, 2, 24)
    run = CliRunner().invoke(cli, ["--lake", str(lake.root), "infer", "--model", str(folder), "--dataset", "demo",
                                   "--readout", "soft-prompt", "--emotions", "joy,anger", "--seeds", "1,2",
                                   "--max-per-emotion", "2", "--epochs", "1", "--prompt-length", "2", "--device",
                                   "cpu", "--json"])
    assert run.exit_code == 0, run.output
    inference_id = json.loads(run.stdout[run.stdout.index("{"):])["inference_id"]
    base = ["--lake", str(lake.root), "ablate", "--run-set", "rs", "--study", "st", "--model", str(folder),
            "--dataset", "demo", "--k", "5", "--controls", "2", "--device", "cpu"]
    query(lake, "SELECT 1")
    before = tree_hashes(lake.root)
    for extra, message in ((["--prompts", inference_id], "--prompts goes with --readout soft-prompt"),
                           (["--readout", "soft-prompt"], "--prompts goes with --readout soft-prompt"),
                           (["--readout", "soft-prompt", "--prompts", "nothing-here"], "no prompts stored"),
                           (["--readout", "soft-prompt", "--prompts", "../x"], "Invalid value for '--prompts'")):
        bad = CliRunner().invoke(cli, base + extra)
        assert bad.exit_code == 2 and message in bad.output, bad.output
    assert tree_hashes(lake.root) == before
    result = CliRunner().invoke(cli, base + ["--readout", "soft-prompt", "--prompts", inference_id, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["prompts"] == 4 and summary["replicates (seeds)"] == 2 and summary["conditions"] == 1 + 3 + 2
    unablated = query(lake, "SELECT emotion, replicate, accuracy, inference_id FROM ablation_accuracy "
                            "WHERE condition_id = 'unablated'").to_pandas()
    reported = {p.key: p.report_accuracy for p in read_prompts(lake, inference_id)}
    assert {(r.emotion, r.replicate): r.accuracy for r in unablated.itertuples()} == reported  # exactly as trained
    assert set(unablated["inference_id"]) == {inference_id}
    rows = query(lake, "SELECT DISTINCT n_replicates FROM ablation_summary WHERE run_set = 'rs'").column(0).to_pylist()
    assert rows == [2]
    link = query(lake, "SELECT k, n_emotions FROM importance_link WHERE run_set = 'rs'").to_pylist()
    assert [r["k"] for r in link] == [5]
