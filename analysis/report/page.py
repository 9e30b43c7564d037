"""The HTML report: one page of the study's figures, drawn from the warehouse views.

`build_report(lake, out_dir)` reads `human_rdm`, `model_rdm`, `emotion_attributes`,
`searchlight_counts`, `attribute_neurons`, `ablation_results`, `attribute_importance`,
`model_rsa` and `importance_link`, writes one PNG per figure (`analysis.report.figures`), `index.html`
(self-contained except for the PNGs beside it) and `report.json` (what was chosen and drawn). A
section whose view is missing or empty says which command computes it instead of failing.
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

from ingest.emotions import GOEMOTIONS_27
from warehouse.console import track
from warehouse.database import connect
from warehouse.lake import Lake
from warehouse.version import code_version

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
        return bool(self.images)


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

    def values(self, view: str, column: str) -> list:
        """Distinct non-null values of one column of `view` (empty where the view or column is missing)."""
        if column not in self.columns(view):
            return []
        rows = self.con.execute(f'SELECT DISTINCT "{column}" FROM "{view}" WHERE "{column}" IS NOT NULL').fetchall()
        return sorted(r[0] for r in rows)


def _not_computed(view: str, what: str) -> str:
    return f"{what} not computed yet: run `{HOW_TO_COMPUTE[view]}` (view `{view}` is missing or empty)."


def choose(views: Views, study: str | None, run_set: str | None, k: int | None, seed: int) -> Choices:
    """Defaults: the study `li2024` if present (else the first), the first run set with stored
    analyses (else with neuron sets, ablations or runs), and the largest k of the neuron sets."""
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
        ks = views.values("attribute_neurons", "k") or views.values("ablation_results", "k")
        k = int(ks[-1]) if ks else None
    return Choices(study, run_set, k, seed)


def _emotions(*frames: pd.DataFrame) -> list[str]:
    """The 27 emotions present in every frame's pairs (neutral and others outside the 27 dropped)."""
    present = set(GOEMOTIONS_27)
    for frame in frames:
        present &= set(frame["emotion_a"]) | set(frame["emotion_b"])
    return [e for e in GOEMOTIONS_27 if e in present]


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
    metric = None
    if "metric" in model:
        metrics = sorted(model["metric"].unique())
        metric = next((m for m in metrics if "pearson" in str(m) or "correlation" in str(m)), metrics[0])
        model = model[model["metric"] == metric]
    emotions = _emotions(human, model)
    shown = figures.plot_rdm_pair(
        figures.pairs_to_square(model, emotions), figures.pairs_to_square(human, emotions), emotions,
        out / "rdm_model_vs_human.png",
        model_title=f"model RDM: {choices.run_set}" + (f" ({metric})" if metric else ""),
        human_title=f"human RDM: {choices.study}",
    )
    section.images.append("rdm_model_vs_human.png")
    section.caption = (f"{len(emotions)} emotions, both matrices in the order of average-linkage hierarchical "
                       f"clustering of the human RDM (first: {html.escape(shown[0])}, last: {html.escape(shown[-1])}).")
    rsa = views.read("model_rsa", run_set=choices.run_set, study=choices.study)
    if rsa is not None and "target" in rsa:
        rsa = rsa[rsa["target"].isin(["human", "human_raters"])]
    if rsa is not None and len(rsa):
        section.tables.append(("Model vs human RSA (view model_rsa)", rsa))
    return section


def mds_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("MDS map of the emotions")
    human = views.read("human_rdm", study=choices.study)
    if human is None:
        section.notes.append(_not_computed("human_rdm", "The human RDM"))
        return section
    emotions = _emotions(human)
    attributes = views.read("emotion_attributes", study=choices.study)
    colour = None
    if attributes is not None and "valence" in set(attributes["attribute"]):
        valence = attributes[attributes["attribute"] == "valence"].set_index("emotion")["value"]
        colour = [float(valence.get(e, np.nan)) for e in emotions]
    figures.plot_mds(figures.pairs_to_square(human, emotions), emotions, out / "mds_human.png", choices.seed,
                   colour=colour, colour_label="valence",
                   title=f"Human similarity, {choices.study} (metric MDS, seed {choices.seed})")
    section.images.append("mds_human.png")
    model = views.read("model_rdm", run_set=choices.run_set)
    if model is not None:
        if "metric" in model:
            model = model[model["metric"] == sorted(model["metric"].unique())[0]]
        model_emotions = _emotions(model)
        figures.plot_mds(figures.pairs_to_square(model, model_emotions), model_emotions, out / "mds_model.png",
                       choices.seed, title=f"Model RDM, {choices.run_set} (metric MDS, seed {choices.seed})")
        section.images.append("mds_model.png")
    section.caption = "Emotions close on the map were judged (or represented) as similar; colour: valence rating."
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


