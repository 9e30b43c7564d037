"""Figures of the study as PNG files: RDM heatmaps, an MDS map, searchlight counts, neuron-set
overlaps, ablation curves with control bands, and accuracy drop vs human importance.

Every function takes plain arrays or DataFrames (no lake), writes one PNG and returns what it
computed (an order, coordinates, a fit), so each can be tested alone. Figures are drawn on
`matplotlib.figure.Figure` with the Agg canvas: no display and no global pyplot state; the
`draw_*` functions return the Figure itself (for notebooks), the `plot_*` ones save it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

DPI = 110


def pairs_to_square(pairs: pd.DataFrame, emotions: Sequence[str]) -> np.ndarray:
    """Symmetric [n, n] matrix from rows (emotion_a, emotion_b, distance); diagonal 0, missing NaN."""
    index = {e: i for i, e in enumerate(emotions)}
    square = np.full((len(emotions), len(emotions)), np.nan)  # [n_emotions, n_emotions]
    np.fill_diagonal(square, 0.0)
    for a, b, d in pairs[["emotion_a", "emotion_b", "distance"]].itertuples(index=False):
        if a in index and b in index:
            square[index[a], index[b]] = square[index[b], index[a]] = d
    return square


def cluster_order(distance: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage hierarchical clustering of a [n, n] distance matrix."""
    condensed = squareform(np.nan_to_num(distance, nan=np.nanmax(distance)), checks=False)
    return leaves_list(linkage(condensed, method="average", optimal_ordering=True))


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def off_diagonal_limits(matrix: np.ndarray) -> tuple[float, float]:
    """(min, max) of a square matrix's off-diagonal finite values: colour limits that the zero
    diagonal does not wash out."""
    values = matrix[~np.eye(len(matrix), dtype=bool)]
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)


