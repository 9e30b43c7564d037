"""Reproduce the study's human and neuron results from its release alone, into docs/REPRODUCTION.md.

    python -m emolake.analysis.reproduce --release ../shared/data/model_emotion --out docs/REPRODUCTION.md

The release goes through the same importers (`ingest model-emotion`, plus the released
activations), analyses (`appraisal`, `rsa`, `searchlight`, `neurons`) and views as any other
data, in a temporary lake (or `--lake DIR` to keep it). The report is a list of sections, each a
function of the filled lake: `SECTIONS` below. Other analyses add theirs there (the ablation
branch appends its masking section; see `SECTION_HOOK`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


from emolake.warehouse.database import query
from emolake.warehouse.lake import Lake
from emolake.warehouse.version import code_version

STUDY = "li2024"  # raw human data from the release + the published 27 x 14 attribute table
AUTHORS_STUDY = "li2024-preprocessed"  # the authors' own per-person 351-pair distances (61 people)
RUN_SET = "li2024-roberta"  # the 12 released seeds
K_VALUES = (500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000)  # the release's masking sizes, plus 500 and 1000
SECTION_HOOK = "<!-- reproduction sections end: later analyses (masking) append theirs after this line -->"


@dataclass
class Context:
    lake: Lake
    release: Path
    seed: int
    n_perm: int
    n_boot: int
    searchlight_perm: int = 500  # permutations of the calibrated searchlight (0: not computed)
    summaries: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


def _q(ctx: Context, sql: str) -> list[dict]:
    return query(ctx.lake, sql).to_pylist()


def _table(rows: list[dict], columns: list[str] | None = None, digits: int = 4) -> str:
    if not rows:
        return "_(no rows)_\n"
    columns = columns or list(rows[0])

    def cell(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.2e}" if (v != 0 and abs(v) < 10 ** -digits) else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# --- filling the lake ------------------------------------------------------------------------

def fill(ctx: Context) -> None:
    """Ingest the release and run every analysis, timing each step."""
    from emolake.ingest.release import ingest_release

    from .appraisal import run_appraisal
    from .neurons import run_neurons
    from .rsa import run_rsa
    from .searchlight import run_searchlight

    def step(name: str, fn: Callable[[], dict]) -> None:
        start = time.perf_counter()
        ctx.summaries[name] = fn()
        ctx.seconds[name] = time.perf_counter() - start

    ctx.lake.init()
    step("ingest", lambda: ingest_release(ctx.lake, ctx.release))
    if not query(ctx.lake, f"SELECT run_id FROM runs WHERE run_set = '{RUN_SET}'").num_rows:
        # until `ingest model-emotion` loads the released activations itself
        from emolake.ingest.model_emotion_activations import load_released_activations

        def activations() -> dict:
            summary: dict = {}
            load_released_activations(ctx.release, ctx.lake, summary)
            return summary
        step("activations", activations)
    step("appraisal", lambda: run_appraisal(ctx.lake, STUDY, seed=ctx.seed))
    step("rsa", lambda: run_rsa(ctx.lake, STUDY, RUN_SET, n_perm=ctx.n_perm, n_boot=ctx.n_boot, seed=ctx.seed,
                                progress=False))
    step("rsa_authors", lambda: run_rsa(ctx.lake, AUTHORS_STUDY, None, n_perm=ctx.n_perm, n_boot=ctx.n_boot,
                                        seed=ctx.seed, progress=False))
    step("searchlight", lambda: run_searchlight(ctx.lake, RUN_SET, STUDY, fdr="study", alpha=0.05, progress=False,
                                                inference="asymptotic"))
    step("searchlight_variants", lambda: searchlight_variants(ctx))
    step("neurons", lambda: run_neurons(ctx.lake, RUN_SET, STUDY, list(K_VALUES), "global"))
    step("importance_link_drops", lambda: importance_link_drops(ctx))


def _counts(significant) -> dict:
    """Significant tests, significant neurons and selective neurons of a [n_neurons, n_attributes] mask."""
    return {"tests": int(significant.sum()), "neurons": int(significant.any(axis=1).sum()),
            "selective": int((significant.sum(axis=1) == 1).sum())}


def released_attribute_rdms(release: Path, emotions: list[str], attributes: list[str]):
    """The study's own attribute RDMs, `dist_emotional_PCs.csv` as released (|difference| of the
    unscaled scores as R computed and wrote them, 15 digits), reordered from R's lower.tri order over
    `reordered_emotions.csv` to ours: [n_pairs, n_attributes]."""
    import numpy as np

    from emolake.ingest.emotions import normalise_emotion

    from .rdm import pair_indices

    root = release / "Data/preprocessed"
    order = [normalise_emotion(w) for w in (root / "reordered_emotions.csv").read_text().split() if w.strip()]
    path = root / "emotional_features/dist_emotional_PCs.csv"
    names = path.read_text().splitlines()[0].strip().split(",")
    values = np.loadtxt(path, delimiter=",", skiprows=1)  # [351, 14]
    n = len(order)
    position = {frozenset((order[i], order[j])): row
                for row, (j, i) in enumerate((j, i) for j in range(n) for i in range(j + 1, n))}
    a, b = pair_indices(len(emotions))
    take = [position[frozenset((emotions[x], emotions[y]))] for x, y in zip(a, b)]
    return values[take][:, [names.index(attribute) for attribute in attributes]]


def searchlight_variants(ctx: Context) -> dict:
    """The searchlight's counts at q < .01 three ways: the study's procedure on its own attribute
    RDMs (the released distance file), the same on tie-exact RDMs, and the calibrated default
    (permutation p, Benjamini-Hochberg). Computed in memory on the lake's inputs."""
    import numpy as np

    from .fdr import bh_monotone, bh_study
    from .lake_inputs import attribute_values, emotion_profiles, shared_emotions
    from .rdm import feature_rdms, rdm
    from .searchlight import searchlight_tau

    profiles, attributes = emotion_profiles(ctx.lake, RUN_SET), attribute_values(ctx.lake, STUDY)
    emotions = shared_emotions(profiles.emotions, attributes.emotions)
    profiles, attributes = profiles.select(emotions), attributes.select(emotions)
    neuron_rdms = feature_rdms(profiles.values)  # [351, 36864]
    tie_exact = rdm(attributes.values, "absolute")  # [351, 14]
    released = released_attribute_rdms(ctx.release, emotions, attributes.attributes)
    k = attributes.attributes.index("happy-face")
    i, j = np.triu_indices(len(emotions), 1)
    plain = np.abs(attributes.values[i, k] - attributes.values[j, k])  # [351] without tie_exact
    out = {"distinct_happy_face": {"released": len(set(released[:, k])), "tie_exact": len(set(tie_exact[:, k])),
                                   "rescaled_plain": len(set(plain))}}
    study_file = searchlight_tau(neuron_rdms, released, "asymptotic")
    out["study_rdm_file"] = _counts(bh_study(study_file.p) < 0.01)
    exact = searchlight_tau(neuron_rdms, tie_exact, "asymptotic")
    out["tie_exact"] = _counts(bh_study(exact.p) < 0.01)
    out["tie_exact_bh"] = _counts(bh_monotone(exact.p) < 0.01)
    out["fraction_p_05"] = {"asymptotic": float(np.nanmean(exact.p < 0.05))}
    out["n_perm"] = ctx.searchlight_perm
    if ctx.searchlight_perm:
        start = time.perf_counter()
        calibrated = searchlight_tau(neuron_rdms, tie_exact, "permutation", ctx.searchlight_perm, ctx.seed)
        out["permutation_seconds"] = time.perf_counter() - start
        out["permutation"] = _counts(calibrated.q_monotone < 0.01)
        out["permutation_study_fdr"] = _counts(calibrated.q_study < 0.01)
        out["fraction_p_05"]["permutation"] = float(np.nanmean(calibrated.p < 0.05))
    return out


