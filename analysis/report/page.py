"""The HTML report: one page of the study's figures, drawn from the warehouse views.

`build_report(lake, out_dir)` reads `human_rdm`, `model_rdm`, `emotion_attributes`,
`searchlight_counts`, `attribute_neurons`, `ablation_results`, `attribute_importance`,
`model_rsa` (per layer too), `noise_ceiling`, `model_comparison` and `importance_link`, writes one
PNG per figure (`analysis.report.figures`), `index.html` (self-contained except for the PNGs
beside it) and `report.json` (what was chosen and drawn). One study, one run set and one k hold
for the whole page (the k from those the run set has). A section whose view is missing or
empty says which command computes it instead of failing.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from emolake.ingest.emotions import GOEMOTIONS_27
from emolake.warehouse.console import track
from emolake.warehouse.database import connect
from emolake.warehouse.lake import Lake
from emolake.warehouse.version import code_version

from . import figures

DEFAULT_STUDY = "li2024"
# The command that fills each view, named in a section's "not computed yet" note.
HOW_TO_COMPUTE = {
    "human_rdm": "emolake ingest model-emotion PATH` (or `emolake demo",
    "model_rdm": "emolake extract` then `emolake rsa",
    "searchlight_counts": "emolake searchlight",
    "attribute_neurons": "emolake neurons",
    "ablation_results": "emolake ablate",
    "attribute_importance": "emolake rsa",
    "importance_link": "emolake ablate",
    "model_rsa": "emolake rsa --run-set R",
    "model_comparison": "emolake compare --run-sets A,B",
}
CONTROL_WORDS = ("random", "control")
UNABLATED_WORDS = ("unablated", "none", "baseline", "best", "intact")


@dataclass
class Section:
    title: str
    images: list[str] = field(default_factory=list)  # PNG file names beside index.html
    caption: str = ""  # HTML
    notes: list[str] = field(default_factory=list)  # "not computed yet" lines (plain text)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)

    @property
    def drawn(self) -> bool:
        return bool(self.images or self.tables)


@dataclass
class Choices:
    """What the report shows when the lake holds several: one study, one run set, one k, one seed."""
    study: str | None
    run_set: str | None
    k: int | None
    seed: int


class Views:
    """Reads the warehouse views as DataFrames; a missing or empty view reads as None."""

    def __init__(self, con) -> None:
        self.con = con
        con.execute("SET enable_progress_bar = false")  # DuckDB's own bar would mix into --json output
        self.names = {r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'").fetchall()}
        self._cache: dict[tuple, pd.DataFrame | None] = {}  # some views (model_rdm) take seconds each

    def columns(self, view: str) -> set[str]:
        return {r[0] for r in self.con.execute(f'DESCRIBE "{view}"').fetchall()} if view in self.names else set()

    def read(self, view: str, **equal: object) -> pd.DataFrame | None:
        """Rows of `view`, filtered on each column in `equal` that the view has (None skips it)."""
        if view not in self.names:
            return None
        columns = self.columns(view)
        filters = tuple(sorted((c, v) for c, v in equal.items() if v is not None and c in columns))
        key = (view, filters)
        if key not in self._cache:
            where = " AND ".join(f'"{column}" = ?' for column, _ in filters)
            sql = f'SELECT * FROM "{view}"' + (f" WHERE {where}" if where else "")
            frame = self.con.execute(sql, [value for _, value in filters]).fetchdf()
            self._cache[key] = frame if len(frame) else None
        return self._cache[key]

    def values(self, view: str, column: str, **equal: object) -> list:
        """Distinct non-null values of one column of `view`, filtered on each column in `equal` that
        the view has (None skips it); empty where the view or column is missing."""
        columns = self.columns(view)
        if column not in columns:
            return []
        filters = [(c, v) for c, v in sorted(equal.items()) if v is not None and c in columns]
        where = "".join(f' AND "{c}" = ?' for c, _ in filters)
        rows = self.con.execute(f'SELECT DISTINCT "{column}" FROM "{view}" WHERE "{column}" IS NOT NULL{where}',
                                [v for _, v in filters]).fetchall()
        return sorted(r[0] for r in rows)


def _not_computed(view: str, what: str) -> str:
    return f"{what} not computed yet: run `{HOW_TO_COMPUTE[view]}` (view `{view}` is missing or empty)."


def choose(views: Views, study: str | None, run_set: str | None, k: int | None, seed: int) -> Choices:
    """Defaults: the study `li2024` if present (else the first), the first run set with stored
    analyses (else with neuron sets, ablations or runs), and the largest k that the chosen run set
    has on the chosen study: in both its neuron sets and its ablations, else in either."""
    if study is None:
        studies = views.values("human_rdm", "study")
        study = DEFAULT_STUDY if DEFAULT_STUDY in studies or not studies else studies[0]
    if run_set is None:  # cheap views first: model_rdm computes every run set's RDM to list them
        extracted = set(views.values("runs", "run_set"))
        for view in ("analyses", "attribute_neurons", "ablation_results", "runs", "model_rdm"):
            found = views.values(view, "run_set")
            if extracted:  # only run sets with runs (analyses of human data alone carry none)
                found = [r for r in found if r in extracted]
            if found:
                run_set = found[0]
                break
    if k is None:
        ks = run_set_ks(views, study, run_set)
        k = int(ks[-1]) if ks else None
    return Choices(study, run_set, k, seed)


def run_set_ks(views: Views, study: str | None, run_set: str | None) -> list[int]:
    """The k values of `run_set` on `study`: those of both its global neuron sets and its ablations,
    else those of either (sorted)."""
    sets = {int(k) for k in views.values("attribute_neurons", "k", run_set=run_set, study=study, scope="global")}
    ablated = {int(k) for k in views.values("ablation_results", "k", run_set=run_set, study=study)} - {0}
    return sorted(sets & ablated or sets or ablated)


def _emotions(*frames: pd.DataFrame) -> list[str]:
    """The 27 emotions present in every frame's pairs (neutral and others outside the 27 dropped)."""
    present = set(GOEMOTIONS_27)
    for frame in frames:
        present &= set(frame["emotion_a"]) | set(frame["emotion_b"])
    return [e for e in GOEMOTIONS_27 if e in present]