def _masked_diagonal(matrix: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.masked_array(matrix, mask=np.eye(len(matrix), dtype=bool) | ~np.isfinite(matrix))


def draw_rdm_pair(model: np.ndarray, human: np.ndarray, emotions: Sequence[str],
                  model_title: str = "model RDM", human_title: str = "human RDM",
                  model_label: str = "model distance", human_label: str = "human distance") -> tuple[Figure, list[str]]:
    """Model and human RDMs ([n, n] each, rows in `emotions` order) side by side, both reordered
    by the hierarchical clustering of the human RDM. The diagonal is masked (grey) and each colour
    scale spans that matrix's off-diagonal values. Returns the figure and the emotion order shown."""
    order = cluster_order(human)
    names = [emotions[i] for i in order]
    fig = Figure(figsize=(16, 7.5), layout="constrained")
    panels = ((model, model_title, model_label), (human, human_title, human_label))
    for ax, (matrix, title, label) in zip(fig.subplots(1, 2), panels):
        shown = matrix[np.ix_(order, order)]  # [n_emotions, n_emotions]
        low, high = off_diagonal_limits(shown)
        cmap = _cmap("viridis").with_extremes(bad="#d9d9d9")
        image = ax.imshow(_masked_diagonal(shown), cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("emotion (human clustering order)")
        ax.set_ylabel("emotion (human clustering order)")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=f"{label} (diagonal masked)")
    return fig, names


def plot_rdm_pair(model: np.ndarray, human: np.ndarray, emotions: Sequence[str], path: Path,
                  model_title: str = "model RDM", human_title: str = "human RDM",
                  model_label: str = "model distance", human_label: str = "human distance") -> list[str]:
    """`draw_rdm_pair` saved as a PNG at `path`; returns the emotion order shown."""
    fig, names = draw_rdm_pair(model, human, emotions, model_title, human_title, model_label, human_label)
    _save(fig, path)
    return names


def mds_coordinates(distance: np.ndarray, seed: int) -> np.ndarray:
    """Metric MDS of a [n, n] distance matrix into 2-D: [n, 2]."""
    from sklearn.manifold import MDS

    try:  # scikit-learn >= 1.8: start from classical MDS, deterministic given the seed
        mds = MDS(n_components=2, metric="precomputed", init="classical_mds", n_init=1, random_state=seed)
    except TypeError:  # older scikit-learn
        mds = MDS(n_components=2, dissimilarity="precomputed", n_init=4, random_state=seed)
    return mds.fit_transform(np.nan_to_num(distance, nan=np.nanmean(distance)))


def align_to(reference: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, float]:
    """`coords` [n, 2] translated, rotated/reflected and scaled onto `reference` [n, 2] by
    scipy.spatial.procrustes, returned in the reference's units, with its disparity (sum of squared
    differences between the standardised configurations: 0 = the same up to those moves)."""
    from scipy.spatial import procrustes

    _, aligned, disparity = procrustes(reference, coords)  # both centred, unit Frobenius norm
    centre = reference.mean(axis=0)
    return aligned * np.linalg.norm(reference - centre) + centre, float(disparity)


def draw_mds_maps(maps: Sequence[tuple[str, np.ndarray]], emotions: Sequence[str], seed: int,
                  colour: Sequence[float] | None = None,
                  colour_label: str = "") -> tuple[Figure, list[tuple[np.ndarray, float]]]:
    """MDS maps of the emotions side by side from (title, [n, n] distance matrix) pairs. Every map
    after the first is aligned to the first (Procrustes: rotation, reflection, scale), points share
    one colour scale (a per-emotion value such as valence). Returns the figure and
    [(coordinates [n, 2], disparity)]."""
    reference = mds_coordinates(maps[0][1], seed)  # [n_emotions, 2]
    results = [(reference, 0.0)] + [align_to(reference, mds_coordinates(d, seed)) for _, d in maps[1:]]
    fig = Figure(figsize=(7.5 * len(maps) + 1, 7), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(maps)))
    values = np.asarray(colour, dtype=float) if colour is not None else None
    norm = None
    if values is not None:
        from matplotlib.colors import Normalize

        norm = Normalize(np.nanmin(values), np.nanmax(values))
    for k, (ax, (title, _), (coords, disparity)) in enumerate(zip(axes, maps, results)):
        style = {"c": values, "cmap": "coolwarm", "norm": norm} if values is not None else {"color": "tab:blue"}
        points = ax.scatter(coords[:, 0], coords[:, 1], s=60, edgecolors="black", linewidths=0.5, **style)
        for (x, y), name in zip(coords, emotions):
            ax.annotate(name, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=9)
        ax.margins(0.15)  # room for the labels of the outermost points
        aligned = " (Procrustes-aligned to the first map, disparity %.2f)" % disparity if k else ""
        ax.set_title(title + aligned, fontsize=10)
        ax.set_xlabel("MDS dimension 1")
        ax.set_ylabel("MDS dimension 2")
        ax.set_aspect("equal", adjustable="datalim")
    if values is not None:
        fig.colorbar(points, ax=list(axes), label=colour_label, shrink=0.8)
    return fig, results


def plot_mds_maps(maps: Sequence[tuple[str, np.ndarray]], emotions: Sequence[str], path: Path, seed: int,
                  colour: Sequence[float] | None = None, colour_label: str = "") -> list[tuple[np.ndarray, float]]:
    """`draw_mds_maps` saved as a PNG at `path`; returns [(coordinates [n, 2], disparity)]."""
    fig, results = draw_mds_maps(maps, emotions, seed, colour, colour_label)
    _save(fig, path)
    return results


def draw_mds(distance: np.ndarray, emotions: Sequence[str], seed: int, colour: Sequence[float] | None = None,
             colour_label: str = "", title: str = "") -> tuple[Figure, np.ndarray]:
    """One MDS map (`draw_mds_maps` with one map); returns the figure and the [n, 2] coordinates."""
    fig, results = draw_mds_maps([(title or f"MDS of the emotions (seed {seed})", distance)], emotions, seed,
                                 colour, colour_label)
    return fig, results[0][0]


def plot_mds(distance: np.ndarray, emotions: Sequence[str], path: Path, seed: int,
             colour: Sequence[float] | None = None, colour_label: str = "", title: str = "") -> np.ndarray:
    """`draw_mds` saved as a PNG at `path`; returns the [n, 2] coordinates."""
    fig, coords = draw_mds(distance, emotions, seed, colour, colour_label, title)
    _save(fig, path)
    return coords