def importance_link_drops(ctx: Context) -> dict:
    """The importance link at every k with both drop definitions, with the human importance of the
    authors' preprocessed judgments (the study's) and of our raw-log import; the last one computed
    (raw logs, the study's vs-control) stays stored."""
    from .ablation_stats import refresh_ablation_statistics

    out = {}
    for study in (AUTHORS_STUDY, STUDY):
        for drop in ("vs-unablated", "vs-control"):
            refresh_ablation_statistics(ctx.lake, RUN_SET, study, drop=drop)
            out[f"{study} {drop}"] = {r["k"]: r for r in _q(ctx, f"""
                SELECT k, mean_r, t, p, n_emotions_positive, n_emotions, n_emotions_r_one, n_emotions_r_nan
                FROM importance_link WHERE run_set = '{RUN_SET}' AND study = '{study}'""")}
    return out


# --- sections --------------------------------------------------------------------------------

def header(ctx: Context) -> str:
    ingest = ctx.summaries.get("ingest", {})
    return f"""# Reproduction of Li et al. (iScience 2024, arXiv 2302.09582) from its release

Generated by `python -m emolake.analysis.reproduce --release {ctx.release} --out docs/REPRODUCTION.md`
on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, code version `{code_version()}`; seed {ctx.seed},
{ctx.n_perm:,} permutations, {ctx.n_boot:,} bootstrap resamples. Everything below comes from the
release alone, through the project's own importers, analyses and warehouse views (the SQL shown
can be run on a lake filled the same way).

Published figures: the paper itself cannot be fetched from this machine, so its numbers are not
quoted here; where this report can check the study's published *data* (the 27 x 14 attribute
table, the authors' preprocessed distances), it does, and it says where our figures differ from
what the study's procedure would give and why.

Inputs after the study's exclusion rules: {ingest.get('affective_raters', '?')} affective raters
({ingest.get('affective_excluded', '?')} excluded), {ingest.get('physical_raters', '?')} physical
({ingest.get('physical_excluded', '?')} excluded), {ingest.get('appraisal_raters', '?')} appraisal
({ingest.get('appraisal_excluded', '?')} excluded; {ingest.get('appraisal_not_applicable', '?')} not-applicable
answers imputed as 5), {ingest.get('similarity_raters', '?')} similarity-judgment logs kept
({ingest.get('similarity_excluded', '?')} excluded); the authors' preprocessed file has
{ingest.get('preprocessed_ind_raters', '?')} people.
"""