def _metric(frame: pd.DataFrame) -> str | None:
    """The model RDM metric shown: correlation (1 - Pearson) where present, else the first."""
    if "metric" not in frame:
        return None
    metrics = sorted(frame["metric"].dropna().unique())
    return next((m for m in metrics if "pearson" in str(m) or "correlation" in str(m)), metrics[0] if metrics else None)


METRIC_LABELS = {"correlation": "1 - Pearson r of emotion profiles", "euclidean": "Euclidean distance of profiles",
                 "cosine": "1 - cosine similarity of profiles"}


def rdm_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Model and human RDMs")
    human = views.read("human_rdm", study=choices.study)
    model = views.read("model_rdm", run_set=choices.run_set)
    if human is None:
        section.notes.append(_not_computed("human_rdm", "The human RDM"))
    if model is None:
        section.notes.append(_not_computed("model_rdm", "The model RDM"))
    if human is None or model is None:
        return section
    metric = _metric(model)
    if metric is not None:
        model = model[model["metric"] == metric]
    emotions = _emotions(human, model)
    shown = figures.plot_rdm_pair(
        figures.pairs_to_square(model, emotions), figures.pairs_to_square(human, emotions), emotions,
        out / "rdm_model_vs_human.png",
        model_title=f"model RDM: {choices.run_set}" + (f" ({metric})" if metric else ""),
        human_title=f"human RDM: {choices.study}",
        model_label=METRIC_LABELS.get(str(metric), "model distance"),
        human_label="human distance (mean over raters)",
    )
    section.images.append("rdm_model_vs_human.png")
    section.caption = (f"{len(emotions)} emotions ({len(emotions) * (len(emotions) - 1) // 2} pairs), both matrices "
                       f"in the order of average-linkage hierarchical clustering of the human RDM (first: "
                       f"{html.escape(shown[0])}, last: {html.escape(shown[-1])}); the zero diagonal is masked "
                       f"and each colour scale spans its matrix's off-diagonal range.")
    rsa = views.read("model_rsa", run_set=choices.run_set, study=choices.study)
    if rsa is not None and "target" in rsa:
        rsa = rsa[rsa["target"].isin(["human", "human_raters"])]
        if "layer" in rsa:
            rsa = rsa[rsa["layer"].isna()]
    if rsa is not None and len(rsa):
        section.tables.append(("Model vs human RSA over all neurons (view model_rsa, layer NULL)", rsa_table(rsa)))
    return section


def format_p(p: float | None, n_perm: int | None = None) -> str:
    """'p = 0.012', or, where a permutation p is at its floor 1/(P + 1) (P permutations), the
    smallest round bound (1, 2 or 5 x 10^e) it does not exceed: 'p < 1e-4' for P = 10,000, 'p ≤ 0.001'
    for P = 999."""
    if p is None or not np.isfinite(p):
        return "p n/a"
    floor = 1 / (n_perm + 1) if n_perm else None
    if floor is not None and p <= floor * (1 + 1e-9):
        exponent = int(np.floor(np.log10(floor)))
        bound, digit = next((d * 10.0 ** e, d) for e in (exponent, exponent + 1) for d in (1, 2, 5)
                            if d * 10.0 ** e >= floor * (1 - 1e-9))
        e = int(round(np.log10(bound / digit)))
        text = f"{digit}e{e}" if e < -3 else f"{bound:.{max(0, -e)}f}"
        return f"p {'≤' if np.isclose(bound, floor, rtol=1e-9, atol=0) else '<'} {text}"
    return f"p = {p:.2g}" if p < 0.001 else f"p = {p:.3f}"


def _ci(low: float | None, high: float | None) -> str:
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "CI n/a"
    return f"95% CI [{low:.3f}, {high:.3f}]"


def _bracket(low: float | None, high: float | None) -> str:
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "[CI n/a]"
    return f"[{low:.3f}, {high:.3f}]"


