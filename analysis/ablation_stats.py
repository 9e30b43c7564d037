"""Statistics of ablation sweeps: attribute vs random-control tests, and the link to human importance.

Inputs are rows of the `ablation_results` view (one accuracy per emotion, condition, k, draw and
replicate); outputs are the stored tables behind the `ablation_summary`, `ablation_emotion_summary`
and `importance_link` views. DuckDB has no t distribution, so t, p and q are computed here (scipy)
and stored; the views join them to the accuracies they summarise.

Pairing (as in the study): the unit is the replicate (a trained model or probe seed) when there are
two or more, the random-control accuracies of a replicate averaged over draws; with a single
replicate the unit is the control draw (attribute accuracy minus each draw's accuracy).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake

from .fdr import bh_monotone as benjamini_hochberg  # monotone BH, shared with the searchlight

ALTERNATIVE = "less"  # attribute ablation lowers accuracy more than random ablation


def control_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Random-control rows of every attribute set: its own controls plus those shared by all attributes.

    Returns columns emotion, attribute, k, replicate, draw, accuracy (one row per control accuracy).
    """
    keys = results.loc[results["condition"] == "attribute", ["emotion", "attribute", "k"]].drop_duplicates()
    random = results[results["condition"] == "random"]
    own = keys.merge(random[random["attribute"].notna()], on=["emotion", "attribute", "k"])
    shared = keys.merge(random[random["attribute"].isna()].drop(columns="attribute"), on=["emotion", "k"])
    columns = ["emotion", "attribute", "k", "replicate", "draw", "accuracy"]
    return pd.concat([own[columns], shared[columns]], ignore_index=True)