def summary_section(ctx: Context) -> str:
    """The study's figures reproduced with its procedure, beside the corrected variants."""
    v = ctx.summaries["searchlight_variants"]
    drops = ctx.summaries["importance_link_drops"]
    rows = []
    for label, key in (("significant tests (q < .01)", "tests"), ("significant neurons", "neurons"),
                       ("selective neurons", "selective")):
        rows.append({"figure": f"searchlight: {label}", "study's procedure": f"{v['study_rdm_file'][key]:,}",
                     "tie-exact RDMs": f"{v['tie_exact'][key]:,}",
                     "calibrated p (searchlight) / vs-unablated drop (link)": f"{v['permutation'][key]:,}" if "permutation" in v else "not run"})
    for k in (4000, 1500):
        study, other = drops[f"{AUTHORS_STUDY} vs-control"].get(k), drops[f"{AUTHORS_STUDY} vs-unablated"].get(k)
        if study and other:
            for label, key, fmt in (("mean r", "mean_r", "{:.3f}"), ("t", "t", "{:.1f}"),
                                    ("emotions with r > 0", "n_emotions_positive", "{}")):
                rows.append({"figure": f"importance link k = {k:,}: {label}",
                             "study's procedure": fmt.format(study[key]),
                             "tie-exact RDMs": "", "calibrated p (searchlight) / vs-unablated drop (link)": fmt.format(other[key])})
    d = v["distinct_happy_face"]
    return f"""## 0. The study's figures and the corrected variants

`study's procedure`: what the study did, reproduced exactly: Kendall tau-b of each neuron RDM
with the study's own attribute RDMs (`dist_emotional_PCs.csv` as released), asymptotic one-sided
p, the study's q = p*N/rank(p) (R's average ranks); importance link with the study's drop
(random-control accuracy of each attribute's own random set - attribute-ablated accuracy,
`--drop vs-control`, the default) and the human importance of the authors' preprocessed judgments
({AUTHORS_STUDY}). The corrected variants change one thing at a time.

{_table(rows)}
Why they differ, one sentence each:

- **Tie-exact RDMs** ({v['tie_exact']['tests']:,} vs {v['study_rdm_file']['tests']:,} tests): distances equal
  in exact arithmetic are equal floats here (happy-face: {d['tie_exact']} distinct distances; the released
  file, written from R's floating point, has {d['released']}, and |difference| of the 0-1 rescaled table in plain
  floating point {d['rescaled_plain']}), so tau-b counts ties as ties.
{_calibrated_sentence(ctx, v)}
- **Drop vs the unablated model**: the study drew one random set per attribute and k, so its drop
  carries each attribute's own random-draw luck, while unablated - ablated does not; with many
  random controls shared by all attributes (`ablate --controls R`) the two differ by a constant
  per emotion and give the same r. (With our import of the raw logs, {STUDY}, k = 4,000 gives
  mean r {_link(drops, STUDY, 'vs-control', 4000)} with the study's drop and {_link(drops, STUDY, 'vs-unablated', 4000)} vs the unablated model.)

"""


