"""The report's figures for the two-model demo: tau by layer puts models of different depth on one
relative-depth axis (each curve from 0 to 1, its legend naming the depth); the model forest does
not reuse the run sets' colours for its two markers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emolake.analysis.report import figures


def _capture(monkeypatch) -> list:
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path)
    return drawn


def _layers(run_set: str, n_layers: int) -> pd.DataFrame:
    tau = np.linspace(0.0, 0.2, n_layers)
    return pd.DataFrame({"run_set": run_set, "layer": np.arange(n_layers), "target": "human", "tau": tau,
                         "ci_low": tau - 0.1, "ci_high": tau + 0.1})


def test_models_of_different_depth_share_a_relative_depth_axis(monkeypatch, tmp_path):
    drawn = _capture(monkeypatch)
    layers = pd.concat([_layers("encoder", 6), _layers("llm", 30)])
    figures.plot_layer_profiles(layers, tmp_path / "t.png")
    ax = drawn[0].axes[0]
    assert ax.get_xlabel().startswith("relative depth")
    curves = {c.get_label(): c.lines[0].get_xdata() for c in ax.containers}  # one errorbar per run set
    assert set(curves) == {"encoder (6 layers)", "llm (30 layers)"}
    for x in curves.values():  # first layer at ~0, last at ~1 (run sets nudged apart by < 0.01)
        assert abs(x[0]) < 0.01 and abs(x[-1] - 1) < 0.01 and np.all(np.diff(x) > 0)


def test_models_of_one_depth_keep_the_layer_axis(monkeypatch, tmp_path):
    drawn = _capture(monkeypatch)
    figures.plot_layer_profiles(pd.concat([_layers("a", 6), _layers("b", 6)]), tmp_path / "t.png")
    ax = drawn[0].axes[0]
    assert ax.get_xlabel() == "layer (0 = first)"
    assert [c.get_label() for c in ax.containers] == ["a (6 layers)", "b (6 layers)"]
    assert max(max(c.lines[0].get_xdata()) for c in ax.containers) > 4.9


def test_model_forest_markers_do_not_take_the_run_set_colours(monkeypatch, tmp_path):
    drawn = _capture(monkeypatch)
    models = pd.DataFrame({"run_set": ["a", "b"], "tau": [0.1, 0.2], "ci_low": [0.0, 0.1], "ci_high": [0.2, 0.3],
                           "best_layer": [1, 2], "best_tau": [0.15, 0.25], "best_ci_low": [0.05, 0.15],
                           "best_ci_high": [0.25, 0.35]})
    figures.plot_model_forest(models, tmp_path / "m.png")
    colours = {line.get_color() for line in drawn[0].axes[0].lines}
    assert not colours & {"tab:blue", "tab:orange", "#1f77b4", "#ff7f0e"}, colours