def rsa_table(rsa: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader needs from `model_rsa` rows, numbers formatted (p at its floor as p < ...)."""
    rows = []
    for r in rsa.to_dict("records"):
        n_perm = r.get("n_perm")
        n_perm = int(n_perm) if n_perm is not None and pd.notna(n_perm) else 0
        rows.append({
            "layer": "all" if pd.isna(r.get("layer", np.nan)) else int(r["layer"]),
            "target": r.get("target"), "metric": r.get("metric"), "method": r.get("method"),
            "tau": f"{r['tau']:.3f}",
            "95% CI over emotions": _bracket(r.get("ci_emotions_low"), r.get("ci_emotions_high")),
            "permutation p": (format_p(r.get("p_perm"), n_perm) + f" (P = {n_perm:,})") if n_perm else "",
            "n pairs": r.get("n_pairs", ""),
            "noise ceiling": (f"[{r['ceiling_lower']:.3f}, {r['ceiling_upper']:.3f}]"
                              if pd.notna(r.get("ceiling_lower", np.nan)) else ""),
        })
    return pd.DataFrame(rows)


def layers_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Which layer is most human-like")
    rsa = views.read("model_rsa", study=choices.study)
    if rsa is None:
        section.notes.append(_not_computed("model_rsa", "Per-layer RSA"))
        return section
    if "layer" not in rsa or not rsa["layer"].notna().any():
        section.notes.append(f"Per-layer RSA not computed yet: `model_rsa` holds rows over all neurons only; run "
                             f"`emolake rsa --study {choices.study} --run-set R` again (it adds one row set per layer).")
        return section
    rsa = rsa[rsa["target"].isin(["human", "human_raters"]) & (rsa["method"] == "tau_b")]
    metric = _metric(rsa)
    rsa = rsa[rsa["metric"] == metric]
    layers = rsa[rsa["layer"].notna()].rename(columns={"ci_emotions_low": "ci_low", "ci_emotions_high": "ci_high"})
    layers = layers.assign(layer=layers["layer"].astype(int))
    overall = rsa[rsa["layer"].isna()]
    ceiling = views.read("noise_ceiling", study=choices.study, method="tau_b")
    bounds = (float(ceiling["lower"].iloc[0]), float(ceiling["upper"].iloc[0])) if ceiling is not None else None
    figures.plot_layer_profiles(layers, out / "tau_by_layer.png", ceiling=bounds, overall=overall)
    section.images.append("tau_by_layer.png")
    human = layers[layers["target"] == "human"]
    best = human.loc[human.groupby("run_set")["tau"].idxmax()]
    lines = [f"{html.escape(str(r.run_set))}: layer {r.layer}, tau-b = {r.tau:.3f} ({_ci(r.ci_low, r.ci_high)}, "
             f"{format_p(r.p_perm, r.n_perm)}, {int(r.n_pairs)} pairs)" for r in best.itertuples()]
    section.caption = (f"Kendall tau-b of each layer's model RDM ({html.escape(str(metric))}, that layer's neurons "
                       f"alone) with the human RDM of {html.escape(str(choices.study))}; error bars: 95% bootstrap "
                       f"CI over emotions; dotted: all layers together"
                       + ("; x: relative depth (layer / last layer), since the run sets differ in depth. "
                          if layers.groupby("run_set")["layer"].max().nunique() > 1 else ". ")
                       + ("Right: mean tau-b with single raters, the quantity the noise ceiling (band, "
                          f"[{bounds[0]:.3f}, {bounds[1]:.3f}]) bounds. " if bounds else
                          "No noise ceiling: the study has fewer than two raters. ")
                       + "Most human-like layer (chosen on these data, so optimistic): " + "; ".join(lines) + ".")
    return section


def model_summaries(rsa: pd.DataFrame) -> pd.DataFrame:
    """Per run set, from `model_rsa` rows of one metric and method, target 'human': tau over all
    layers and at the best layer (highest tau, ties: lowest layer), each with its CI over emotions."""
    rows = []
    for run_set, frame in rsa[rsa["target"] == "human"].groupby("run_set", sort=True):
        overall = frame[frame["layer"].isna()] if "layer" in frame else frame
        layers = frame[frame["layer"].notna()].sort_values(["tau", "layer"], ascending=[False, True]) \
            if "layer" in frame else frame.iloc[:0]
        if not len(overall):
            continue
        whole, best = overall.iloc[0], layers.iloc[0] if len(layers) else None
        rows.append({"run_set": run_set, "tau": whole["tau"], "ci_low": whole.get("ci_emotions_low", np.nan),
                     "ci_high": whole.get("ci_emotions_high", np.nan),
                     "best_layer": best["layer"] if best is not None else np.nan,
                     "best_tau": best["tau"] if best is not None else np.nan,
                     "best_ci_low": best.get("ci_emotions_low", np.nan) if best is not None else np.nan,
                     "best_ci_high": best.get("ci_emotions_high", np.nan) if best is not None else np.nan})
    return pd.DataFrame(rows)


def models_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Models compared")
    rsa = views.read("model_rsa", study=choices.study)
    if rsa is not None and {"target", "metric", "method"} <= set(rsa.columns):
        rsa = rsa[rsa["method"] == "tau_b"]
        rsa = rsa[rsa["metric"] == _metric(rsa)] if len(rsa) else rsa
        summaries = model_summaries(rsa) if len(rsa) else pd.DataFrame()
        if len(summaries):
            figures.plot_model_forest(summaries, out / "models.png")
            section.images.append("models.png")
    else:
        section.notes.append(_not_computed("model_rsa", "Model RSA"))
    compared = views.read("model_comparison", study=choices.study)
    if compared is None:
        section.notes.append(_not_computed("model_comparison", "The cross-model table and paired tests"))
    else:
        rows = []
        for r in compared.sort_values(["metric", "method", "rank"]).to_dict("records"):
            rows.append({
                "rank": r["rank"], "run set": r["run_set"], "model": r["model"], "neuron": r["neuron"] or "",
                "read-out": r["position"], "metric": r["metric"], "method": r["method"],
                "emotions": r["n_emotions"],
                "tau, all layers [95% CI]": f"{r['tau']:.3f} {_bracket(r['ci_low'], r['ci_high'])}",
                "perm. p": format_p(r["p_perm"], r["n_perm"]),
                "best layer": "" if pd.isna(r["best_layer"]) else int(r["best_layer"]),
                "tau, best layer [95% CI]": "" if pd.isna(r["best_tau"]) else
                f"{r['best_tau']:.3f} {_bracket(r['best_ci_low'], r['best_ci_high'])}",
                "tau / ceiling": "" if pd.isna(r["tau_normalised"]) else f"{r['tau_normalised']:.2f}",
            })
        section.tables.append(("Run sets vs the human RDM (view model_comparison)", pd.DataFrame(rows)))
        tests = views.read("model_comparison_tests", study=choices.study)
        if tests is not None:
            section.tables.append(("Paired bootstrap over the shared emotions (view model_comparison_tests)",
                                   pd.DataFrame([{
                                       "a": t["run_set_a"], "b": t["run_set_b"], "emotions": t["n_emotions"],
                                       "tau(a) - tau(b) [95% CI]":
                                           f"{t['difference']:.3f} {_bracket(t['ci_low'], t['ci_high'])}",
                                       "p (two-sided)": format_p(t["p"], None), "resamples": t["n_boot"],
                                       "seed": t["seed"]} for t in tests.to_dict("records")])))
    if section.images or section.tables:
        section.caption = ("tau: Kendall tau-b of each run set's model RDM with the group-mean human RDM of "
                           f"{html.escape(str(choices.study))}, 95% bootstrap CI over emotions; the best layer is "
                           "chosen on the same data (optimistic); tau / ceiling: mean tau with single raters over "
                           "the noise ceiling's upper bound (blank with fewer than two raters).")
    return section


def mds_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("MDS map of the emotions")
    human = views.read("human_rdm", study=choices.study)
    if human is None:
        section.notes.append(_not_computed("human_rdm", "The human RDM"))
        return section
    model = views.read("model_rdm", run_set=choices.run_set)
    emotions = _emotions(human) if model is None else _emotions(human, model)
    attributes = views.read("emotion_attributes", study=choices.study)
    colour = None
    if attributes is not None and "valence" in set(attributes["attribute"]):
        valence = attributes[attributes["attribute"] == "valence"].set_index("emotion")["value"]
        colour = [float(valence.get(e, np.nan)) for e in emotions]
    maps = [(f"human similarity, {choices.study}", figures.pairs_to_square(human, emotions))]
    if model is not None:
        metric = _metric(model)
        model = model[model["metric"] == metric] if metric is not None else model
        maps.append((f"model RDM, {choices.run_set}" + (f" ({metric})" if metric else ""),
                     figures.pairs_to_square(model, emotions)))
    else:
        section.notes.append(_not_computed("model_rdm", "The model map"))
    results = figures.plot_mds_maps(maps, emotions, out / "mds.png", choices.seed, colour=colour,
                                    colour_label=f"valence ({choices.study} rating)")
    section.images.append("mds.png")
    section.caption = (f"Metric MDS (seed {choices.seed}) of {len(emotions)} emotions; emotions close on a map were "
                       f"judged (or represented) as similar; colour: valence, one scale for both maps."
                       + (f" The model map is rotated, reflected and scaled onto the human map (orthogonal "
                          f"Procrustes; disparity {results[1][1]:.3f}, 0 = same configuration)."
                          if len(results) > 1 else ""))
    return section


def searchlight_panels(counts: pd.DataFrame, fdr: str | None = None,
                       alpha: float | None = None) -> tuple[dict[str, pd.DataFrame], str | None]:
    """Layer x attribute frames of `n_significant` and `n_selective` from `searchlight_counts` rows,
    for one FDR mode and alpha (default: monotone BH unless only the study's mode is there); the
    NULL-layer totals are left out."""
    if "fdr" in counts:
        modes = sorted(counts["fdr"].dropna().unique())
        fdr = fdr if fdr in modes else ("monotone" if "monotone" in modes else modes[0])
        counts = counts[counts["fdr"] == fdr]
    else:
        fdr = None
    if "alpha" in counts and len(counts):  # one alpha: the run's own, else 0.05 where counted, else the largest
        alphas = sorted(counts["alpha"].dropna().unique())
        if alpha is None or not np.isclose(alphas, alpha).any():
            alpha = 0.05 if np.isclose(alphas, 0.05).any() else alphas[-1]
        counts = counts[np.isclose(counts["alpha"], alpha)]
    count_columns = [c for c in ("n_significant", "n_selective") if c in counts] or \
        [c for c in ("count", "n") if c in counts]
    if "layer" in counts and counts["layer"].notna().any():
        counts = counts[counts["layer"].notna()]  # NULL layer rows are the totals over layers
        counts = counts.assign(layer=counts["layer"].astype(int))
    else:
        counts = counts.assign(layer="all")
    panels = {
        column.removeprefix("n_"): counts.pivot_table(index="layer", columns="attribute", values=column,
                                                       aggfunc="sum", fill_value=0)
        for column in count_columns
    }
    return panels, fdr


def searchlight_mode(views: Views, choices: Choices) -> tuple[str | None, float | None]:
    """The FDR mode and alpha the searchlight was run with (from `analyses`), where recorded."""
    run = views.read("analyses", analysis="searchlight", run_set=choices.run_set, study=choices.study)
    if run is None or not {"fdr", "alpha"} <= set(run.columns):
        return None, None
    return run["fdr"].iloc[0], float(run["alpha"].iloc[0])


def searchlight_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Searchlight: attribute neurons by layer")
    counts = views.read("searchlight_counts", run_set=choices.run_set, study=choices.study)
    if counts is None:
        section.notes.append(_not_computed("searchlight_counts", "Searchlight counts"))
        return section
    panels, fdr = searchlight_panels(counts, *searchlight_mode(views, choices))
    figures.plot_searchlight_counts(panels, out / "searchlight_counts.png")
    section.images.append("searchlight_counts.png")
    section.caption = (f"Neurons per layer and attribute ({', '.join(panels)}), run set "
                       f"{html.escape(str(choices.run_set))}, study {html.escape(str(choices.study))}"
                       + (f", FDR {html.escape(str(fdr))}" if fdr else "") + ".")
    return section


def _missing_k(views: Views, choices: Choices, view: str, what: str) -> str | None:
    """A note when `view` has rows for the run set but none at the page's k (else None)."""
    available = [int(k) for k in views.values(view, "k", run_set=choices.run_set, study=choices.study)]
    if not available or choices.k in available:
        return None
    return (f"{what} of run set {choices.run_set} exist at k = {', '.join(map(str, available))} but not at the "
            f"page's k = {choices.k}: run the report with `--k` set to one of those, or `emolake neurons` / "
            f"`emolake ablate` with `--k {choices.k}`.")


def overlap_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Overlap of attribute neuron sets")
    neurons = views.read("attribute_neurons", run_set=choices.run_set, study=choices.study, scope="global",
                         k=choices.k) if choices.k is not None else None
    if neurons is None:
        section.notes.append(_missing_k(views, choices, "attribute_neurons", "Top-k neuron sets")
                             or _not_computed("attribute_neurons", "Attribute neuron sets"))
        return section
    stored = views.read("attribute_neuron_overlap", run_set=choices.run_set, study=choices.study, scope="global",
                        k=choices.k)
    if stored is not None:  # the analysis' own overlap view, where it exists
        matrix = overlap_from_pairs(stored, sorted(neurons["attribute"].unique()))
    else:
        sets = {attribute: set(frame["neuron"]) for attribute, frame in neurons.groupby("attribute", sort=True)}
        matrix = figures.overlap_matrix(sets)
    figures.plot_overlap_matrix(matrix, out / "neuron_overlap.png",
                                title=f"Jaccard overlap of top-{choices.k} neuron sets, {choices.run_set}")
    section.images.append("neuron_overlap.png")
    off_diagonal = matrix.to_numpy()[~np.eye(len(matrix), dtype=bool)]
    section.caption = (f"Top-{choices.k} neurons per attribute across all layers ({len(matrix)} attributes); mean "
                       f"Jaccard between attributes {off_diagonal.mean():.3f}; the diagonal (1) is masked."
                       if off_diagonal.size else "")
    return section


def overlap_from_pairs(pairs: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """[n_attributes, n_attributes] Jaccard matrix from `attribute_neuron_overlap` rows (a < b)."""
    matrix = pd.DataFrame(np.eye(len(attributes)), index=attributes, columns=attributes)
    for a, b, jaccard in pairs[["attribute_a", "attribute_b", "jaccard"]].itertuples(index=False):
        if a in matrix.index and b in matrix.index:
            matrix.loc[a, b] = matrix.loc[b, a] = jaccard
    return matrix


def _t_interval(values: pd.Series) -> pd.Series:
    """Mean and 95% t interval over the values (one per emotion): mean, ci_low, ci_high, n."""
    from scipy import stats

    n = int(values.count())
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return pd.Series({"accuracy": mean, "ci_low": mean - half, "ci_high": mean + half, "n_emotions": n})


def split_conditions(ablation: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, float | None]:
    """(attribute curves, controls, unablated accuracy) from `ablation_results` rows.

    Curves: `attribute, k, accuracy, ci_low, ci_high, n_emotions`, the mean over emotions (each
    emotion averaged over replicates) with its 95% t interval over emotions. Controls: `k, mean,
    sd, low, high, n_controls` over random sets (each the mean over emotions and replicates);
    low/high are the 2.5% and 97.5% quantiles of the sets."""
    condition = ablation["condition"].astype(str).str.lower()
    is_control = condition.str.contains("|".join(CONTROL_WORDS))
    is_unablated = condition.isin(UNABLATED_WORDS)
    targeted = ablation[~is_control & ~is_unablated]
    per_emotion = targeted.groupby(["attribute", "k", "emotion"], as_index=False)["accuracy"].mean()
    curves = per_emotion.groupby(["attribute", "k"])["accuracy"].apply(_t_interval).unstack().reset_index()
    if not len(curves):
        curves = pd.DataFrame(columns=["attribute", "k", "accuracy", "ci_low", "ci_high", "n_emotions"])
    # One control = one random set: a draw (per attribute where the controls are per attribute, as
    # in the study's release); its accuracy is the mean over emotions and replicates.
    controls = ablation[is_control].assign(control_of=ablation["attribute"].fillna("").astype(str))
    per_draw = controls.groupby(["k", "draw", "control_of"], as_index=False)["accuracy"].mean()
    grouped = per_draw.groupby("k")["accuracy"]
    bands = grouped.agg(["mean", "std", "count"]).reset_index()
    bands = bands.rename(columns={"std": "sd", "count": "n_controls"}).fillna({"sd": 0.0})
    bands["low"] = grouped.quantile(0.025).to_numpy() if len(bands) else []
    bands["high"] = grouped.quantile(0.975).to_numpy() if len(bands) else []
    unablated = float(ablation[is_unablated]["accuracy"].mean()) if is_unablated.any() else None
    return curves, bands, unablated


def ablation_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Ablation: accuracy vs k, with random controls")
    ablation = views.read("ablation_results", run_set=choices.run_set, study=choices.study)
    if ablation is None:
        section.notes.append(_not_computed("ablation_results", "Ablation results"))
        return section
    curves, bands, unablated = split_conditions(ablation)
    figures.plot_ablation_curves(curves, bands, out / "ablation_curves.png", unablated=unablated)
    section.images.append("ablation_curves.png")
    n_controls = int(bands["n_controls"].max()) if len(bands) else 0
    n_emotions = int(curves["n_emotions"].max()) if len(curves) else 0
    section.caption = (f"One panel per attribute, run set {html.escape(str(choices.run_set))}: accuracy with that "
                       f"attribute's top-k neurons ablated, mean over {n_emotions} emotions with its 95% t interval "
                       f"over emotions; grey band: 2.5-97.5% range over {n_controls} random neuron sets of the "
                       f"same size per k (the line is their mean); dashed: unablated. Every k of the sweep is "
                       f"shown; the other sections use k = {choices.k}.")
    return section


def importance_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Accuracy drop vs human attribute importance")
    ablation = views.read("ablation_results", run_set=choices.run_set, study=choices.study)
    importance = views.read("attribute_importance", study=choices.study)
    if ablation is None:
        section.notes.append(_not_computed("ablation_results", "Ablation results"))
    if importance is None:
        section.notes.append(_not_computed("attribute_importance", "Human attribute importance"))
    link = views.read("importance_link", run_set=choices.run_set, study=choices.study)
    if link is not None:
        section.tables.append(("Importance link per k (view importance_link)", link_table(link)))
    else:
        section.notes.append(_not_computed("importance_link", "The importance link"))
    if ablation is None or importance is None:
        return section
    if "method" in importance:
        methods = sorted(importance["method"].unique())
        importance = importance[importance["method"] == next((m for m in methods if "tau_b" in str(m)), methods[0])]
    curves, bands, unablated = split_conditions(ablation)
    k = choices.k
    if k not in set(curves["k"]):
        section.notes.append(_missing_k(views, choices, "ablation_results", "Ablation results")
                             or f"No attribute ablation at k = {k}.")
        return section
    at_k = curves[curves["k"] == k].set_index("attribute")["accuracy"]
    baseline = unablated if unablated is not None else float(bands.set_index("k")["mean"].get(k, np.nan))
    tau = importance.groupby("attribute")["tau"].mean()
    attributes = sorted(set(at_k.index) & set(tau.index))
    if len(attributes) < 3 or np.isnan(baseline):
        section.notes.append("Too few attributes with both an ablation result and a human importance to fit a line.")
        return section
    slope, _, r = figures.plot_drop_vs_importance(
        [tau[a] for a in attributes], [baseline - at_k[a] for a in attributes], attributes,
        out / "drop_vs_importance.png", k=k)
    section.images.append("drop_vs_importance.png")
    section.caption = (f"k = {k}; drop = {'unablated' if unablated is not None else 'control'} accuracy minus "
                       f"ablated accuracy, mean over emotions; fit slope {slope:.3f}, Pearson r = {r:.2f} "
                       f"across {len(attributes)} attributes (pooled over emotions; the test in the table is the "
                       f"per-emotion r, Fisher-z averaged).")
    return section


def link_table(link: pd.DataFrame) -> pd.DataFrame:
    """`importance_link` rows formatted: k, mean r with its 95% CI, t, p and n emotions."""
    return pd.DataFrame([{
        "k": int(r["k"]), "mean r (Fisher z) [95% CI]": f"{r['mean_r']:.3f} {_bracket(r.get('ci_low'), r.get('ci_high'))}",
        "t": f"{r['t']:.2f}" if pd.notna(r.get("t")) else "", "p": format_p(r.get("p")),
        "emotions": r.get("n_emotions", ""), "emotions with r > 0": r.get("n_emotions_positive", ""),
    } for r in link.sort_values("k").to_dict("records")])


def _first(frame: pd.DataFrame | None, **prefer: object) -> dict | None:
    """The first row of `frame` matching every `prefer` column it has, else its first row."""
    if frame is None or not len(frame):
        return None
    for column, value in prefer.items():
        if column in frame and (frame[column] == value).any():
            frame = frame[frame[column] == value]
    return frame.iloc[0].to_dict()


def key_numbers(views: Views, choices: Choices) -> dict[str, object]:
    """The figures a page opens with, each with its n, CI and the noise ceiling: model-vs-human RSA
    over all neurons and at the best layer, selective neurons, the importance link at the page's k."""
    numbers: dict[str, object] = {}
    rsa_rows = views.read("model_rsa", run_set=choices.run_set, study=choices.study)
    overall = rsa_rows[rsa_rows["layer"].isna()] if rsa_rows is not None and "layer" in rsa_rows else rsa_rows
    rsa = _first(overall, target="human", metric="correlation", method="tau_b")
    if rsa is not None:
        numbers["model_vs_human_tau"] = rsa.get("tau")
        numbers["model_vs_human_p_perm"] = rsa.get("p_perm")
        for key in ("n_perm", "n_pairs", "ci_emotions_low", "ci_emotions_high", "metric", "method"):
            if key in rsa:
                numbers[f"model_vs_human_{key}"] = rsa[key]
        ceiling = _first(views.read("noise_ceiling", study=choices.study), method=rsa.get("method"))
        if ceiling is not None:
            numbers["noise_ceiling_lower"], numbers["noise_ceiling_upper"] = ceiling["lower"], ceiling["upper"]
            numbers["noise_ceiling_raters"] = ceiling.get("n_raters")
        if rsa_rows is not None and "layer" in rsa_rows:
            layers = rsa_rows[rsa_rows["layer"].notna() & (rsa_rows["target"] == "human")
                              & (rsa_rows["metric"] == rsa.get("metric")) & (rsa_rows["method"] == rsa.get("method"))]
            if len(layers):
                best = layers.loc[layers["tau"].idxmax()]
                numbers.update({"best_layer": int(best["layer"]), "best_layer_tau": best["tau"],
                                "best_layer_ci_low": best.get("ci_emotions_low"),
                                "best_layer_ci_high": best.get("ci_emotions_high"),
                                "best_layer_p_perm": best.get("p_perm"), "n_layers": len(layers)})
    counts = views.read("searchlight_counts", run_set=choices.run_set, study=choices.study)
    if counts is not None and "n_selective" in counts:
        fdr, alpha = searchlight_mode(views, choices)
        panels, fdr = searchlight_panels(counts, fdr, alpha)
        numbers["selective_neurons"] = int(panels["selective"].to_numpy().sum())
        numbers["searchlight_fdr"] = fdr
        numbers["significant_neurons_by_attribute"] = {
            str(a): int(n) for a, n in panels["significant"].sum(axis=0).items()}
    link = views.read("importance_link", run_set=choices.run_set, study=choices.study)
    link = link[link["k"] == choices.k] if link is not None and choices.k is not None else None
    if link is not None and len(link):
        row = link.iloc[0].to_dict()
        numbers["importance_link_k"] = row.get("k")
        numbers["importance_link_mean_r"] = row.get("mean_r")
        numbers["importance_link_p"] = row.get("p")
        for key in ("ci_low", "ci_high", "n_emotions"):
            if key in row:
                numbers[f"importance_link_{key}"] = row[key]
    return {key: (value.item() if hasattr(value, "item") else value) for key, value in numbers.items()}


def number_lines(numbers: dict[str, object]) -> list[str]:
    """The key numbers as sentences (plain text): each with its n, CI and the noise ceiling."""
    get = numbers.get
    lines = []
    if get("model_vs_human_tau") is not None:
        n_perm = int(get("model_vs_human_n_perm") or 0)
        line = (f"model vs human RDM over all neurons: {get('model_vs_human_method', 'tau_b')} = "
                f"{get('model_vs_human_tau'):.3f}, {_ci(get('model_vs_human_ci_emotions_low'), get('model_vs_human_ci_emotions_high'))} "
                f"over emotions, permutation {format_p(get('model_vs_human_p_perm'), n_perm)}"
                + (f" (P = {n_perm:,})" if n_perm else "")
                + (f", n = {int(get('model_vs_human_n_pairs'))} emotion pairs" if get("model_vs_human_n_pairs") else ""))
        if get("noise_ceiling_lower") is not None:
            line += (f"; noise ceiling [{get('noise_ceiling_lower'):.3f}, {get('noise_ceiling_upper'):.3f}] "
                     f"({get('noise_ceiling_raters')} raters, bounds the mean tau with single raters)")
        else:
            line += "; no noise ceiling (fewer than two raters)"
        lines.append(line)
    if get("best_layer") is not None:
        n_perm = int(get("model_vs_human_n_perm") or 0)
        lines.append(f"most human-like layer: {get('best_layer')} of {get('n_layers')}, tau = {get('best_layer_tau'):.3f}, "
                     f"{_ci(get('best_layer_ci_low'), get('best_layer_ci_high'))}, permutation "
                     f"{format_p(get('best_layer_p_perm'), n_perm)}" + (f" (P = {n_perm:,})" if n_perm else "")
                     + " (chosen on the same data, so optimistic)")
    if get("selective_neurons") is not None:
        lines.append(f"selective neurons (significant for exactly one attribute, FDR {get('searchlight_fdr')}): "
                     f"{get('selective_neurons'):,}")
    if get("importance_link_mean_r") is not None:
        lines.append(f"accuracy drop vs human importance at k = {get('importance_link_k')}: mean r = "
                     f"{get('importance_link_mean_r'):.3f}, {_ci(get('importance_link_ci_low'), get('importance_link_ci_high'))}, "
                     f"{format_p(get('importance_link_p'))}"
                     + (f", n = {get('importance_link_n_emotions')} emotions" if get("importance_link_n_emotions") else ""))
    return lines


SECTIONS: list[Callable[[Views, Choices, Path], Section]] = [
    layers_section, models_section, rdm_section, mds_section, searchlight_section, overlap_section,
    ablation_section, importance_section,
]


def build_report(lake: Lake, out_dir: str | Path, *, study: str | None = None, run_set: str | None = None,
                 k: int | None = None, seed: int = 0) -> Path:
    """Write the report into `out_dir` (created if needed) and return the path of `index.html`.

    Reads the lake only (never writes to it). `study`, `run_set` and `k` pick what to show when the
    lake holds several (defaults: see `choose`); `seed` seeds the MDS and is recorded in the page.
    """
    with connect(lake.require()) as con:
        return write_report(con, out_dir, source=str(lake.root), study=study, run_set=run_set, k=k, seed=seed)


def write_report(con, out_dir: str | Path, *, source: str, study: str | None = None, run_set: str | None = None,
                 k: int | None = None, seed: int = 0) -> Path:
    """`build_report` on any DuckDB connection that has the views (`source` names it in the page)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = Views(con)
    choices = choose(views, study, run_set, k, seed)
    sections = [make(views, choices, out) for make in track(SECTIONS, "report", unit="figures")]
    numbers = key_numbers(views, choices)
    page = out / "index.html"
    page.write_text(render_html(sections, choices, source, numbers), encoding="utf-8")
    (out / "report.json").write_text(json.dumps({
        "page": str(page), "study": choices.study, "run_set": choices.run_set, "k": choices.k,
        "seed": choices.seed, "code_version": code_version(), "key_numbers": numbers,
        "sections": {s.title: {"images": s.images, "tables": [t for t, _ in s.tables], "notes": s.notes}
                     for s in sections},
    }, indent=2, default=str))
    return page


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; padding: 0 1em; color: #222;
       box-sizing: border-box; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures img { flex: 0 1 auto; min-width: 0; max-width: 100%; height: auto; border: 1px solid #eee; }
.note { background: #fff6d6; border-left: 4px solid #e0b400; padding: .5em 1em; overflow-wrap: anywhere; }
.meta { color: #666; font-size: .9em; overflow-wrap: anywhere; }
.numbers li { margin: .2em 0; }
table { border-collapse: collapse; font-size: .8em; margin: .5em 0; max-width: 100%; table-layout: auto; }
td, th { border: 1px solid #ddd; padding: .2em .4em; text-align: right; overflow-wrap: break-word; }
th { background: #f6f6f6; }
code { background: #f3f3f3; padding: 0 .2em; overflow-wrap: anywhere; }
p { overflow-wrap: anywhere; }
"""

# Once every image has loaded, marks the page for a browser test (a person never sees it): how many
# images loaded, and every element whose box reaches past the viewport's right edge or whose content
# is wider than its box.
PAGE_CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (img) { return img.complete && img.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + images.length);
  var width = document.documentElement.clientWidth, wide = [];
  Array.prototype.slice.call(document.body.querySelectorAll('*')).forEach(function (el) {
    if (el.tagName === 'SCRIPT' || el.tagName === 'STYLE') { return; }
    var box = el.getBoundingClientRect();
    if (box.right > width + 1 || el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
      wide.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ':' +
                Math.round(box.right) + '/' + width);
    }
  });
  document.body.setAttribute('data-overflow', wide.length ? wide.join(' ') : 'none');
  document.body.setAttribute('data-page-width', width + 'x' + document.documentElement.scrollWidth);
});
"""


TABLE_ROWS = 30


def _table_html(frame: pd.DataFrame, limit: int = TABLE_ROWS) -> str:
    shown = frame.head(limit)
    return shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, escape=True)


def _note_html(note: str) -> str:
    # `cmd` spans become <code>: notes are plain text written by this module.
    parts = html.escape(note).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _numbers_html(numbers: dict[str, object]) -> str:
    lines = number_lines(numbers)
    if not lines:
        return ""
    return '<ul class="numbers">' + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def render_html(sections: list[Section], choices: Choices, source: str, numbers: dict[str, object]) -> str:
    body = []
    for section in sections:
        body.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.images:
            body.append('<div class="figures">' + "".join(
                f'<img src="{html.escape(image)}" alt="{html.escape(section.title)}">' for image in section.images
            ) + "</div>")
        if section.caption:
            body.append(f"<p>{section.caption}</p>")
        for note in section.notes:
            body.append(f'<p class="note">{_note_html(note)}</p>')
        for title, frame in section.tables:
            body.append(f"<h3>{html.escape(title)}</h3>{_table_html(frame)}")
            if len(frame) > TABLE_ROWS:
                body.append(f'<p class="meta">first {TABLE_ROWS} of {len(frame)} rows; the view has them all.</p>')
        body.append("</section>")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    k = "none (no neuron sets)" if choices.k is None else choices.k
    meta = (f"lake {html.escape(source)} · study {html.escape(str(choices.study))} · run set "
            f"{html.escape(str(choices.run_set))} · k {k} · MDS seed {choices.seed} · "
            f"emolake {html.escape(code_version())} · {created}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>emolake report</title>
<style>{STYLE}</style></head>
<body>
<h1>emolake report: emotion-concept knowledge in a language model</h1>
<p class="meta">{meta}</p>
{_numbers_html(numbers)}
{''.join(body)}
<script>{PAGE_CHECK_SCRIPT}</script>
</body></html>
"""