def _calibrated_sentence(ctx: Context, v: dict) -> str:
    why = ("the asymptotic p treats the 351 pairs of 27 emotions as independent, which they are not (with it "
           f"{100 * v['fraction_p_05']['asymptotic']:.1f}% of all tests have p < .05")
    if "permutation" not in v:
        return (f"- **Calibrated searchlight** (not run for this report: `--searchlight-permutations 0`): {why}); "
                "`emolake searchlight` (default `--inference permutation`, 500 permutations) gives the calibrated "
                "counts, and `python -m emolake.analysis.reproduce` with its default fills this column (70 minutes measured "
                "on the shared 2-core machine this report was made on, at load 15; see docs/BENCHMARKS.md).")
    return (f"- **Calibrated searchlight** ({v['permutation']['tests']:,} tests, {v['permutation']['neurons']:,} neurons): "
            f"{why}, with the permutation p {100 * v['fraction_p_05']['permutation']:.1f}%); the default p comes from each "
            f"test's permutation variance and skewness over {v['n_perm']} seeded emotion-label permutations (seed "
            f"{ctx.seed}, Pearson type III), with Benjamini-Hochberg q ({v['permutation_study_fdr']['tests']:,} tests with "
            f"the study's q instead; {v['permutation_seconds']:.0f} s here).")


def _link(drops: dict, study: str, drop: str, k: int) -> str:
    row = drops.get(f"{study} {drop}", {}).get(k)
    return f"{row['mean_r']:.3f} (t = {row['t']:.1f}, {row['n_emotions_positive']}/{row['n_emotions']} positive)" \
        if row else "-"


def appraisal_section(ctx: Context) -> str:
    s = ctx.summaries["appraisal"]
    rows = [{"attribute": k, "r with published": v} for k, v in s["r_with_published"].items()]
    return f"""## 1. The attribute table from raw ratings

PCA of the {s['items']} appraisal items over {s['raters']} raters (not applicable imputed as 5),
parallel analysis keeps **{s['components_by_parallel_analysis']} components** (observed eigenvalues
{s['eigenvalues'][:7]} vs random {s['random_eigenvalues'][:7]}), varimax rotation, regression
scores averaged per emotion, matched to the published names (Hungarian assignment on |r|, sign
flips). The eight rated attributes are per-emotion means of the kept raters. Pearson r across
the 27 emotions with the published table (`score_emotional_PCs.csv`, rescaled 0-1, which r ignores):

{_table(rows)}
The published table is reproduced (r = 1 up to rounding): the ingest's exclusion rules and the
study's appraisal procedure are the ones the authors used. `SELECT * FROM appraisal_components`.
"""


def human_section(ctx: Context) -> str:
    rows = _q(ctx, f"""
        SELECT i.attribute, i.tau AS tau_raw, i.p AS p_raw, i.p_perm AS p_perm_raw,
               i.ci_raters_low AS ci_low, i.ci_raters_high AS ci_high, a.tau AS tau_authors, a.p AS p_authors
        FROM attribute_importance i
        LEFT JOIN attribute_importance a ON a.study = '{AUTHORS_STUDY}' AND a.attribute = i.attribute AND a.method = i.method
        WHERE i.study = '{STUDY}' ORDER BY i.tau DESC""")
    ceiling = _q(ctx, "SELECT study, method, lower, upper, n_raters FROM noise_ceiling ORDER BY study")
    agree = _q(ctx, f"""
        SELECT corr(a.distance, b.distance) AS r FROM human_rdm a JOIN human_rdm b
        ON a.emotion_a = b.emotion_a AND a.emotion_b = b.emotion_b
        WHERE a.study = '{STUDY}' AND b.study = '{AUTHORS_STUDY}'""")[0]["r"]
    imputed = _q(ctx, f"""
        SELECT max(abs(a.distance - b.distance)) AS d FROM human_rdm a JOIN human_rdm b
        ON a.emotion_a = b.emotion_a AND a.emotion_b = b.emotion_b
        WHERE a.study = '{AUTHORS_STUDY}' AND b.study = '{AUTHORS_STUDY}-avg'""")[0]["d"] or 0.0
    return f"""## 2. Human attribute importance and the noise ceiling

Kendall tau-b between the human similarity RDM (mean over raters of 10 - rating, 351 pairs) and
each attribute RDM (|difference| of the per-emotion values of the published table); p: one-sided
normal approximation with the tie-corrected variance; p_perm: {ctx.n_perm:,} permutations of the
emotion labels; CI: 95% BCa bootstrap over raters (bias-corrected: resampled raters' mean RDMs are
noisier than the real one, so the plain percentile interval sits low). `raw` = our import of the PsychoPy logs
({STUDY}); `authors` = their preprocessed per-person distances ({AUTHORS_STUDY}).
`SELECT * FROM attribute_importance`.

{_table(rows)}
The two human RDMs correlate at r = {agree:.4f}. They differ only because the raw logs give
{ctx.summaries['ingest'].get('similarity_raters', '?')} people after the exclusion rules and the authors' file
{ctx.summaries['ingest'].get('preprocessed_ind_raters', '?')}: two extra raters' logs. The authors' imputation of
missing pairs with the pair mean cannot explain it: imputing a pair's mean leaves that mean unchanged
(the mean of their per-person file equals their averaged file to {imputed:.0e}).

Noise ceiling (Nili et al. 2014, in tau-b: each rater's RDM against the mean of the others
(lower) and of everyone (upper)). `SELECT * FROM noise_ceiling`.

{_table(ceiling)}"""


