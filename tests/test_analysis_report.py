"""The plots (each from plain arrays) and the HTML report: every figure drawn from synthetic views,
notes instead of failures where a view is missing, and the page rendered in headless Chromium
with every image loaded."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr

from emolake.analysis.report import figures
from emolake.analysis.report.page import build_report, overlap_from_pairs, searchlight_panels, split_conditions, write_report
from emolake.cli import cli
from emolake.ingest.emotions import GOEMOTIONS_27
from conftest import require_executable
from test_ingest_embedded import ingest_embedded

CHROMIUM = Path("/usr/bin/chromium")

ATTRIBUTES = ["arousal", "valence", "happy-face", "fear-face", "control", "novelty"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pairs(square: np.ndarray, emotions: list[str]) -> pd.DataFrame:
    rows = [(emotions[i], emotions[j], square[i, j]) for i in range(len(emotions)) for j in range(i + 1, len(emotions))]
    return pd.DataFrame(rows, columns=["emotion_a", "emotion_b", "distance"])


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# ---- plots, from plain arrays ----

def test_pairs_to_square_round_trips():
    rng = np.random.default_rng(1)
    square = squareform(pdist(rng.normal(size=(5, 3))))
    names = list("abcde")
    assert np.allclose(figures.pairs_to_square(_pairs(square, names), names), square)


def test_cluster_order_matches_scipy_dendrogram():
    rng = np.random.default_rng(2)
    points = np.concatenate([rng.normal(0, 0.1, (4, 2)), rng.normal(5, 0.1, (4, 2))])[rng.permutation(8)]
    square = squareform(pdist(points))
    order = figures.cluster_order(square)
    expected = dendrogram(linkage(pdist(points), "average", optimal_ordering=True), no_plot=True)["leaves"]
    assert list(order) == expected
    groups = [points[i, 0] > 2.5 for i in order]
    assert groups in ([False] * 4 + [True] * 4, [True] * 4 + [False] * 4)  # the clusters stay together


def test_rdm_pair_uses_the_human_clustering_order(tmp_path):
    rng = np.random.default_rng(3)
    human = squareform(pdist(rng.normal(size=(27, 4))))
    model = squareform(pdist(rng.normal(size=(27, 4))))
    shown = figures.plot_rdm_pair(model, human, list(GOEMOTIONS_27), tmp_path / "rdm.png")
    assert shown == [GOEMOTIONS_27[i] for i in figures.cluster_order(human)]
    assert sorted(shown) == sorted(GOEMOTIONS_27)
    width, height = _png_size(tmp_path / "rdm.png")
    assert width > 1000 and height > 500


def test_mds_is_seeded_and_keeps_far_apart_points_apart(tmp_path):
    rng = np.random.default_rng(4)
    points = rng.normal(size=(10, 2)) * [10, 1]
    square = squareform(pdist(points))
    first = figures.plot_mds(square, list("abcdefghij"), tmp_path / "a.png", seed=7)
    again = figures.plot_mds(square, list("abcdefghij"), tmp_path / "b.png", seed=7)
    assert np.allclose(first, again)
    # MDS of 2-D Euclidean distances recovers them up to rotation: distances are preserved.
    assert np.allclose(squareform(pdist(first)), square, atol=1e-3 * square.max())


def test_overlap_matrix_against_brute_force():
    sets = {"a": {1, 2, 3, 4}, "b": {3, 4, 5}, "c": {9}}
    matrix = figures.overlap_matrix(sets)
    assert matrix.loc["a", "b"] == pytest.approx(2 / 5)
    assert matrix.loc["a", "c"] == 0 and matrix.loc["b", "b"] == 1
    assert figures.overlap_matrix(sets, "overlap").loc["a", "b"] == pytest.approx(2 / 3)


def test_fit_line_agrees_with_scipy(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=14)
    y = 0.3 * x + rng.normal(scale=0.2, size=14)
    slope, intercept, r = figures.plot_drop_vs_importance(x, y, [f"a{i}" for i in range(14)], tmp_path / "d.png", k=5)
    assert r == pytest.approx(pearsonr(x, y)[0])
    assert slope == pytest.approx(np.polyfit(x, y, 1)[0])
    assert _png_size(tmp_path / "d.png")[0] > 300


def test_split_conditions_averages_emotions_then_draws():
    rows = []
    for emotion, base in (("joy", 0.9), ("fear", 0.7)):
        rows.append(("x", emotion, None, 0, "unablated", 0, base))
        for k in (10, 20):
            rows.append(("x", emotion, "valence", k, "attribute", 0, base - k / 100))
            for draw in range(3):
                rows.append(("x", emotion, None, k, "random", draw, base - draw / 100))
    frame = pd.DataFrame(rows, columns=["run_set", "emotion", "attribute", "k", "condition", "draw", "accuracy"])
    curves, bands, unablated = split_conditions(frame)
    assert unablated == pytest.approx(0.8)
    assert curves.set_index("k")["accuracy"].to_dict() == pytest.approx({10: 0.7, 20: 0.6})
    per_draw = [0.8 - d / 100 for d in range(3)]
    assert bands.set_index("k").loc[10, "mean"] == pytest.approx(np.mean(per_draw))
    assert bands.set_index("k").loc[10, "sd"] == pytest.approx(np.std(per_draw, ddof=1))


def test_split_conditions_counts_per_attribute_controls_separately():
    # The study's release: one random draw per attribute and k, tagged with the attribute.
    frame = pd.DataFrame([("joy", a, 10, "random", 0, acc) for a, acc in (("valence", 0.6), ("arousal", 0.8))],
                         columns=["emotion", "attribute", "k", "condition", "draw", "accuracy"])
    _, bands, unablated = split_conditions(frame)
    assert unablated is None
    assert bands.set_index("k").loc[10, "n_controls"] == 2
    assert bands.set_index("k").loc[10, "sd"] == pytest.approx(np.std([0.6, 0.8], ddof=1))


def test_searchlight_panels_take_one_fdr_mode_and_leave_out_totals():
    counts = searchlight_counts(np.random.default_rng(6))
    panels, fdr = searchlight_panels(counts)
    assert fdr == "monotone" and set(panels) == {"significant", "selective"}
    expected = counts[(counts["fdr"] == "monotone") & counts["layer"].notna()]
    significant = panels["significant"]
    assert list(significant.index) == list(range(6)) and sorted(significant.columns) == sorted(ATTRIBUTES)
    for row in expected.itertuples():
        assert significant.loc[int(row.layer), row.attribute] == row.n_significant
        assert panels["selective"].loc[int(row.layer), row.attribute] == row.n_selective
    assert searchlight_panels(counts[counts["fdr"] == "study"])[1] == "study"
    two_alphas = pd.concat([counts, counts.assign(alpha=0.01, n_significant=1, n_selective=1)])
    assert panels["significant"].equals(searchlight_panels(two_alphas)[0]["significant"])  # 0.05 by default
    assert searchlight_panels(two_alphas, alpha=0.01)[0]["selective"].to_numpy().max() == 1
    study_mode, fdr = searchlight_panels(counts, fdr="study", alpha=0.05)  # the searchlight run's own mode
    chosen = counts[(counts["fdr"] == "study") & counts["layer"].notna()]
    assert fdr == "study" and study_mode["significant"].to_numpy().sum() == chosen["n_significant"].sum()


def test_overlap_from_the_view_equals_the_brute_force_matrix():
    sets = {"a": {1, 2, 3}, "b": {2, 3, 4, 5}, "c": {5, 6}}
    pairs = pd.DataFrame([(x, y, len(sets[x] & sets[y]) / len(sets[x] | sets[y]))
                          for x in sets for y in sets if x < y], columns=["attribute_a", "attribute_b", "jaccard"])
    assert np.allclose(overlap_from_pairs(pairs, ["a", "b", "c"]).to_numpy(), figures.overlap_matrix(sets).to_numpy())


# ---- the report, from synthetic views ----

def searchlight_counts(rng: np.random.Generator) -> pd.DataFrame:
    """`searchlight_counts` as the analysis views it: both FDR modes, per layer plus NULL-layer totals."""
    rows = []
    for fdr in ("monotone", "study"):
        for a in ATTRIBUTES:
            per_layer = [(int(rng.integers(0, 200)), int(rng.integers(0, 50))) for _ in range(6)]
            for layer, (significant, selective) in enumerate(per_layer):
                rows.append((fdr, a, layer, significant, selective))
            rows.append((fdr, a, None, sum(s for s, _ in per_layer), sum(s for _, s in per_layer)))
    frame = pd.DataFrame(rows, columns=["fdr", "attribute", "layer", "n_significant", "n_selective"])
    return frame.assign(run_set="demo", study="li2024", alpha=0.05, n_significant_tests=frame["n_significant"],
                        n_tests=1536)


def model_rsa_rows(rng: np.random.Generator) -> pd.DataFrame:
    """`model_rsa` rows: run sets 'demo' (6 layers) and 'other' (3 layers), over all neurons (layer NULL)
    and per layer, targets human (with CIs and a permutation p at its floor) and human_raters."""
    rows = []
    for run_set, n_layers in (("demo", 6), ("other", 3)):
        for layer in [None, *range(n_layers)]:
            tau = 0.21 if layer is None else float(rng.uniform(0, 0.3))
            rows.append((run_set, layer, "human", tau, tau - 0.08, tau + 0.08, 1 / 10_001, 10_000, None, None))
            rows.append((run_set, layer, "human_raters", tau / 2, None, None, None, 0, 0.45, 0.55))
    rows.append(("demo", None, "valence", 0.1, None, None, 0.2, 10_000, None, None))
    return pd.DataFrame(rows, columns=["run_set", "layer", "target", "tau", "ci_emotions_low", "ci_emotions_high",
                                       "p_perm", "n_perm", "ceiling_lower", "ceiling_upper"]
                        ).assign(study="li2024", metric="correlation", method="tau_b", n_pairs=351)


def synthetic_views(con: duckdb.DuckDBPyConnection, seed: int = 0) -> None:
    """Create every view the report reads, with the column contracts of the other branches."""
    rng = np.random.default_rng(seed)
    emotions = list(GOEMOTIONS_27)
    points = rng.normal(size=(27, 4))  # [n_emotions, 4]
    human = squareform(pdist(points))
    model = squareform(pdist(points + rng.normal(scale=0.5, size=points.shape)))
    frames = {
        "human_rdm": _pairs(human, emotions).assign(study="li2024", n_raters=61),
        "model_rdm": _pairs(model, emotions).assign(run_set="demo", metric="correlation"),
        "emotion_attributes": pd.DataFrame([(e, a, rng.random()) for e in emotions for a in ATTRIBUTES],
                                           columns=["emotion", "attribute", "value"]).assign(study="li2024"),
        "searchlight_counts": searchlight_counts(rng),
        "attribute_neurons": pd.DataFrame(
            [(a, 50, int(n), r) for a in ATTRIBUTES for r, n in enumerate(rng.choice(300, 50, replace=False))],
            columns=["attribute", "k", "neuron", "rank"]).assign(run_set="demo", study="li2024", scope="global"),
        "attribute_importance": pd.DataFrame(
            [(a, "tau_b", rng.normal(0.2, 0.1), 0.01) for a in ATTRIBUTES],
            columns=["attribute", "method", "tau", "p"]).assign(study="li2024"),
        "model_rsa": model_rsa_rows(rng),
        "noise_ceiling": pd.DataFrame([("li2024", "tau_b", 0.45, 0.55, 61)],
                                      columns=["study", "method", "lower", "upper", "n_raters"]),
        "model_comparison": pd.DataFrame([
            ("li2024", "demo", "minilm", "mlp_post", "mean", "correlation", "tau_b", 6, 27, 0.21, 0.12, 0.30,
             0.0001, 9999, 4, 0.29, 0.2, 0.37, 0.0001, 0.5, 1),
            ("li2024", "other", "smollm2", None, "last", "correlation", "tau_b", 30, 27, 0.12, 0.02, 0.22,
             0.03, 9999, 20, 0.25, 0.15, 0.34, 0.0001, 0.3, 2)],
            columns=["study", "run_set", "model", "neuron", "position", "metric", "method", "n_layers", "n_emotions",
                     "tau", "ci_low", "ci_high", "p_perm", "n_perm", "best_layer", "best_tau", "best_ci_low",
                     "best_ci_high", "best_p_perm", "tau_normalised", "rank"]),
        "model_comparison_tests": pd.DataFrame([("li2024", "demo", "other", 27, 0.09, -0.02, 0.2, 0.11, 1000, 0)],
                                               columns=["study", "run_set_a", "run_set_b", "n_emotions", "difference",
                                                        "ci_low", "ci_high", "p", "n_boot", "seed"]),
        "importance_link": pd.DataFrame([(k, 0.3 + k / 1000, 0.1, 0.5, 2.5, 0.02, 20, 27) for k in (10, 50)],
                                        columns=["k", "mean_r", "ci_low", "ci_high", "t", "p", "n_emotions_positive",
                                                 "n_emotions"]
                                        ).assign(run_set="demo", study="li2024"),
    }
    ablation = []
    for emotion in emotions:
        ablation.append((emotion, None, 0, "unablated", 0, 0.9))
        for k in (10, 50):
            for a in ATTRIBUTES:
                ablation.append((emotion, a, k, "attribute", 0, 0.9 - k / 500 * rng.random()))
            for draw in range(10):
                ablation.append((emotion, None, k, "random", draw, 0.9 - rng.random() / 50))
    frames["ablation_results"] = pd.DataFrame(
        ablation, columns=["emotion", "attribute", "k", "condition", "draw", "accuracy"]
    ).assign(run_set="demo", study="li2024", replicate=0)
    neurons = frames["attribute_neurons"]
    frames["attribute_neurons"] = pd.concat([neurons, neurons.assign(run_set="other", k=4000)])
    sets = {a: set(f["neuron"]) for a, f in neurons.groupby("attribute")}
    frames["attribute_neuron_overlap"] = pd.DataFrame(
        [(a, b, len(sets[a] & sets[b]) / len(sets[a] | sets[b])) for a in sorted(sets) for b in sorted(sets) if a < b],
        columns=["attribute_a", "attribute_b", "jaccard"]).assign(run_set="demo", study="li2024", scope="global", k=50)
    for name, frame in frames.items():
        con.register(f"{name}_data", frame)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_data")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    con = duckdb.connect()
    synthetic_views(con)
    return write_report(con, out, source="synthetic", seed=3)


def test_report_json_carries_the_key_numbers(full_report):
    numbers = json.loads((full_report.parent / "report.json").read_text())["key_numbers"]
    con = duckdb.connect()
    synthetic_views(con)  # the same seed: the same views
    selective = con.execute("SELECT sum(n_selective) FROM searchlight_counts "
                            "WHERE fdr = 'monotone' AND layer IS NOT NULL").fetchall()[0][0]
    assert numbers["selective_neurons"] == selective
    assert numbers["model_vs_human_tau"] == pytest.approx(0.21) and numbers["model_vs_human_p_perm"] == 1 / 10_001
    assert numbers["importance_link_k"] == 50 and numbers["importance_link_mean_r"] == pytest.approx(0.35)
    page = full_report.read_text()
    # every key number with its n, CI and the noise ceiling; p at the permutation floor as a bound
    assert "tau_b = 0.210, 95% CI [0.130, 0.290] over emotions, permutation p &lt; 1e-4 (P = 10,000)" in page
    assert "n = 351 emotion pairs; noise ceiling [0.450, 0.550] (61 raters" in page
    demo = con.execute("SELECT layer, tau FROM model_rsa WHERE run_set = 'demo' AND target = 'human' "
                       "AND layer IS NOT NULL ORDER BY tau DESC LIMIT 1").fetchall()[0]
    assert numbers["best_layer"] == demo[0] and f"most human-like layer: {int(demo[0])} of 6, tau = {demo[1]:.3f}" in page
    assert "mean r = 0.350, 95% CI [0.100, 0.500], p = 0.020, n = " in page


def test_report_draws_every_figure_from_the_views(full_report):
    page = full_report.read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images == ["tau_by_layer.png", "models.png", "rdm_model_vs_human.png", "mds.png", "searchlight_counts.png",
                      "neuron_overlap.png", "ablation_curves.png", "drop_vs_importance.png"]
    for image in images:
        assert _png_size(full_report.parent / image)[0] > 300
    assert "not computed yet" not in page
    assert "MDS seed 3" in page and "k 50" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere


def test_the_page_keeps_the_chosen_run_sets_k_and_shows_layers_and_models(full_report, tmp_path):
    summary = json.loads((full_report.parent / "report.json").read_text())
    assert summary["run_set"] == "demo" and summary["k"] == 50  # not run set 'other''s k = 4000
    page = full_report.read_text()
    assert "k = 4000" not in page and "top-4000" not in page
    assert "<h2>Which layer is most human-like</h2>" in page and "<h2>Models compared</h2>" in page
    assert "smollm2" in page and "0.090 [-0.020, 0.200]" in page  # the cross-model tables
    con = duckdb.connect()
    synthetic_views(con)
    other = write_report(con, tmp_path / "other", source="synthetic", run_set="other")
    summary = json.loads((other.parent / "report.json").read_text())
    assert summary["k"] == 4000
    assert summary["sections"]["Overlap of attribute neuron sets"]["images"] == ["neuron_overlap.png"]
    forced = write_report(con, tmp_path / "forced", source="synthetic", run_set="demo", k=4000).read_text()
    assert "exist at k = 50 but not at the page&#x27;s k = 4000" in forced or "exist at k = 50 but not at the page" in forced


def test_format_p_writes_the_permutation_floor_as_a_bound():
    from emolake.analysis.report.page import format_p

    assert format_p(1 / 10_001, 10_000) == "p < 1e-4"
    assert format_p(1 / 10_000, 9_999) == "p ≤ 1e-4"
    assert format_p(1 / 1_000, 999) == "p ≤ 0.001" and format_p(1 / 1_001, 1_000) == "p < 0.001"
    assert format_p(1 / 201, 200) == "p < 0.005"
    assert format_p(0.0123, 10_000) == "p = 0.012"
    assert format_p(2e-5) == "p = 2e-05" and format_p(None) == "p n/a"


def test_model_map_is_aligned_to_the_human_map_like_scipy_procrustes(tmp_path):
    from scipy.spatial import procrustes

    rng = np.random.default_rng(8)
    reference = rng.normal(size=(12, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 3.0 * (reference @ rotation) * [1, -1] + 5  # rotated, reflected, scaled, shifted
    aligned, disparity = figures.align_to(reference, moved)
    assert np.allclose(aligned, reference, atol=1e-9) and disparity == pytest.approx(0, abs=1e-12)
    noisy = moved + rng.normal(scale=0.5, size=moved.shape)
    assert figures.align_to(reference, noisy)[1] == pytest.approx(procrustes(reference, noisy)[2])
    human = squareform(pdist(reference))
    maps = figures.plot_mds_maps([("human", human), ("model", squareform(pdist(noisy)))], list("abcdefghijkl"),
                                 tmp_path / "m.png", seed=1, colour=rng.random(12), colour_label="valence")
    assert len(maps) == 2 and maps[0][1] == 0 and _png_size(tmp_path / "m.png")[0] > 1000


def test_rdm_colour_limits_ignore_the_zero_diagonal():
    matrix = squareform(pdist(np.arange(5.0)[:, None])) + 10  # off-diagonal 11..14
    np.fill_diagonal(matrix, 0)
    assert figures.off_diagonal_limits(matrix) == (11.0, 14.0)


def test_report_on_a_lake_without_analyses_names_the_commands(lake, tmp_path):
    page = build_report(lake, tmp_path / "r").read_text()
    assert "<img" not in page
    for command in ("emolake rsa", "emolake searchlight", "emolake neurons", "emolake ablate"):
        assert f"<code>{command}" in page
    assert page.count('class="note"') >= 6


def test_report_command_on_the_embedded_human_figures(lake, tmp_path):
    ingest_embedded(lake)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "report", "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "index.html").read_text()
    assert '<img src="mds.png"' in page
    assert "The model map not computed yet" in page
    assert _png_size(tmp_path / "r" / "mds.png")[0] > 300


def _chromium(page: Path, profile: Path) -> str:
    """The DOM of `page` after load in headless Chromium at 1,400 px wide (the `chromium` fixture's
    rule: skipped without Chromium, except under CI=true, where a missing browser fails the test)."""
    browser = require_executable(CHROMIUM, "Debian: apt-get install -y chromium")
    result = subprocess.run(
        [str(browser), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--window-size=1400,3000", "--hide-scrollbars",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_report_renders_completely_in_headless_chromium(full_report, tmp_path):
    dom = _chromium(full_report, tmp_path / "profile")
    match = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert match, dom[:2000]
    loaded, total = map(int, match.groups())
    assert total == 8 and loaded == total
    overflow = re.search(r'data-overflow="([^"]*)"', dom)
    assert overflow and overflow.group(1) == "none", overflow.group(1) if overflow else dom[:2000]
    width, scroll = map(int, re.search(r'data-page-width="(\d+)x(\d+)"', dom).groups())
    assert width >= 1300 and scroll <= width  # nothing wider than the 1,400 px window


def test_chromium_sees_a_missing_image_and_an_overflowing_table(full_report, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(full_report.parent, broken)
    (broken / "mds.png").unlink()
    page = (broken / "index.html").read_text()
    wide_row = "<tr>" + "".join(f"<td>{'x' * 12}{i}</td>" for i in range(200)) + "</tr>"
    page = page.replace("</tbody>", wide_row + "</tbody>", 1).replace("overflow-wrap: anywhere", "white-space: nowrap")
    (broken / "index.html").write_text(page)
    dom = _chromium(broken / "index.html", tmp_path / "profile")
    assert 'data-images-loaded="7/8"' in dom
    assert re.search(r'data-overflow="([^"]*)"', dom).group(1) != "none"
