"""Ablation through the FFN hooks: edits, stacked conditions equal one-at-a-time passes, random controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ablation_fixtures import stimuli, tiny_bert
from emolake.extract.ablation.edits import (
    AblationEdit, Condition, ablation_hook, attribute_conditions, condition_masks, random_conditions,
    reference_statistics, stacked_hook_factory, unablated_condition,
)
from emolake.extract.hooks import active_hook_count, hooked
from emolake.extract.inference.readouts import ProbeReadout, readout_features
from emolake.warehouse.errors import BadInputError

N_LAYERS, D_FF = 2, 37
TEXTS = ["I am so happy today", "this makes me furious", "a quiet afternoon at the lake with friends", "scared"]


def _condition(neurons, name="x") -> Condition:
    return Condition(name, "attribute", name, len(neurons), 0, None, False, np.array(sorted(neurons)))


def test_masks_mark_exactly_the_condition_neurons():
    conditions = [unablated_condition(), _condition([0, 36, 37, 73])]
    masks = condition_masks(conditions, N_LAYERS, D_FF)
    assert masks.shape == (2, N_LAYERS, D_FF) and not masks[0].any()
    assert masks[1].nonzero().tolist() == [[0, 0], [0, 36], [1, 0], [1, 36]]
    with pytest.raises(BadInputError, match="outside the model"):
        condition_masks([_condition([74])], N_LAYERS, D_FF)


@pytest.mark.parametrize("mode,value", [("zero", 0.0), ("scale", 0.5), ("mean", 0.0), ("noise", 2.0)])
def test_edits_change_only_the_masked_units_of_each_condition(mode, value):
    torch.manual_seed(0)
    act = torch.randn(2 * 3, 5, D_FF)  # 2 conditions x 3 texts, copy-major
    masks = condition_masks([_condition([1, 2]), _condition([5])], N_LAYERS, D_FF)
    mean, sd = torch.randn(N_LAYERS, D_FF), torch.rand(N_LAYERS, D_FF) + 0.5
    edit = AblationEdit(mode, value, mean, sd, seed=0)
    out = ablation_hook(masks, edit, rows=6, generator=torch.Generator().manual_seed(1))(0, act.clone())
    untouched = torch.ones_like(act, dtype=torch.bool)
    untouched[:3, :, [1, 2]] = False
    untouched[3:, :, 5] = False
    assert torch.equal(out[untouched], act[untouched])
    edited, original = out[:3, :, 1], act[:3, :, 1]
    if mode == "zero":
        assert (edited == 0).all()
    elif mode == "scale":
        assert torch.allclose(edited, original * 0.5)
    elif mode == "mean":
        assert torch.allclose(edited, mean[0, 1].expand_as(edited))
    else:
        again = ablation_hook(masks, edit, rows=6, generator=torch.Generator().manual_seed(1))(0, act.clone())
        assert torch.equal(out, again) and not torch.equal(edited, original)  # seeded, and it moved


def test_stacked_conditions_equal_one_condition_per_pass():
    tiny = tiny_bert()
    conditions = [unablated_condition(), _condition([0, 5, 40]), _condition(list(range(37, 74))), _condition([3])]
    masks = condition_masks(conditions, N_LAYERS, D_FF)
    edit = AblationEdit("zero")
    stacked = readout_features(tiny.model, tiny.tokenizer, TEXTS, ProbeReadout(), batch_size=3,
                               copies=len(conditions), hook_factory=stacked_hook_factory(masks, edit, 0))
    for i, condition in enumerate(conditions):
        keep = (~masks[i]).float()  # [n_layers, d_ff]

        def zero(layer, act, keep=keep):  # act: [b, pos, d_ff]
            return act * keep[layer]

        alone = readout_features(tiny.model, tiny.tokenizer, TEXTS, ProbeReadout(), batch_size=2,
                                 hook_factory=lambda rows: zero)
        assert np.allclose(stacked[i], alone[0], atol=1e-5), condition.condition_id
    assert not np.allclose(stacked[0], stacked[2], atol=1e-3)  # ablating a whole layer changes the features
    assert active_hook_count(tiny.model) == 0


def test_hooks_are_removed_when_the_forward_pass_fails():
    tiny = tiny_bert()

    def broken(rows):
        def fn(layer, act):
            raise RuntimeError("boom")
        return fn

    with pytest.raises(RuntimeError, match="boom"):
        readout_features(tiny.model, tiny.tokenizer, TEXTS, ProbeReadout(), hook_factory=broken)
    assert active_hook_count(tiny.model) == 0


def test_random_controls_are_seeded_sized_and_stored_with_their_seed():
    controls = random_conditions([5, 20], draws=3, n_layers=N_LAYERS, d_ff=D_FF, seed=7)
    assert [(c.k, c.draw) for c in controls] == [(5, 0), (5, 1), (5, 2), (20, 0), (20, 1), (20, 2)]
    assert all(len(np.unique(c.neurons)) == c.k for c in controls)
    again = random_conditions([5, 20], draws=3, n_layers=N_LAYERS, d_ff=D_FF, seed=7)
    assert all(np.array_equal(a.neurons, b.neurons) for a, b in zip(controls, again))
    assert len({tuple(c.neurons) for c in controls if c.k == 5}) == 3
    redrawn = np.sort(np.random.default_rng(controls[1].seed).choice(N_LAYERS * D_FF, size=5, replace=False))
    assert np.array_equal(redrawn, controls[1].neurons)  # the stored seed alone redraws the set


def test_layer_matched_controls_keep_the_per_layer_counts():
    target = {("arousal", 6): np.array([1, 2, 3, 4, 40, 41])}
    controls = random_conditions([6], draws=4, n_layers=N_LAYERS, d_ff=D_FF, seed=0, match=target)
    assert len(controls) == 4 and all(c.attribute == "arousal" and c.layer_matched for c in controls)
    for c in controls:
        assert np.bincount(c.neurons // D_FF, minlength=2).tolist() == [4, 2]


def test_reference_statistics_match_captured_activations():
    tiny = tiny_bert()
    mean, sd = reference_statistics(tiny.model, tiny.tokenizer, TEXTS, N_LAYERS, D_FF, batch_size=3)
    captured = []
    with torch.inference_mode(), hooked(tiny.model, lambda layer, act: captured.append((layer, act.clone()))):
        for text in TEXTS:
            tiny.model(**tiny.tokenizer([text], return_tensors="pt"))
    layer0 = torch.cat([a[0] for layer, a in captured if layer == 0])  # [tokens, d_ff]
    assert torch.allclose(mean[0], layer0.mean(0), atol=1e-5)
    assert torch.allclose(sd[0], layer0.std(0, unbiased=False), atol=1e-4)


def test_attribute_conditions_are_named_by_attribute_and_k():
    conditions = attribute_conditions({("valence", 3): np.array([5, 1, 2]), ("arousal", 3): np.array([0, 1, 9])})
    assert [c.condition_id for c in conditions] == ["attribute:arousal:k3:d0", "attribute:valence:k3:d0"]
    assert conditions[1].neurons.tolist() == [1, 2, 5]


def test_sweep_stores_conditions_accuracies_and_statistics(lake):
    from emolake.analysis.ablation_stats import read_results
    from emolake.extract.ablation.sweep import SweepConfig, run_sweep
    from emolake.extract.inference.run import InferenceConfig, fit_inference
    from emolake.warehouse.database import query

    tiny, frame = tiny_bert(), stimuli()
    fitted = fit_inference(tiny, frame, InferenceConfig(model="tiny", dataset="demo", emotions=["joy", "anger"]))
    sets = {("a", 10): np.arange(10), ("b", 10): np.arange(37, 47), ("a", 30): np.arange(30), ("b", 30): np.arange(40, 70)}
    config = SweepConfig("rs", "st", ks=[10, 30], controls=3, conditions_per_pass=4)
    summary = run_sweep(lake, tiny, fitted, frame, config, neuron_sets=sets)
    assert summary["conditions"] == 1 + 4 + 6
    counts = {r["condition"]: r["n"] for r in query(
        lake, "SELECT condition, count(*) AS n FROM ablation_results GROUP BY 1").to_pylist()}
    assert counts == {"unablated": 2, "attribute": 8, "random": 12}
    seeds = query(lake, "SELECT seed, neurons FROM ablations WHERE kind = 'random' AND k = 10 AND draw = 1").to_pylist()
    assert np.array_equal(np.sort(np.random.default_rng(seeds[0]["seed"]).choice(74, 10, replace=False)),
                          seeds[0]["neurons"])
    unablated = query(lake, "SELECT emotion, accuracy FROM ablation_results WHERE condition = 'unablated'").to_pylist()
    reported = fitted.accuracy[fitted.accuracy["split"] == "test"].set_index("emotion")["accuracy"]
    assert all(abs(row["accuracy"] - reported[row["emotion"]]) < 1e-12 for row in unablated)
    summary_rows = query(lake, "SELECT * FROM ablation_summary").to_pylist()
    assert len(summary_rows) == 4 * 2 and all(r["unit"] == "draw" and r["n_controls"] == 3 for r in summary_rows)
    assert len(read_results(lake, "rs", "st")) == 22


def test_verbalizer_sweep_saves_predictions_and_a_stored_read_out_is_reused(lake):
    from ablation_fixtures import tiny_roberta
    from emolake.extract.ablation.sweep import SweepConfig, run_sweep
    from emolake.extract.inference.run import InferenceConfig, fit_or_load_inference
    from emolake.warehouse.database import query

    tiny, frame = tiny_roberta(), stimuli(per_emotion=3)
    config = InferenceConfig(model="tiny", dataset="demo", readout="verbalizer")  # emotions: all but neutral
    fitted, reused = fit_or_load_inference(lake, tiny, frame, config)
    again, reused_again = fit_or_load_inference(lake, tiny, frame, InferenceConfig(
        model="tiny", dataset="demo", readout="verbalizer"))
    assert (reused, reused_again) == (False, True)
    assert all(np.array_equal(again.probes[e].weights, fitted.probes[e].weights) for e in fitted.probes)
    sweep = SweepConfig("rs", "st", ks=[5], controls=2, mode="mean", save_predictions=True)
    run_sweep(lake, tiny, again, frame, sweep, neuron_sets={("a", 5): np.array([0, 1, 2, 40, 41])})
    rows = query(lake, "SELECT run_set, condition_id, count(*) AS n FROM predictions GROUP BY ALL ORDER BY 1, 2").to_pylist()
    n_test = sum(len(t.labels) for t in fitted.tasks["test"])
    assert [r["condition_id"] for r in rows if r["run_set"] == "rs"] == [
        "attribute:a:k5:d0", "random:-:k5:d0", "random:-:k5:d1", "unablated"]
    assert all(r["n"] == n_test for r in rows if r["run_set"] == "rs")
    unablated = query(lake, "SELECT emotion, accuracy FROM ablation_results WHERE condition = 'unablated'").to_pylist()
    reported = fitted.accuracy[fitted.accuracy["split"] == "test"].set_index("emotion")["accuracy"]
    assert all(abs(r["accuracy"] - reported[r["emotion"]]) < 1e-12 for r in unablated)


def test_controls_are_as_large_as_per_layer_sets():
    from emolake.extract.ablation.sweep import SweepConfig, sweep_conditions

    per_layer = {("arousal", 3): np.array([0, 1, 2, 37, 38, 39])}  # top 3 of each of 2 layers
    conditions = sweep_conditions(SweepConfig("rs", "st", ks=[3], controls=2, scope="per_layer"), per_layer,
                                  N_LAYERS, D_FF)
    assert [len(c.neurons) for c in conditions if c.kind == "random"] == [6, 6]