def rsa_section(ctx: Context) -> str:
    rows = _q(ctx, f"""SELECT target, tau, p, p_perm, ci_emotions_low, ci_emotions_high, ci_raters_low, ci_raters_high,
                           ceiling_lower, ceiling_upper
                       FROM model_rsa WHERE run_set = '{RUN_SET}' AND study = '{STUDY}'
                       ORDER BY target NOT IN ('human', 'human_raters'), tau DESC""")
    parts = _q(ctx, f"""SELECT term, r2, unique_r2, beta FROM model_variance_partition
                        WHERE run_set = '{RUN_SET}' AND study = '{STUDY}' ORDER BY term <> 'all', term <> 'shared', unique_r2 DESC""")
    return f"""## 3. Model RDM vs human RDM and attribute RDMs

Model RDM: 1 - Pearson r between the emotion profiles (FFN activations at `<mask>`, all 36,864
neurons), per seed, averaged over the 12 seeds. `human` compares it with the mean human RDM
({ctx.n_perm:,} label permutations; CIs by bootstrap over emotions and over raters);
`human_raters` is the mean tau of the model with each single rater, the quantity the noise
ceiling bounds. `SELECT * FROM model_rsa`.

{_table(rows)}
Multiple regression of the model RDM on all 14 attribute RDMs (R^2, unique R^2 per attribute,
shared = R^2 - sum of unique; standardised betas). `SELECT * FROM model_variance_partition`.

{_table(parts)}"""


def _counts_by(column: str, total_over: str, order: str) -> str:
    """searchlight_counts per `column` (totals over `total_over`), one column per FDR mode and alpha."""
    modes = [("study", 0.05, "study_05"), ("monotone", 0.05, "bh_05"), ("monotone", 0.01, "bh_01")]
    cells = ",\n".join(
        f"max({count}) FILTER (WHERE fdr = '{fdr}' AND alpha = {alpha}) AS {prefix}_{suffix}"
        for fdr, alpha, suffix in modes for count, prefix in (("n_significant", "sig"), ("n_selective", "sel")))
    return f"""SELECT {column}, {cells}
        FROM searchlight_counts WHERE run_set = '{RUN_SET}' AND study = '{STUDY}'
          AND {column} IS NOT NULL AND {total_over} IS NULL GROUP BY {column} ORDER BY {order}"""