def overlap_section(views: Views, choices: Choices, out: Path) -> Section:
    section = Section("Overlap of attribute neuron sets")
    neurons = views.read("attribute_neurons", run_set=choices.run_set, study=choices.study, scope="global",
                         k=choices.k)
    if neurons is None:
        section.notes.append(_not_computed("attribute_neurons", "Attribute neuron sets"))
        return section
    stored = views.read("attribute_neuron_overlap", run_set=choices.run_set, study=choices.study, scope="global",
                        k=choices.k)
    if stored is not None:  # the analysis' own overlap view, where it exists
        matrix = overlap_from_pairs(stored, sorted(neurons["attribute"].unique()))
    else:
        sets = {attribute: set(frame["neuron"]) for attribute, frame in neurons.groupby("attribute", sort=True)}
        matrix = figures.overlap_matrix(sets)
    figures.plot_overlap_matrix(matrix, out / "neuron_overlap.png",
                              title=f"Jaccard overlap of top-{choices.k} neuron sets")
    section.images.append("neuron_overlap.png")
    off_diagonal = matrix.to_numpy()[~np.eye(len(matrix), dtype=bool)]
    section.caption = (f"Top-{choices.k} neurons per attribute across all layers; mean Jaccard between "
                       f"attributes {off_diagonal.mean():.3f}." if off_diagonal.size else "")
    return section


def overlap_from_pairs(pairs: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """[n_attributes, n_attributes] Jaccard matrix from `attribute_neuron_overlap` rows (a < b)."""
    matrix = pd.DataFrame(np.eye(len(attributes)), index=attributes, columns=attributes)
    for a, b, jaccard in pairs[["attribute_a", "attribute_b", "jaccard"]].itertuples(index=False):
        if a in matrix.index and b in matrix.index:
            matrix.loc[a, b] = matrix.loc[b, a] = jaccard
    return matrix


def split_conditions(ablation: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, float | None]:
    """(attribute curves `attribute, k, accuracy`, controls `k, mean, sd`, unablated accuracy) from
    `ablation_results` rows; accuracies are means over emotions, the control sd is over draws."""
    condition = ablation["condition"].astype(str).str.lower()
    is_control = condition.str.contains("|".join(CONTROL_WORDS))
    is_unablated = condition.isin(UNABLATED_WORDS)
    targeted = ablation[~is_control & ~is_unablated]
    curves = targeted.groupby(["attribute", "k"], as_index=False)["accuracy"].mean()
    # One control = one random set: a draw (per attribute where the controls are per attribute, as
    # in the study's release); its accuracy is the mean over emotions and replicates.
    controls = ablation[is_control].assign(control_of=ablation["attribute"].fillna("").astype(str))
    per_draw = controls.groupby(["k", "draw", "control_of"], as_index=False)["accuracy"].mean()
    bands = per_draw.groupby("k")["accuracy"].agg(["mean", "std", "count"]).reset_index()
    bands = bands.rename(columns={"std": "sd", "count": "n_controls"}).fillna({"sd": 0.0})
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
    section.caption = (f"Mean accuracy over emotions; grey band: mean ± sd over {n_controls} random neuron sets "
                       f"of the same size per k.")
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
        section.tables.append(("Importance link per k (view importance_link)", link))
    else:
        section.notes.append(_not_computed("importance_link", "The importance link"))
    if ablation is None or importance is None:
        return section
    if "method" in importance:
        methods = sorted(importance["method"].unique())
        importance = importance[importance["method"] == next((m for m in methods if "tau_b" in str(m)), methods[0])]
    curves, bands, unablated = split_conditions(ablation)
    k = choices.k if choices.k in set(curves["k"]) else (int(curves["k"].max()) if len(curves) else None)
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
                       f"across {len(attributes)} attributes.")
    return section


