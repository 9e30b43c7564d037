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


def draw_rdm_pair(model: np.ndarray, human: np.ndarray, emotions: Sequence[str],
                  model_title: str = "model RDM", human_title: str = "human RDM") -> tuple[Figure, list[str]]:
    """Model and human RDMs ([n, n] each, rows in `emotions` order) side by side, both reordered
    by the hierarchical clustering of the human RDM. Returns the figure and the emotion order shown."""
    order = cluster_order(human)
    names = [emotions[i] for i in order]
    fig = Figure(figsize=(16, 7.5), layout="constrained")
    for ax, matrix, title in zip(fig.subplots(1, 2), (model, human), (model_title, human_title)):
        shown = matrix[np.ix_(order, order)]
        image = ax.imshow(shown, cmap="viridis", interpolation="nearest")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(title)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="distance")
    return fig, names


def plot_rdm_pair(model: np.ndarray, human: np.ndarray, emotions: Sequence[str], path: Path,
                  model_title: str = "model RDM", human_title: str = "human RDM") -> list[str]:
    """`draw_rdm_pair` saved as a PNG at `path`; returns the emotion order shown."""
    fig, names = draw_rdm_pair(model, human, emotions, model_title, human_title)
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


def draw_mds(distance: np.ndarray, emotions: Sequence[str], seed: int, colour: Sequence[float] | None = None,
             colour_label: str = "", title: str = "") -> tuple[Figure, np.ndarray]:
    """MDS map of the emotions from a [n, n] distance matrix; points optionally coloured by a
    per-emotion value (e.g. valence). Returns the figure and the [n, 2] coordinates."""
    coords = mds_coordinates(distance, seed)  # [n_emotions, 2]
    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    style = {"c": colour, "cmap": "coolwarm"} if colour is not None else {"color": "tab:blue"}
    points = ax.scatter(coords[:, 0], coords[:, 1], s=60, edgecolors="black", linewidths=0.5, **style)
    for (x, y), name in zip(coords, emotions):
        ax.annotate(name, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=9)
    if colour is not None:
        fig.colorbar(points, ax=ax, label=colour_label)
    ax.margins(0.15)  # room for the labels of the outermost points
    ax.set_title(title or f"MDS of the emotions (seed {seed})")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig, coords


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
        ax.set_title(f"{title} neurons")
        top = np.nanmax(values) if values.size else 0
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if top and value > top / 2 else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
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
    """Heatmap of a square [n_sets, n_sets] Jaccard matrix (values 0-1, annotated)."""
    fig = Figure(figsize=(0.5 * len(matrix) + 4, 0.5 * len(matrix) + 3))
    ax = fig.subplots()
    image = ax.imshow(matrix.to_numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(matrix)), matrix.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(matrix)), matrix.index, fontsize=8)
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                color="white" if value > 0.5 else "black")
    ax.set_title(title or "Jaccard overlap of attribute neuron sets")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Jaccard")
    return _save(fig, path)


def plot_ablation_curves(attribute_accuracy: pd.DataFrame, controls: pd.DataFrame, path: Path,
                         unablated: float | None = None) -> Path:
    """Accuracy vs k: one line per attribute (`attribute, k, accuracy`), the random controls as a
    mean +/- sd band (`k, mean, sd`), and the unablated accuracy as a dashed line."""
    fig = Figure(figsize=(9, 6))
    ax = fig.subplots()
    if len(controls):
        controls = controls.sort_values("k")
        ax.fill_between(controls["k"], controls["mean"] - controls["sd"], controls["mean"] + controls["sd"],
                        color="grey", alpha=0.3, label="random controls (mean ± sd)")
        ax.plot(controls["k"], controls["mean"], color="grey", linewidth=2)
    cmap = _cmap("tab20")
    for index, (attribute, frame) in enumerate(attribute_accuracy.groupby("attribute", sort=True)):
        frame = frame.sort_values("k")
        ax.plot(frame["k"], frame["accuracy"], marker="o", markersize=4, color=cmap(index % 20), label=attribute)
    if unablated is not None:
        ax.axhline(unablated, color="black", linestyle="--", linewidth=1, label="unablated")
    ax.set_xlabel("k (neurons ablated)")
    ax.set_ylabel("accuracy (mean over emotions)")
    ax.set_title("Emotion inference after ablating attribute neurons")
    ax.legend(fontsize=7, ncol=2, loc="best")
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