def searchlight_section(ctx: Context) -> str:
    s = ctx.summaries["searchlight"]
    totals = _q(ctx, f"""SELECT fdr, alpha, n_significant, n_selective, n_significant_tests FROM searchlight_counts
                         WHERE run_set = '{RUN_SET}' AND study = '{STUDY}' AND attribute IS NULL AND layer IS NULL
                         ORDER BY fdr, alpha DESC""")
    per_attribute = _q(ctx, _counts_by("attribute", "layer", "sig_study_05 DESC"))
    per_layer = _q(ctx, _counts_by("layer", "attribute", "layer"))
    differ = _q(ctx, f"""SELECT count(*) FILTER (WHERE q_study < 0.05) - count(*) FILTER (WHERE q_monotone < 0.05) AS d05,
                               count(*) FILTER (WHERE q_study < 0.01) - count(*) FILTER (WHERE q_monotone < 0.01) AS d01
                        FROM searchlight WHERE run_set = '{RUN_SET}' AND study = '{STUDY}'""")[0]
    return f"""## 4. Searchlight: neurons tracking each attribute

For each of the {s['neurons']:,} neurons x {s['attributes']} attributes ({s['tests']:,} tests): Kendall
tau-b between the neuron's RDM (|a_i - a_j| over the 351 emotion pairs, averaged over the 12
seeds) and the attribute RDM, one-sided p (tau > 0), q over all tests by the study's
p*N/rank(p) (`study`) and by monotone Benjamini-Hochberg (`bh`). Significant: q < alpha;
selective: significant for exactly one attribute. Took {ctx.seconds['searchlight']:.0f} s here.
`SELECT * FROM searchlight_counts`.

All neurons:

{_table(totals)}
Per attribute (columns: FDR mode and alpha):

{_table(per_attribute)}
Per layer (0 = first):

{_table(per_layer)}
The two FDR modes differ by {differ['d05']} tests at q < 0.05 and {differ['d01']} at q < 0.01: the study's q
lacks the step-up minimum, so it can only be larger than BH's, and with this many very small p
the two cut-offs fall in the same place.
"""


def neurons_section(ctx: Context) -> str:
    top = _q(ctx, f"""SELECT attribute, list(neuron ORDER BY rank) AS neurons, list(round(tau, 3) ORDER BY rank) AS tau,
                             list(layer ORDER BY rank) AS layers
                      FROM attribute_neurons WHERE run_set = '{RUN_SET}' AND study = '{STUDY}' AND scope = 'global'
                        AND k = {K_VALUES[0]} AND rank <= 5 GROUP BY attribute ORDER BY attribute""")
    for row in top:
        row["top 5 neurons (layer)"] = ", ".join(f"{n} (L{l}, tau {t})" for n, l, t in zip(row["neurons"], row["layers"], row["tau"]))
    layers = _q(ctx, f"""SELECT attribute, histogram(layer) AS layers FROM attribute_neurons
                         WHERE run_set = '{RUN_SET}' AND study = '{STUDY}' AND scope = 'global' AND k = 4000
                         GROUP BY attribute ORDER BY attribute""")
    for row in layers:
        row["layers of the top 4,000"] = " ".join(f"{k}:{v}" for k, v in sorted(dict(row["layers"]).items()))
    overlap = _q(ctx, f"""SELECT attribute_a, attribute_b, n_shared, jaccard FROM attribute_neuron_overlap
                          WHERE run_set = '{RUN_SET}' AND study = '{STUDY}' AND scope = 'global' AND k = 4000
                          ORDER BY n_shared DESC""")
    summary = _q(ctx, f"""SELECT count(*) AS pairs, min(n_shared) AS min_shared, median(n_shared) AS median_shared,
                                 max(n_shared) AS max_shared, avg(jaccard) AS mean_jaccard
                          FROM attribute_neuron_overlap WHERE run_set = '{RUN_SET}' AND study = '{STUDY}'
                            AND scope = 'global' AND k = 4000""")
    return f"""## 5. Attribute-specific neurons (top k by tau over all layers)

Sets for k = {', '.join(map(str, K_VALUES))} are listed by `attribute_neurons`
(`SELECT * FROM attribute_neurons WHERE k = 4000 AND scope = 'global'`). Top five per attribute:

{_table(top, ['attribute', 'top 5 neurons (layer)'])}
Where the top-4,000 sets lie (layer: count):

{_table(layers, ['attribute', 'layers of the top 4,000'])}
Overlap of the top-4,000 sets between attributes
(`SELECT * FROM attribute_neuron_overlap WHERE k = 4000 AND scope = 'global'`):

{_table(summary)}
The ten largest overlaps:

{_table(overlap[:10])}"""


