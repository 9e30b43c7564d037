"""The demo's closing summary is read back from the lake, not written down: on a synthetic lake
holding the demo's two run sets, its most human-like model and layer, tau-b, CI and noise ceiling
equal the rows of `model_rsa` / `noise_ceiling` and a scipy hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from scipy.spatial.distance import pdist

from emolake.analysis.report import demo
from emolake.cli import cli
from emolake.ingest import embedded
from emolake.warehouse.database import query

from analysis_lake import write_synthetic


def _run(lake, *args: str) -> None:
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture
def demo_lake(lake):
    """The demo's two run sets on synthetic activations (2 layers each), 5 raters, its study id."""
    models = [write_synthetic(lake, units=units, n_emotions=9, seed=seed, run_set=m.run_set, study=embedded.STUDY,
                              dataset=f"{m.run_set}-stimuli")
              for m, units, seed in zip(demo.MODELS, (10, 8), (3, 4))]
    for m in demo.MODELS:
        _run(lake, "rsa", "--study", embedded.STUDY, "--run-set", m.run_set, "--permutations", "19",
             "--bootstrap", "30", "--seed", "1")
    _run(lake, "compare", "--run-sets", ",".join(m.run_set for m in demo.MODELS), "--study", embedded.STUDY,
         "--bootstrap", "40")
    return lake, models


def test_summary_names_the_most_human_like_model_and_layer_from_the_lake(demo_lake):
    lake, models = demo_lake
    numbers = demo.key_numbers(lake)

    # the best layer by hand: tau-b of every layer's correlation RDM with the mean human RDM
    judgments = query(lake, "SELECT rater, distance FROM similarity_judgments WHERE emotion_b <> 'neutral' "
                            "AND emotion_a <> 'neutral' ORDER BY rater, emotion_a, emotion_b").to_pylist()
    raters = sorted({r["rater"] for r in judgments})
    human = np.mean([[r["distance"] for r in judgments if r["rater"] == rater] for rater in raters], axis=0)
    by_hand = {}
    for m, s in zip(demo.MODELS, models):
        for layer in range(s.n_layers):
            columns = slice(layer * s.d_ff, (layer + 1) * s.d_ff)
            rdm = np.mean([pdist(run[:, columns], "correlation") for run in s.profiles], axis=0)
            by_hand[(m.run_set, layer)] = stats.kendalltau(human, rdm).statistic
    (run_set, layer), tau = max(by_hand.items(), key=lambda item: item[1])
    assert numbers["most human-like run set and layer"] == f"{run_set} layer {layer}"
    assert numbers["most human-like layer: Kendall tau-b"] == pytest.approx(tau, abs=1e-4)

    row = query(lake, "SELECT * FROM model_rsa WHERE run_set = $r AND layer = $l AND target = 'human' "
                      "AND metric = 'correlation' AND method = 'tau_b'", {"r": run_set, "l": layer}).to_pylist()[0]
    assert numbers["most human-like layer: 95% CI over emotions"] == [round(row["ci_emotions_low"], 4),
                                                                       round(row["ci_emotions_high"], 4)]
    ceiling = query(lake, "SELECT lower, upper FROM noise_ceiling WHERE study = $s AND method = 'tau_b'",
                    {"s": embedded.STUDY}).to_pylist()[0]
    assert numbers["noise ceiling (lower, upper)"] == [round(ceiling["lower"], 4), round(ceiling["upper"], 4)]

    for m in demo.MODELS:  # each model's all-layer row and best layer, as model_rsa holds them
        rows = query(lake, "SELECT layer, tau, ci_emotions_low, ci_emotions_high FROM model_rsa WHERE run_set = $r "
                           "AND target = 'human' AND metric = 'correlation' AND method = 'tau_b'",
                     {"r": m.run_set}).to_pylist()
        every = next(r for r in rows if r["layer"] is None)
        best = max((r for r in rows if r["layer"] is not None), key=lambda r: r["tau"])
        mine = numbers[m.run_set]
        assert mine["all layers: Kendall tau-b"] == round(every["tau"], 4)
        assert mine["all layers: 95% CI over emotions"] == [round(every["ci_emotions_low"], 4),
                                                             round(every["ci_emotions_high"], 4)]
        assert (mine["best layer (chosen on these data)"], mine["best layer: Kendall tau-b"]) == \
            (best["layer"], round(best["tau"], 4))
    test = query(lake, "SELECT difference, ci_low, ci_high, p FROM model_comparison_tests").to_pylist()[0]
    pair = f"paired bootstrap, all layers: tau({demo.MODELS[0].run_set}) - tau({demo.MODELS[1].run_set})"
    assert numbers[pair] == round(test["difference"], 4)
    assert demo.most_human_like(lake) == (run_set, layer)


def test_summary_says_when_the_noise_ceiling_cannot_be_computed(lake):
    models = [write_synthetic(lake, units=6, n_emotions=8, seed=seed, run_set=m.run_set, study=embedded.STUDY,
                              dataset=f"{m.run_set}-stimuli", n_raters=1)
              for m, seed in zip(demo.MODELS, (5, 6))]
    assert models
    for m in demo.MODELS:
        _run(lake, "rsa", "--study", embedded.STUDY, "--run-set", m.run_set, "--permutations", "9", "--bootstrap", "10")
    _run(lake, "compare", "--run-sets", ",".join(m.run_set for m in demo.MODELS), "--study", embedded.STUDY,
         "--bootstrap", "0")
    numbers = demo.key_numbers(lake)
    assert numbers["noise ceiling (lower, upper)"].startswith("not available: needs single raters")
    assert not any(key.startswith("paired bootstrap") for key in numbers)  # --bootstrap 0: no test stored