def _first(frame: pd.DataFrame | None, **prefer: object) -> dict | None:
    """The first row of `frame` matching every `prefer` column it has, else its first row."""
    if frame is None or not len(frame):
        return None
    for column, value in prefer.items():
        if column in frame and (frame[column] == value).any():
            frame = frame[frame[column] == value]
    return frame.iloc[0].to_dict()


def key_numbers(views: Views, choices: Choices) -> dict[str, object]:
    """The handful of figures a run ends with: model-vs-human RSA, selective neurons, importance link."""
    numbers: dict[str, object] = {}
    rsa = _first(views.read("model_rsa", run_set=choices.run_set, study=choices.study),
                 target="human", metric="correlation", method="tau_b")
    if rsa is not None:
        numbers["model_vs_human_tau"] = rsa.get("tau")
        numbers["model_vs_human_p_perm"] = rsa.get("p_perm")
    counts = views.read("searchlight_counts", run_set=choices.run_set, study=choices.study)
    if counts is not None and "n_selective" in counts:
        panels, fdr = searchlight_panels(counts, *searchlight_mode(views, choices))
        numbers["selective_neurons"] = int(panels["selective"].to_numpy().sum())
        numbers["significant_neurons_by_attribute"] = {
            str(a): int(n) for a, n in panels["significant"].sum(axis=0).items()}
    link = _first(views.read("importance_link", run_set=choices.run_set, study=choices.study), k=choices.k)
    if link is not None:
        numbers["importance_link_k"] = link.get("k")
        numbers["importance_link_mean_r"] = link.get("mean_r")
        numbers["importance_link_p"] = link.get("p")
    return {key: (value.item() if hasattr(value, "item") else value) for key, value in numbers.items()}


SECTIONS: list[Callable[[Views, Choices, Path], Section]] = [
    rdm_section, mds_section, searchlight_section, overlap_section, ablation_section, importance_section,
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
        "sections": {s.title: {"images": s.images, "notes": s.notes} for s in sections},
    }, indent=2, default=str))
    return page


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures img { flex: 0 1 auto; min-width: 0; max-width: 100%; height: auto; border: 1px solid #eee; }
.note { background: #fff6d6; border-left: 4px solid #e0b400; padding: .5em 1em; }
.meta { color: #666; font-size: .9em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: .2em .5em; text-align: right; }
code { background: #f3f3f3; padding: 0 .2em; }
"""

# Marks the page once every image has loaded (a browser test reads it; a person never sees it).
IMAGES_LOADED_SCRIPT = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (img) { return img.complete && img.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + images.length);
});
"""


def _table_html(frame: pd.DataFrame, limit: int = 30) -> str:
    shown = frame.head(limit)
    return shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, escape=True)


def _note_html(note: str) -> str:
    # `cmd` spans become <code>: notes are plain text written by this module.
    parts = html.escape(note).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _numbers_html(numbers: dict[str, object]) -> str:
    if not numbers:
        return ""
    items = "".join(
        f"<li>{html.escape(key.replace('_', ' '))}: "
        f"{html.escape(f'{value:.4g}' if isinstance(value, float) else str(value))}</li>"
        for key, value in numbers.items() if not isinstance(value, dict))
    return f'<ul class="numbers">{items}</ul>'


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
        body.append("</section>")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = (f"lake {html.escape(source)} · study {html.escape(str(choices.study))} · run set "
            f"{html.escape(str(choices.run_set))} · k {choices.k} · MDS seed {choices.seed} · "
            f"emolake {html.escape(code_version())} · {created}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>emolake report</title>
<style>{STYLE}</style></head>
<body>
<h1>emolake report: emotion-concept knowledge in a language model</h1>
<p class="meta">{meta}</p>
{_numbers_html(numbers)}
{''.join(body)}
<script>{IMAGES_LOADED_SCRIPT}</script>
</body></html>
"""