def differences_section(ctx: Context) -> str:
    raw = ctx.summaries["ingest"].get("similarity_raters", "?")
    differ = _q(ctx, f"""SELECT count(*) FILTER (WHERE (q_study < 0.05) <> (q_monotone < 0.05)
                                                  OR (q_study < 0.01) <> (q_monotone < 0.01)) AS n
                        FROM searchlight WHERE run_set = '{RUN_SET}' AND study = '{STUDY}'""")[0]["n"]
    fdr = ("give the same significant sets here at q < 0.05 and q < 0.01" if differ == 0 else
           f"disagree on {differ} tests at q < 0.05 or q < 0.01")
    return f"""## 6. Where these figures can differ from the published ones, and why

- **Human similarity raters**: the raw PsychoPy logs give {raw} people after the exclusion rules,
  the authors' preprocessed file 61; the two extra raters' logs are the whole difference (the
  authors' pair-mean imputation leaves the mean RDM unchanged). Both are analysed above (section 2).
- **Attribute table**: recomputed from the raw ratings it equals the published one (r = 1 for
  all 14 attributes, section 1), so the attribute RDMs here are the study's.
- **Model data**: the 12 released seeds x 27 prompts are used as released; the released
  activations are post-GELU despite the folder name `neurons_activation_before_relu`.
- **p-values**: Kendall p here is scipy's normal approximation with the tie-corrected variance;
  the study computed its statistics in R, and normal-approximation p can differ between
  implementations in the last digits (tau-b itself cannot). Permutation p are bounded below by
  1 / (n_perm + 1).
- **FDR**: the study's `p*N/rank(p)` (tied p get R's average rank) and monotone Benjamini-Hochberg
  (`scipy.stats.false_discovery_control`) {fdr} (section 4); they can differ only where a p fails
  its own threshold while a larger p passes.
- **Searchlight p**: sections 4-5 use the study's asymptotic p on tie-exact attribute RDMs; the
  calibrated default (`emolake searchlight`, permutation p) is in section 0.
- **Neuron RDMs** are |a_i - a_j| per seed averaged over seeds (float64, exact for float32
  activations, so not rounded); attribute and human RDMs are rounded to 12 significant digits of
  their largest distance, so that ties in exact arithmetic stay ties; ranking ties in tau are
  broken by neuron id, which can change the last members of a top-k set if the study broke them
  otherwise.
- **Published numbers** (counts of significant and selective neurons, RSA taus) are not quoted
  because the paper cannot be consulted from this machine: compare the tables above with the
  paper's figures directly.
"""


def timing_section(ctx: Context) -> str:
    rows = [{"step": k, "seconds": f"{v:.1f}"} for k, v in ctx.seconds.items()]
    return f"""## Run time

On the machine that generated this file:

{_table(rows)}
{SECTION_HOOK}
"""


def masking_section(ctx: Context) -> str:
    """The release's masking results through the ablation views (analysis/ablation_stats.py)."""
    from .ablation_stats import render_masking_section

    return render_masking_section(ctx.lake, RUN_SET, STUDY, k=4000, refresh=True)


# The report, in order. Later analyses (the ablation branch's masking section) append here.
SECTIONS: list[Callable[[Context], str]] = [
    header, summary_section, appraisal_section, human_section, rsa_section, searchlight_section, neurons_section, differences_section,
    timing_section, masking_section,
]


def reproduce(release: Path, out: Path, lake_dir: Path | None = None, seed: int = 0, n_perm: int = 10_000,
              n_boot: int = 1_000, searchlight_perm: int = 500) -> Path:
    """Fill a lake from `release`, run the analyses, and write the report to `out`."""
    with tempfile.TemporaryDirectory(prefix="emolake-reproduce-") as tmp:
        lake = Lake(lake_dir or Path(tmp) / "lake")
        ctx = Context(lake, Path(release), seed, n_perm, n_boot, searchlight_perm)
        fill(ctx)
        text = "\n".join(section(ctx) for section in SECTIONS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Reproduce the study's results from its release into a Markdown report.")
    parser.add_argument("--release", type=Path, default=Path("../shared/data/model_emotion"))
    parser.add_argument("--out", type=Path, default=Path("docs/REPRODUCTION.md"))
    parser.add_argument("--lake", type=Path, default=None, help="keep the filled lake here (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--permutations", type=int, default=10_000)
    parser.add_argument("--bootstrap", type=int, default=1_000)
    parser.add_argument("--searchlight-permutations", type=int, default=500,
                        help="permutations of the calibrated searchlight variant (0: leave that column out)")
    args = parser.parse_args()
    path = reproduce(args.release, args.out, args.lake, args.seed, args.permutations, args.bootstrap,
                     args.searchlight_permutations)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