def draw_searchlight_counts(counts: Mapping[str, pd.DataFrame]) -> Figure:
    """One heatmap per panel: rows layers, columns attributes, cells neuron counts (annotated).
    `counts` maps a panel title (e.g. 'significant', 'selective') to a layer x attribute frame."""
    panels = list(counts.items())
    width = max(6.0, 0.6 * max(len(frame.columns) for _, frame in panels) + 2)
    fig = Figure(figsize=(width * len(panels), 0.45 * max(len(f.index) for _, f in panels) + 3))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, frame) in zip(axes, panels):
        values = frame.to_numpy(dtype=float)  # [n_layers, n_attributes]
        image = ax.imshow(values, cmap="magma_r", aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(frame.columns)), list(frame.columns), rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(frame.index)), [str(i) for i in frame.index], fontsize=8)
        ax.set_ylabel("layer")
        ax.set_xlabel("attribute")
        ax.set_title(f"{title} neurons")
        top = np.nanmax(values) if values.size else 0
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if top and value > top / 2 else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=f"{title} neurons (count)")
    return fig


def plot_searchlight_counts(counts: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """`draw_searchlight_counts` saved as a PNG at `path`."""
    return _save(draw_searchlight_counts(counts), path)


def overlap_matrix(sets: Mapping[str, set], measure: str = "jaccard") -> pd.DataFrame:
    """[n_sets, n_sets] Jaccard (|A & B| / |A | B|) or overlap coefficient (|A & B| / min)."""
    names = list(sets)
    matrix = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            shared = len(sets[a] & sets[b])
            base = len(sets[a] | sets[b]) if measure == "jaccard" else min(len(sets[a]), len(sets[b]))
            matrix[i, j] = shared / base if base else 0.0
    return pd.DataFrame(matrix, index=names, columns=names)


def plot_neuron_overlap(sets: Mapping[str, set], path: Path, title: str = "") -> pd.DataFrame:
    """Heatmap of the Jaccard overlap between attribute neuron sets; returns the matrix."""
    matrix = overlap_matrix(sets)
    plot_overlap_matrix(matrix, path, title)
    return matrix


def plot_overlap_matrix(matrix: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Heatmap of a square [n_sets, n_sets] Jaccard matrix (annotated); the diagonal (1 by definition)
    is masked and the colour scale spans the off-diagonal values."""
    values = matrix.to_numpy(dtype=float)
    fig = Figure(figsize=(0.5 * len(matrix) + 4, 0.5 * len(matrix) + 3))
    ax = fig.subplots()
    low, high = off_diagonal_limits(values)
    cmap = _cmap("Blues").with_extremes(bad="#d9d9d9")
    image = ax.imshow(_masked_diagonal(values), cmap=cmap, vmin=0, vmax=max(high, 1e-9), interpolation="nearest")
    ax.set_xticks(range(len(matrix)), matrix.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(matrix)), matrix.index, fontsize=8)
    ax.set_xlabel("attribute")
    ax.set_ylabel("attribute")
    for (i, j), value in np.ndenumerate(values):
        if i != j:
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if high and value > high / 2 else "black")
    ax.set_title(title or "Jaccard overlap of attribute neuron sets")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Jaccard overlap (diagonal masked)")
    return _save(fig, path)


def plot_ablation_curves(attribute_accuracy: pd.DataFrame, controls: pd.DataFrame, path: Path,
                         unablated: float | None = None) -> Path:
    """Accuracy vs k in small multiples, one panel per attribute: the attribute's curve (`attribute,
    k, accuracy` and, where given, `ci_low, ci_high`: 95% CI over emotions) as error bars, the random
    controls (`k, mean` and `low, high`, else mean +/- `sd`) as a grey band in every panel, and
    the unablated accuracy as a dashed line."""
    attributes = sorted(attribute_accuracy["attribute"].unique())
    columns = min(4, max(1, len(attributes)))
    rows = int(np.ceil(len(attributes) / columns)) or 1
    fig = Figure(figsize=(3.4 * columns + 0.5, 2.6 * rows + 1.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True)).ravel()
    controls = controls.sort_values("k")
    low = controls["low"] if "low" in controls else controls["mean"] - controls["sd"]
    high = controls["high"] if "high" in controls else controls["mean"] + controls["sd"]
    band_label = "random sets (2.5-97.5%)" if "low" in controls else "random sets (mean ± sd)"
    for ax, attribute in zip(axes, attributes):
        if len(controls):
            ax.fill_between(controls["k"], low, high, color="grey", alpha=0.3, label=band_label)
            ax.plot(controls["k"], controls["mean"], color="grey", linewidth=1.5, label="random sets (mean)")
        frame = attribute_accuracy[attribute_accuracy["attribute"] == attribute].sort_values("k")
        if {"ci_low", "ci_high"} <= set(frame.columns):
            error = np.vstack([frame["accuracy"] - frame["ci_low"], frame["ci_high"] - frame["accuracy"]])
            error = np.nan_to_num(error, nan=0.0)
        else:
            error = None
        ax.errorbar(frame["k"], frame["accuracy"], yerr=error, marker="o", markersize=4, capsize=3,
                    color="tab:red", label="attribute set (95% CI over emotions)")
        if unablated is not None:
            ax.axhline(unablated, color="black", linestyle="--", linewidth=1, label="unablated")
        ax.set_title(attribute, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(attributes):]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * columns:]:
        ax.set_xlabel("k (neurons ablated)")
    for ax in axes[::columns]:
        ax.set_ylabel("accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9)
    fig.suptitle("Emotion inference after ablating each attribute's neurons (mean over emotions)")
    return _save(fig, path)


def plot_layer_profiles(layers: pd.DataFrame, path: Path, ceiling: tuple[float, float] | None = None,
                        overall: pd.DataFrame | None = None) -> Path:
    """tau by layer, one line per run set (distinct colour and marker).

    `layers`: rows `run_set, layer, target, tau, ci_low, ci_high`; target 'human' (group-mean RDM,
    CI over emotions) is drawn in the left panel, 'human_raters' (mean over single raters) with
    the noise ceiling band (`ceiling` = (lower, upper)) in the right one, where present.
    `overall`: rows `run_set, target, tau` over all neurons, drawn as dotted lines."""
    targets = [t for t in ("human", "human_raters") if (layers["target"] == t).any()]
    fig = Figure(figsize=(7 * len(targets) + 1, 5.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(targets), squeeze=False)[0])
    markers = "osD^vP*Xh<>"
    colours = _cmap("tab10")
    run_sets = sorted(layers["run_set"].unique())
    depth = layers.groupby("run_set")["layer"].max().to_dict()  # last layer of each run set
    relative = len(set(depth.values())) > 1  # models of different depth: x = relative depth, so curves align
    offsets = (np.arange(len(run_sets)) - (len(run_sets) - 1) / 2) * min(0.12, 0.6 / max(1, len(run_sets)))
    if relative:
        offsets = offsets / max(depth.values())
    for ax, target in zip(axes, targets):
        if target == "human_raters" and ceiling is not None:
            ax.axhspan(ceiling[0], ceiling[1], color="gold", alpha=0.35,
                       label=f"noise ceiling [{ceiling[0]:.2f}, {ceiling[1]:.2f}]")
        for index, run_set in enumerate(run_sets):
            frame = layers[(layers["run_set"] == run_set) & (layers["target"] == target)].sort_values("layer")
            colour = colours(index % 10)
            error = None
            if target == "human" and {"ci_low", "ci_high"} <= set(frame.columns) and frame["ci_low"].notna().any():
                error = np.nan_to_num(np.vstack([frame["tau"] - frame["ci_low"], frame["ci_high"] - frame["tau"]]))
            x = frame["layer"] / max(1, depth[run_set]) if relative else frame["layer"]
            ax.errorbar(x + offsets[index], frame["tau"], yerr=error, marker=markers[index % len(markers)],
                        capsize=3, color=colour,
                        label=f"{run_set} ({depth[run_set] + 1} layers)")  # run sets side by side at each layer
            if overall is not None:
                whole = overall[(overall["run_set"] == run_set) & (overall["target"] == target)]
                if len(whole):
                    ax.axhline(float(whole["tau"].iloc[0]), color=colour, linestyle=":", linewidth=1.5,
                               label=f"{run_set}: all layers")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xlabel("relative depth: layer / last layer (0 = first layer, 1 = last)" if relative else
                      "layer (0 = first)")
        ax.set_ylabel("Kendall tau-b with the human RDM" if target == "human" else
                      "mean tau-b with single raters")
        ax.set_title("model vs group-mean human RDM (95% CI over emotions)" if target == "human" else
                     "model vs single raters, with the noise ceiling", fontsize=10)
        if not relative:
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_model_forest(models: pd.DataFrame, path: Path) -> Path:
    """One row per run set: tau over all layers (circle) and at its best layer (diamond), each with
    its 95% CI as a horizontal bar. `models`: `run_set, tau, ci_low, ci_high, best_layer, best_tau,
    best_ci_low, best_ci_high` (best_* may be NaN)."""
    models = models.reset_index(drop=True)
    fig = Figure(figsize=(10, 1.0 + 0.75 * len(models)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(models))[::-1]  # first run set on top
    for columns, marker, colour, label, shift in (
            # black and grey, not tab:blue / tab:orange, which the tau-by-layer figure gives to run sets
            (("tau", "ci_low", "ci_high"), "o", "black", "all layers", 0.12),
            (("best_tau", "best_ci_low", "best_ci_high"), "D", "dimgrey", "best layer (chosen on these data)", -0.12)):
        value, low, high = (models[c].astype(float).to_numpy() for c in columns)
        error = np.nan_to_num(np.vstack([value - low, high - value]))
        ax.errorbar(value, y + shift, xerr=error, fmt=marker, color=colour, capsize=3, label=label)
    for row, yy in zip(models.itertuples(), y):
        if pd.notna(row.best_layer):
            ax.annotate(f"layer {int(row.best_layer)}", (row.best_tau, yy - 0.12), xytext=(6, -10),
                        textcoords="offset points", fontsize=8, color="dimgrey")
    ax.axvline(0, color="black", linewidth=0.5)
    ax.set_yticks(y, [str(r) for r in models["run_set"]])
    ax.set_ylim(-0.7, len(models) - 0.3)
    ax.set_xlabel("Kendall tau-b with the group-mean human RDM (95% CI over emotions)")
    ax.set_ylabel("run set")
    ax.set_title("Which model: all layers together and the best layer")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8)
    return _save(fig, path)


def _cmap(name: str):
    from matplotlib import colormaps

    return colormaps[name]


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope, intercept and Pearson r of y on x."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept), float(np.corrcoef(x, y)[0, 1])


def plot_drop_vs_importance(importance: Sequence[float], drop: Sequence[float], labels: Sequence[str],
                            path: Path, k: int | None = None) -> tuple[float, float, float]:
    """Scatter of accuracy drop per attribute against its human importance, with the fitted line.
    Returns (slope, intercept, r)."""
    x, y = np.asarray(importance, dtype=float), np.asarray(drop, dtype=float)  # [n_attributes]
    slope, intercept, r = fit_line(x, y)
    fig = Figure(figsize=(8, 6))
    ax = fig.subplots()
    ax.scatter(x, y, s=50, color="tab:red", edgecolors="black", linewidths=0.5)
    for xi, yi, name in zip(x, y, labels):
        ax.annotate(name, (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=8)
    grid = np.linspace(x.min(), x.max(), 50)
    ax.plot(grid, slope * grid + intercept, color="black", linewidth=1, label=f"fit: r = {r:.2f}")
    ax.set_xlabel("human importance (tau of human similarity RDM vs attribute RDM)")
    ax.set_ylabel("accuracy drop (unablated - ablated)" + (f", k = {k}" if k else ""))
    ax.set_title("Accuracy drop vs human importance, per attribute")
    ax.legend()
    _save(fig, path)
    return slope, intercept, r
