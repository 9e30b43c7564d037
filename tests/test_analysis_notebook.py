"""The notebook surface (`import emolake`, implemented in analysis/notebook.py): labelled RDMs
equal to an independent computation (scipy on the synthetic profiles, |a_i - a_j| of the
attribute table, pandas means over raters), pandas / polars / Arrow tables, sandboxed queries
with bound parameters, the analyses with the CLI's own defaults, and figures as Figures."""

from __future__ import annotations

import inspect
from itertools import combinations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from matplotlib.figure import Figure
from scipy.spatial.distance import pdist, squareform

from emolake.analysis import notebook
from emolake.analysis.commands import neurons, rsa, searchlight
from analysis_lake import write_synthetic
from emolake.warehouse.errors import BadInputError, NotFoundError, ReadOnlyQueryError


@pytest.fixture
def toy(lake):
    return lake, write_synthetic(lake)


@pytest.fixture
def analysed(toy):
    lake, syn = toy
    notebook.run_searchlight(lake, syn.run_set, syn.study, progress=False)
    notebook.run_neurons(lake, syn.run_set, syn.study, k=[2, 4])
    return lake, syn


def test_open_lake_refuses_a_folder_that_is_no_lake_and_creates_one_when_asked(tmp_path):
    with pytest.raises(BadInputError, match="is not an emolake lake"):
        notebook.open_lake(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    lake = notebook.open_lake(tmp_path / "new", create=True)
    assert notebook.query(lake, "SELECT count(*) AS n FROM stimuli")["n"].tolist() == [0]


def test_model_rdm_is_labelled_and_equals_scipy_on_the_profiles(toy):
    lake, syn = toy
    frame = notebook.rdm(lake, run_set=syn.run_set)
    assert list(frame.index) == list(frame.columns) == syn.emotions  # sorted, neutral excluded
    assert frame.index.name == frame.columns.name == "emotion"
    expected = np.mean([squareform(pdist(run, "correlation")) for run in syn.profiles], axis=0)  # [n, n]
    np.testing.assert_allclose(frame.to_numpy(), expected, atol=1e-6)
    assert frame.attrs["rdm"] == {"kind": "model", "run_set": syn.run_set, "metric": "correlation"}
    euclidean = notebook.rdm(lake, run_set=syn.run_set, metric="euclidean")
    np.testing.assert_allclose(euclidean.to_numpy(),
                               np.mean([squareform(pdist(run)) for run in syn.profiles], axis=0), atol=1e-5)


def test_attribute_rdm_is_the_absolute_difference_of_the_values(toy):
    lake, syn = toy
    frame = notebook.rdm(lake, study=syn.study, attribute="valence")
    values = syn.attributes[:, 2]  # ATTRIBUTES = (arousal, control, valence)
    np.testing.assert_allclose(frame.to_numpy(), np.abs(values[:, None] - values[None, :]), atol=1e-12)


def test_human_rdm_is_the_mean_over_raters(toy):
    lake, syn = toy
    frame = notebook.rdm(lake, study=syn.study)
    judgments = notebook.query(lake, "SELECT * FROM similarity_judgments WHERE study = $s", {"s": syn.study})
    means = judgments.groupby(["emotion_a", "emotion_b"])["distance"].mean()
    for a, b in combinations(syn.emotions, 2):
        assert frame.loc[a, b] == frame.loc[b, a] == pytest.approx(means[(a, b)])
    assert "neutral" not in frame.index
    assert (np.diag(frame.to_numpy()) == 0).all()


def test_rdm_as_polars_has_an_emotion_column(toy):
    lake, syn = toy
    frame = notebook.rdm(lake, study=syn.study, output="polars")
    assert isinstance(frame, pl.DataFrame)
    assert frame.columns == ["emotion", *syn.emotions]
    pandas = notebook.rdm(lake, study=syn.study)
    np.testing.assert_array_equal(frame.drop("emotion").to_numpy(), pandas.to_numpy())


@pytest.mark.parametrize("kwargs", [{}, {"run_set": "toy", "study": "toy-study"}, {"attribute": "valence"},
                                    {"run_set": "toy", "attribute": "valence"}])
def test_rdm_needs_one_run_set_or_one_study(toy, kwargs):
    lake, _ = toy
    with pytest.raises(BadInputError, match="rdm\\(\\) takes"):
        notebook.rdm(lake, **kwargs)


def test_an_unknown_metric_is_refused(toy):
    lake, syn = toy
    with pytest.raises(BadInputError, match="unknown model RDM metric"):
        notebook.rdm(lake, run_set=syn.run_set, metric="manhattan")


def test_an_unknown_run_set_or_study_names_what_to_run(toy):
    lake, _ = toy
    with pytest.raises(NotFoundError, match="no model RDM for run_set 'nope'.*emolake extract"):
        notebook.rdm(lake, run_set="nope")
    with pytest.raises(NotFoundError, match="no human RDM for study 'nope'"):
        notebook.rdm(lake, study="nope")
    with pytest.raises(NotFoundError, match="emolake.run_searchlight"):
        notebook.searchlight(lake, "toy", "toy-study")


def test_query_returns_pandas_polars_or_arrow(toy):
    lake, syn = toy
    sql = "SELECT run_id FROM runs WHERE run_set = $rs ORDER BY run_id"
    assert notebook.query(lake, sql, {"rs": syn.run_set})["run_id"].tolist() == syn.run_ids
    assert notebook.query(lake, sql, {"rs": syn.run_set}, output="polars")["run_id"].to_list() == syn.run_ids
    assert notebook.query(lake, sql, {"rs": syn.run_set}, output="arrow").column("run_id").to_pylist() == syn.run_ids
    assert isinstance(notebook.query(lake, sql, {"rs": syn.run_set}, output="arrow"), pa.Table)
    with pytest.raises(BadInputError, match="unknown output"):
        notebook.query(lake, sql, {"rs": syn.run_set}, output="excel")


def test_query_binds_parameters_and_refuses_writes(toy):
    lake, syn = toy
    injected = notebook.query(lake, "SELECT count(*) AS n FROM runs WHERE run_set = $rs", {"rs": "x' OR '1'='1"})
    assert injected["n"].tolist() == [0]
    with pytest.raises(ReadOnlyQueryError):
        notebook.query(lake, "DROP VIEW runs")


def _cli_defaults(command) -> dict:
    return {p.name: p.default for p in command.params}


def _defaults(function) -> dict:
    return {n: p.default for n, p in inspect.signature(function).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize("function, command, names", [
    (notebook.run_rsa, rsa, {"metric": "metric", "method": "method", "permutations": "n_perm",
                             "bootstrap": "n_boot", "seed": "seed", "attributes_study": "attributes_study"}),
    (notebook.run_searchlight, searchlight, {"fdr": "fdr", "alpha": "alpha", "precision": "precision"}),
    (notebook.run_neurons, neurons, {"k": "k_text", "scope": "scope"}),
])
def test_analyses_take_the_cli_defaults(function, command, names):
    ours, cli = _defaults(function), _cli_defaults(command)
    assert {name: ours[name] for name in names} == {name: cli[flag] for name, flag in names.items()}


def test_searchlight_and_neurons_read_what_the_analyses_stored(analysed):
    lake, syn = analysed
    tests = notebook.searchlight(lake, syn.run_set, syn.study)
    assert len(tests) == syn.n_layers * syn.d_ff * 3
    view = notebook.query(lake, "SELECT * FROM searchlight WHERE run_set = $r ORDER BY neuron, attribute",
                          {"r": syn.run_set})
    pd.testing.assert_frame_equal(tests, view)
    top = notebook.attribute_neurons(lake, syn.run_set, syn.study, k=2)
    assert top.groupby("attribute").size().to_dict() == {"arousal": 2, "control": 2, "valence": 2}
    assert sorted(notebook.attribute_neurons(lake, syn.run_set, syn.study)["k"].unique()) == [2, 4]
    # the neurons built to track one attribute each top their attribute's set
    best = top[top["rank"] == 1].set_index("attribute")["neuron"].to_dict()
    assert best == {"arousal": 0, "control": 1, "valence": syn.d_ff}


def test_rsa_stores_model_rsa_like_the_cli(toy):
    lake, syn = toy
    summary = notebook.run_rsa(lake, syn.study, run_set=syn.run_set, permutations=0, bootstrap=0, progress=False)
    assert summary["run_set"] == syn.run_set and summary["permutations"] == 0
    stored = notebook.query(lake, "SELECT tau FROM model_rsa WHERE run_set = $r AND target = 'human' AND layer IS NULL",
                            {"r": syn.run_set})
    assert stored["tau"].tolist() == [pytest.approx(summary["model_vs_human"], abs=1e-4)]


def test_figures_are_matplotlib_figures(analysed):
    lake, syn = analysed
    pair = notebook.plot_rdms(lake, syn.run_set, syn.study)
    assert isinstance(pair, Figure)
    assert [ax.get_title() for ax in pair.axes[:2]] == [f"model RDM: {syn.run_set} (correlation)",
                                                         f"human RDM: {syn.study}"]
    mds = notebook.plot_mds(notebook.rdm(lake, study=syn.study), seed=1)
    assert isinstance(mds, Figure) and "seed 1" in mds.axes[0].get_title()
    assert sorted(t.get_text() for t in mds.axes[0].texts) == syn.emotions
    counts = notebook.plot_searchlight_counts(lake, syn.run_set, syn.study)
    assert [ax.get_title() for ax in counts.axes[:2]] == ["significant neurons", "selective neurons"]


def test_plot_mds_refuses_a_matrix_that_is_not_a_labelled_square(toy):
    lake, syn = toy
    frame = notebook.rdm(lake, study=syn.study)
    with pytest.raises(BadInputError, match="square RDM"):
        notebook.plot_mds(frame.iloc[:, ::-1])