def _quiet(test, *args, **kwargs):
    """A scipy test without its precision warning on identical samples (t is then inf or NaN, as it should be)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return test(*args, **kwargs)


def _paired(attribute_by_replicate: pd.Series, controls: pd.DataFrame, alternative: str) -> tuple[str, int, float, float]:
    """(unit, n, t, p) for one attribute set against its controls; see the module docstring."""
    control_by_replicate = controls.groupby("replicate")["accuracy"].mean()
    common = attribute_by_replicate.index.intersection(control_by_replicate.index)
    if len(common) >= 2:
        a, c = attribute_by_replicate[common].to_numpy(), control_by_replicate[common].to_numpy()
        result = _quiet(stats.ttest_rel, a, c, alternative=alternative)
        return "replicate", len(common), float(result.statistic), float(result.pvalue)
    if len(common) == 1:
        draws = controls.loc[controls["replicate"] == common[0], "accuracy"].to_numpy()
        if len(draws) >= 2:
            diff = attribute_by_replicate[common[0]] - draws
            result = _quiet(stats.ttest_1samp, diff, 0.0, alternative=alternative)
            return "draw", len(draws), float(result.statistic), float(result.pvalue)
    return "none", len(common), math.nan, math.nan


TEST_COLUMNS = ["level", "emotion", "attribute", "k", "unit", "n", "t", "p"]


def attribute_tests(results: pd.DataFrame, alternative: str = ALTERNATIVE) -> pd.DataFrame:
    """One paired test per emotion, attribute and k; q by BH over emotions within attribute and k.

    `results`: columns emotion, attribute, k, condition, draw, replicate, accuracy.
    """
    attr = results[results["condition"] == "attribute"]
    controls = dict(list(control_rows(results).groupby(["emotion", "attribute", "k"])))
    empty = pd.DataFrame(columns=["replicate", "accuracy"])
    rows = []
    for (emotion, attribute, k), group in attr.groupby(["emotion", "attribute", "k"], sort=True):
        a = group.groupby("replicate")["accuracy"].mean()
        unit, n, t, p = _paired(a, controls.get((emotion, attribute, k), empty), alternative)
        rows.append({"level": "attribute", "emotion": emotion, "attribute": attribute, "k": int(k),
                     "unit": unit, "n": n, "t": t, "p": p})
    tests = pd.DataFrame(rows, columns=TEST_COLUMNS)
    tests["q"] = np.nan
    for _, index in tests.groupby(["attribute", "k"]).groups.items():
        tests.loc[index, "q"] = benjamini_hochberg(tests.loc[index, "p"].to_numpy())
    tests["alternative"] = alternative
    return tests


def emotion_tests(results: pd.DataFrame, alternative: str = ALTERNATIVE) -> pd.DataFrame:
    """Per emotion and k: every attribute's ablation vs its controls, paired over attributes x replicates.

    Each pair is (attribute accuracy, mean of that attribute's controls) for one replicate; BH over emotions.
    """
    keys = ["emotion", "attribute", "k", "replicate"]
    attr = results[results["condition"] == "attribute"].groupby(keys)["accuracy"].mean().rename("a")
    control = control_rows(results).groupby(keys)["accuracy"].mean().rename("c")
    pairs = pd.concat([attr, control], axis=1, join="inner").reset_index()
    rows = []
    for (emotion, k), group in pairs.groupby(["emotion", "k"], sort=True):
        t = p = math.nan
        if len(group) >= 2:
            result = _quiet(stats.ttest_rel, group["a"], group["c"], alternative=alternative)
            t, p = float(result.statistic), float(result.pvalue)
        rows.append({"level": "emotion", "emotion": emotion, "attribute": None, "k": int(k),
                     "unit": "attribute x replicate", "n": len(group), "t": t, "p": p})
    tests = pd.DataFrame(rows, columns=TEST_COLUMNS)
    tests["q"] = np.nan
    for _, index in tests.groupby("k").groups.items():
        tests.loc[index, "q"] = benjamini_hochberg(tests.loc[index, "p"].to_numpy())
    tests["alternative"] = alternative
    return tests


DROPS = ("vs-control", "vs-unablated")
DEFAULT_DROP = "vs-control"  # the study's definition


def accuracy_drops(results: pd.DataFrame, drop: str = DEFAULT_DROP) -> pd.DataFrame:
    """Per emotion, attribute and k: the accuracy drop caused by ablating the attribute's neurons.

    `drop` 'vs-control' (the study's): mean accuracy with the attribute's random control sets
    ablated (its own draws, plus draws shared by all attributes) - mean attribute-ablated accuracy.
    'vs-unablated': mean unablated accuracy - mean attribute-ablated accuracy. With many random
    draws shared by all attributes the two differ by a constant per emotion and k, so they give the
    same r across attributes; with one draw per attribute (the study) they do not.
    """
    if drop not in DROPS:
        raise BadInputError("unknown drop definition", expected=f"one of {DROPS}", found=drop)
    attr = results[results["condition"] == "attribute"]
    drops = attr.groupby(["emotion", "attribute", "k"], as_index=False)["accuracy"].mean()
    if drop == "vs-unablated":
        unablated = results[results["condition"] == "unablated"].groupby("emotion")["accuracy"].mean()
        drops["drop"] = drops["emotion"].map(unablated) - drops["accuracy"]
    else:
        control = control_rows(results).groupby(["emotion", "attribute", "k"])["accuracy"].mean().rename("control")
        drops = drops.join(control, on=["emotion", "attribute", "k"])
        drops["drop"] = drops["control"] - drops["accuracy"]
    return drops[["emotion", "attribute", "k", "drop"]]


def importance_correlations(drops: pd.DataFrame, importance: pd.Series) -> pd.DataFrame:
    """Per emotion and k: Pearson r across attributes between accuracy drop and human importance.

    `importance`: attribute -> importance (tau of the human similarity RDM vs the attribute RDM).
    Cells where drop or importance is constant, or fewer than 3 attributes, get r = NaN.
    """
    rows = []
    for (emotion, k), group in drops.groupby(["emotion", "k"], sort=True):
        group = group[group["attribute"].isin(importance.index)].dropna(subset=["drop"])
        x = group["drop"].to_numpy()
        y = importance[group["attribute"]].to_numpy(dtype=float)
        r = math.nan
        if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            r = float(np.corrcoef(x, y)[0, 1])
        rows.append({"emotion": emotion, "k": int(k), "n_attributes": len(x), "r": r})
    return pd.DataFrame(rows, columns=["emotion", "k", "n_attributes", "r"])


def fisher_mean_test(r: np.ndarray, confidence: float = 0.95) -> dict:
    """Fisher-z mean of correlations, its CI back-transformed to r, and a two-sided one-sample t-test of z.

    r = +-1 has no finite z (clipping it to z ~ 14 lets one emotion dominate the mean) and NaN r
    (a constant drop or importance) has none at all: both are left out of the mean and the test
    and counted (`n_emotions_r_one`, `n_emotions_r_nan`); `n_emotions` is the number tested.
    """
    r = np.asarray(r, dtype=float)
    n_nan = int(np.isnan(r).sum())
    r = r[~np.isnan(r)]
    n_one = int((np.abs(r) >= 1).sum())
    positive = int((r > 0).sum())
    r = r[np.abs(r) < 1]
    n = len(r)
    out = {"n_emotions": n, "mean_r": math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "t": math.nan, "p": math.nan, "n_emotions_positive": positive,
           "n_emotions_r_one": n_one, "n_emotions_r_nan": n_nan}
    if n == 0:
        return out
    z = np.arctanh(r)  # [n_emotions]
    mean_z = float(z.mean())
    out["mean_r"] = math.tanh(mean_z)
    if n >= 2:
        se = float(z.std(ddof=1)) / math.sqrt(n)
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
        out["ci_low"], out["ci_high"] = math.tanh(mean_z - half), math.tanh(mean_z + half)
        result = _quiet(stats.ttest_1samp, z, 0.0)
        out["t"], out["p"] = float(result.statistic), float(result.pvalue)
    return out


TEST_LINK_COLUMNS = ["k", "n_emotions", "mean_r", "ci_low", "ci_high", "t", "p", "n_emotions_positive",
                     "n_emotions_r_one", "n_emotions_r_nan"]


def importance_tests(correlations: pd.DataFrame) -> pd.DataFrame:
    """One Fisher-z test per k over the per-emotion correlations."""
    rows = [{"k": int(k), **fisher_mean_test(group["r"].to_numpy())}
            for k, group in correlations.groupby("k", sort=True)]
    return pd.DataFrame(rows, columns=TEST_LINK_COLUMNS)


# --- Lake I/O -----------------------------------------------------------------------------------

RESULT_COLUMNS = ["emotion", "attribute", "k", "condition", "draw", "replicate", "accuracy"]


def read_results(lake: Lake, run_set: str, study: str) -> pd.DataFrame:
    from emolake.warehouse.database import query

    table = query(lake, f"SELECT {', '.join(RESULT_COLUMNS)} FROM ablation_results "
                        f"WHERE run_set = '{_quote(run_set)}' AND study = '{_quote(study)}'")
    return table.to_pandas()


def ablation_study_of(lake: Lake, run_set: str, study: str) -> str:
    """The study whose attribute neurons the run set's ablations used: `study` itself when it has
    ablation results, else the run set's only ablation study (a study's human data then combines
    with another study's ablations, e.g. the authors' preprocessed judgments with li2024's masking)."""
    from emolake.warehouse.database import query

    studies = query(lake, f"SELECT DISTINCT study FROM ablation_results WHERE run_set = '{_quote(run_set)}' "
                          "ORDER BY study").column(0).to_pylist()
    if study in studies:
        return study
    if len(studies) == 1:
        return studies[0]
    raise NotFoundError(f"no ablation results for run set {run_set!r} and study {study!r}",
                        expected="--ablation-study, one of " + str(studies) if studies else "an ablation sweep (ablate)")


def read_importance(lake: Lake, study: str, method: str | None = None) -> tuple[pd.Series, str]:
    """attribute -> tau from the analysis branch's `attribute_importance` view, and the method used."""
    from emolake.warehouse.database import connect

    with connect(lake) as con:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        if "attribute_importance" not in views:
            raise NotFoundError("no attribute_importance view: compute human attribute importance first (rsa)")
        frame = con.execute("SELECT * FROM attribute_importance WHERE study = ?", [study]).df()
    if frame.empty:
        raise NotFoundError(f"attribute_importance has no rows for study {study!r}",
                            expected="human attribute importance of the study (run the rsa command first)")
    if "method" in frame.columns:
        methods = sorted(frame["method"].dropna().unique())
        if method is None:
            method = next((m for m in methods if "tau_b" in m.replace("-", "_")), methods[0])
        frame = frame[frame["method"] == method]
    return frame.groupby("attribute")["tau"].mean(), method or "tau"


def tests_table(results: pd.DataFrame, alternative: str = ALTERNATIVE) -> pa.Table:
    tests = pd.concat([attribute_tests(results, alternative), emotion_tests(results, alternative)],
                      ignore_index=True)
    return pa.Table.from_pandas(tests, preserve_index=False)


def refresh_ablation_statistics(lake: Lake, run_set: str, study: str, importance_method: str | None = None,
                                alternative: str = ALTERNATIVE, drop: str = DEFAULT_DROP,
                                ablation_study: str | None = None) -> dict:
    """Recompute and store the tests of one sweep, and its importance link when human importance exists.

    The ablation results are those of (`run_set`, `ablation_study`) (default: `ablation_study_of`),
    the human importance that of `study`; the link is stored under (`run_set`, `study`) with the
    `drop` definition and the ablation study named in its rows."""
    if drop not in DROPS:
        raise BadInputError("unknown drop definition", expected=f"one of {DROPS}", found=drop)
    ablation_study = ablation_study or ablation_study_of(lake, run_set, study)
    results = read_results(lake, run_set, ablation_study)
    if results.empty:
        raise NotFoundError(f"no ablation results for run set {run_set!r} and study {ablation_study!r}")
    summary: dict = {"run_set": run_set, "study": study, "ablation_study": ablation_study, "drop": drop}
    correlations = None
    try:
        importance, method = read_importance(lake, study, importance_method)
    except NotFoundError as exc:
        summary["importance_link"] = f"skipped: {exc}"
    else:
        correlations = importance_correlations(accuracy_drops(results, drop), importance)
        correlations["drop"] = drop
        link = importance_tests(correlations)
        link["importance_method"] = method
        link["drop"] = drop
        link["ablation_study"] = ablation_study
        summary["importance_link_k"] = link["k"].tolist()
        summary["emotions_r_one"] = int(link["n_emotions_r_one"].sum())
        summary["emotions_r_nan"] = int(link["n_emotions_r_nan"].sum())
    with lake.transaction(f"ablation statistics {run_set} {study} --drop {drop}") as txn:
        tests = tests_table(results, alternative)
        txn.write("ablation_tests", tests, {"run_set": run_set, "study": ablation_study})
        summary["tests"] = tests.num_rows
        if correlations is not None:
            partition = {"run_set": run_set, "study": study}
            txn.write("importance_correlations", pa.Table.from_pandas(correlations, preserve_index=False), partition)
            txn.write("importance_tests", pa.Table.from_pandas(link, preserve_index=False), partition)
    return summary


def _quote(value: str) -> str:
    if "'" in value:
        raise BadInputError("quotes are not allowed in names", found=value)
    return value


# --- docs/REPRODUCTION.md ------------------------------------------------------------------------

def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:.2e}" if 0 < abs(value) < 10 ** -digits else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def render_masking_section(lake: Lake, run_set: str = "li2024-roberta", study: str = "li2024", k: int = 4000,
                           alpha: float = 0.05, refresh: bool = False) -> str:
    """The masking section of docs/REPRODUCTION.md from the ablation views (released or own results).

    `refresh` first recomputes the sweep's statistics, so that the importance link uses human
    attribute importance computed after the results were loaded (as `analysis.reproduce` does).
    """
    from emolake.warehouse.database import query

    if refresh:
        refresh_ablation_statistics(lake, run_set, study)

    where = f"run_set = '{_quote(run_set)}' AND study = '{_quote(study)}'"
    emotions = query(lake, f"SELECT emotion, acc_unablated, acc_attribute, acc_control_mean, delta, t, p, q "
                           f"FROM ablation_emotion_summary WHERE {where} AND k = {int(k)} ORDER BY delta").to_pandas()
    if emotions.empty:
        raise NotFoundError(f"no ablation summary for run set {run_set!r}, study {study!r}, k = {k}")
    attributes = query(lake, f"""
        SELECT attribute, avg(acc_attribute) AS acc_attribute, avg(acc_control_mean) AS acc_control_mean,
               avg(delta) AS delta, avg(-delta_unablated) AS drop_from_unablated,
               count(*) FILTER (WHERE q < {alpha}) AS n_emotions_worse
        FROM ablation_summary WHERE {where} AND k = {int(k)} GROUP BY attribute ORDER BY delta""").to_pandas()
    link = query(lake, f"SELECT k, mean_r, ci_low, ci_high, t, p, n_emotions_positive, n_emotions, n_emotions_r_one, "
                       f"n_emotions_r_nan FROM importance_link WHERE {where} ORDER BY k").to_pandas()
    drop = query(lake, f"SELECT DISTINCT \"drop\" FROM importance_link WHERE {where}").column(0).to_pylist()
    drop_text = {"vs-control": "the attribute's random-control accuracy - its ablated accuracy (the study's "
                               "definition, `--drop vs-control`)",
                 "vs-unablated": "unablated - ablated accuracy (`--drop vs-unablated`)"}
    worse = emotions[emotions["q"] < alpha]["emotion"].tolist()
    unit = query(lake, f"SELECT DISTINCT unit FROM ablation_tests WHERE {where} AND level = 'attribute'").column(0)
    parts = [
        "## Masking: ablating attribute-specific neurons vs random neurons",
        "",
        f"Run set `{run_set}`, study `{study}`. Accuracy of binary emotion inference after zeroing each "
        f"attribute's top-k neurons, against random sets of k neurons (views `ablation_summary`, "
        f"`ablation_emotion_summary`, `importance_link`). Paired t-tests, one-sided (attribute ablation lower), "
        f"unit: {', '.join(map(str, unit.to_pylist())) or '-'}; q by Benjamini-Hochberg over emotions.",
        "",
        f"### Per emotion at k = {k:,} (all attributes; paired over attributes x replicates)",
        "",
        _markdown(emotions),
        "",
        f"Emotions significantly worse than random (q < {alpha}): {len(worse)} of {len(emotions)}"
        + (f": {', '.join(worse)}." if worse else "."),
        "",
        f"### Per attribute at k = {k:,} (mean over emotions)",
        "",
        _markdown(attributes.rename(columns={"n_emotions_worse": f"emotions with q < {alpha}"})),
        "",
        f"Control accuracy at k = {k:,} ranges from {attributes['acc_control_mean'].min():.3f} to "
        f"{attributes['acc_control_mean'].max():.3f} across attributes: where each attribute has its own random "
        f"set (the study drew one per attribute and k), a single unlucky draw moves that attribute's delta; "
        f"`emolake ablate --controls R` draws R sets per k instead.",
        "",
        "### Accuracy drop vs human attribute importance, every k",
        "",
        f"Per emotion, Pearson r across attributes between the drop "
        f"({'; '.join(drop_text.get(d, str(d)) for d in drop) or '-'}) and the "
        "attribute's importance in human similarity judgments (tau of the human RDM vs the attribute RDM); "
        "Fisher-z mean over emotions with its 95% CI, and a two-sided one-sample t-test of the z values "
        "(emotions with r = +-1 or an undefined r are left out and counted in n_emotions_r_one / _r_nan).",
        "",
        _markdown(link) if len(link) else "_Not computed: human attribute importance is missing (run `rsa`, "
                                          "then `emolake ablation-stats`)._",
        "",
    ]
    return "\n".join(parts)
