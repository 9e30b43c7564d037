"""Cross-model comparison: run sets (models, read-outs, neuron definitions) side by side on one study.

`compare_run_sets(lake, run_sets, study)` reads each run set's stored RSA (`model_rsa`, over all
neurons and per layer, from `emolake rsa`) and its manifest (`runs`), and writes one mart row per
run set (`model_comparison`): model, neuron definition, read-out position, tau over all layers
and at the best layer (with the layer), CIs over emotions, and tau over single raters divided
by the noise ceiling's upper bound. For every pair of run sets it adds a paired test over the
emotions both cover (`model_comparison_tests`): a bootstrap over emotions, each resample giving
tau(human, A) - tau(human, B) on the same emotions, with a percentile CI and a two-sided p.

The best layer is chosen on the same data that its tau is reported on, so its tau is optimistic;
its CI is that layer's own CI and does not cover the choice. Both are labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from emolake.warehouse.console import progress_bar
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake

from .compare import METHODS, compare
from .lake_inputs import emotion_profiles, fetch, human_rdm, shared_emotions
from .rdm import METRICS, model_rdm, n_items, pair_indices, square
from .records import NO_RUN_SET, analysis_record, nullable

PAIRED_TEST = "paired bootstrap over emotions"


@dataclass(frozen=True)
class PairedBootstrap:
    tau_a: float  # compare(target, a) over the shared emotions
    tau_b: float
    difference: float  # tau_a - tau_b
    ci_low: float
    ci_high: float
    p: float  # two-sided: min(1, 2 (1 + #{d* on the far side of 0}) / (1 + n_boot))
    distribution: np.ndarray  # [n_boot] resampled differences
    n_boot: int
    seed: int


def paired_bootstrap_items(
    target: np.ndarray, a: np.ndarray, b: np.ndarray, method: str = "tau_b", n_boot: int = 1000, seed: int = 0,
    level: float = 0.95,
) -> PairedBootstrap:
    """Bootstrap over items of compare(target, a) - compare(target, b); all three RDMs [n_pairs] over the same items.

    Each resample draws n items with replacement (numpy PCG64 seeded with `seed`, the same draws as
    `inference.bootstrap_items`) and reads the pairs of its positions from all three RDMs, pairs
    of an item with itself dropped, so both differences in a resample use the same emotions.
    """
    n = n_items(len(target))
    full = [square(np.asarray(x, float), n) for x in (target, a, b)]  # 3 x [n, n]
    i, j = pair_indices(n)
    rng = np.random.default_rng(seed)
    differences = np.empty(n_boot)  # [n_boot]
    for r in range(n_boot):
        draw = rng.integers(0, n, n)
        rows, cols = draw[i], draw[j]
        keep = rows != cols
        t, x, y = (m[rows[keep], cols[keep]] for m in full)
        differences[r] = compare(t, x, method) - compare(t, y, method)
    tau_a, tau_b = compare(target, a, method), compare(target, b, method)
    finite = differences[np.isfinite(differences)]
    tail = (1 - level) / 2
    low, high = np.quantile(finite, [tail, 1 - tail]) if finite.size else (np.nan, np.nan)
    below, above = int(np.sum(finite <= 0)), int(np.sum(finite >= 0))
    p = min(1.0, 2 * (1 + min(below, above)) / (1 + finite.size)) if finite.size else np.nan
    return PairedBootstrap(tau_a, tau_b, tau_a - tau_b, float(low), float(high), p, differences, n_boot, seed)


def _check(run_sets: list[str], metric: str, method: str, n_boot: int) -> None:
    if not run_sets or any(not r for r in run_sets):
        raise BadInputError("--run-sets needs one or more run set names, comma-separated", found=run_sets)
    if len(set(run_sets)) != len(run_sets):
        raise BadInputError("--run-sets names a run set twice", found=run_sets)
    if method not in METHODS:
        raise BadInputError("unknown comparison method", expected=f"one of {sorted(METHODS)}", found=method)
    if metric not in METRICS or metric == "absolute":
        raise BadInputError("unknown model RDM metric", expected="correlation, euclidean or cosine", found=metric)
    if n_boot < 0:
        raise BadInputError("--bootstrap must be >= 0", found=n_boot)


def _manifest(lake: Lake, run_set: str) -> dict:
    """Model, neuron definition, hook point and read-out position of a run set's runs (distinct values joined)."""
    columns = set(fetch(lake, "SELECT * FROM runs LIMIT 0").schema.names)
    neuron = "neuron" if "neuron" in columns else "NULL"  # the neuron definition, where the manifest records it
    rows = fetch(lake, f"""SELECT model, {neuron} AS neuron, hook_point, position, n_layers FROM runs
                           WHERE run_set = ?""", [run_set]).to_pylist()
    if not rows:
        known = fetch(lake, "SELECT DISTINCT run_set FROM runs ORDER BY 1").column(0).to_pylist()
        raise NotFoundError(f"no runs in run set {run_set!r}", expected=f"one of {known}" if known else "an extracted run")

    def joined(key: str) -> str | None:
        values = sorted({str(r[key]) for r in rows if r[key] is not None})
        return " | ".join(values) if values else None

    return {"model": joined("model"), "neuron": joined("neuron"), "hook_point": joined("hook_point"),
            "position": joined("position"), "n_runs": len(rows),
            "n_layers": max((r["n_layers"] or 0) for r in rows) or None}


def _rsa_rows(lake: Lake, run_set: str, study: str, metric: str, method: str) -> list[dict]:
    rows = fetch(lake, """SELECT layer, target, tau, p_perm, n_perm, ci_emotions_low, ci_emotions_high, n_boot,
                                 n_pairs, ceiling_upper
                          FROM model_rsa WHERE run_set = ? AND study = ? AND metric = ? AND method = ?
                            AND target IN ('human', 'human_raters')""", [run_set, study, metric, method]).to_pylist()
    if not any(r["layer"] is None and r["target"] == "human" for r in rows):
        raise NotFoundError(
            f"run set {run_set!r} has no model RSA on study {study!r} with metric {metric!r} and method {method!r}",
            expected=f"`emolake rsa --study {study} --run-set {run_set} --metric {metric} --method {method}` first")
    return rows


def run_set_row(lake: Lake, run_set: str, study: str, metric: str, method: str) -> dict:
    """One `model_comparison_results` row (study excluded) from the stored RSA and the manifest."""
    rows = _rsa_rows(lake, run_set, study, metric, method)
    pick = {(r["layer"], r["target"]): r for r in rows}
    everything, raters = pick[(None, "human")], pick.get((None, "human_raters"))
    layers = sorted((r for r in rows if r["layer"] is not None and r["target"] == "human"),
                    key=lambda r: (-r["tau"], r["layer"]))  # highest tau; ties: the lowest layer
    best = layers[0] if layers else None
    best_raters = pick.get((best["layer"], "human_raters")) if best else None
    ceiling = fetch(lake, "SELECT upper FROM noise_ceiling WHERE study = ? AND method = ?", [study, method])
    upper = ceiling.column(0)[0].as_py() if ceiling.num_rows else None

    def normalised(row: dict | None) -> float:
        return row["tau"] / upper if row is not None and upper else np.nan

    return {
        "run_set": run_set, **_manifest(lake, run_set), "metric": metric, "method": method,
        "n_emotions": n_items(everything["n_pairs"]), "n_pairs": everything["n_pairs"],
        "tau": everything["tau"], "ci_low": _nan(everything["ci_emotions_low"]),
        "ci_high": _nan(everything["ci_emotions_high"]), "p_perm": _nan(everything["p_perm"]),
        "n_perm": everything["n_perm"], "best_layer": best["layer"] if best else None,
        "best_tau": best["tau"] if best else np.nan, "best_ci_low": _nan(best["ci_emotions_low"]) if best else np.nan,
        "best_ci_high": _nan(best["ci_emotions_high"]) if best else np.nan,
        "best_p_perm": _nan(best["p_perm"]) if best else np.nan,
        "tau_raters": raters["tau"] if raters else np.nan,
        "best_tau_raters": best_raters["tau"] if best_raters else np.nan,
        "ceiling_lower": np.nan, "ceiling_upper": upper if upper is not None else np.nan,
        "tau_normalised": normalised(raters), "best_tau_normalised": normalised(best_raters),
        "n_boot": everything["n_boot"],
    }


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def compare_run_sets(
    lake: Lake, run_sets: list[str], study: str, metric: str = "correlation", method: str = "tau_b",
    n_boot: int = 1000, seed: int = 0, progress: bool = True,
) -> dict:
    """Compare `run_sets` on `study` and store the mart; returns {'run_sets': rows, 'tests': rows}.

    Reads the RSA that `emolake rsa` stored for each run set (metric and method as given); the
    paired tests recompute each run set's all-neuron model RDM (`rdm.model_rdm`) over the emotions
    both run sets and the study share. Earlier rows of the same run sets (pairs), metric and
    method are replaced; the rest of the study's mart is kept.
    """
    _check(run_sets, metric, method, n_boot)
    rows = [run_set_row(lake, r, study, metric, method) for r in run_sets]
    ceiling = fetch(lake, "SELECT lower FROM noise_ceiling WHERE study = ? AND method = ?", [study, method])
    for row in rows:
        row["ceiling_lower"] = ceiling.column(0)[0].as_py() if ceiling.num_rows else np.nan
    pairs = [(a, b) for k, a in enumerate(run_sets) for b in run_sets[k + 1:]]
    tests = []
    if pairs and n_boot:
        profiles = {r: emotion_profiles(lake, r) for r in run_sets}
        with progress_bar("pairs") as bar:
            task = bar.add_task("paired bootstrap", total=len(pairs), visible=progress)
            for a, b in pairs:
                emotions = shared_emotions(profiles[a].emotions, profiles[b].emotions, _study_emotions(lake, study))
                human = human_rdm(lake, study, emotions)
                model_a = model_rdm(profiles[a].select(emotions).values, metric)  # [n_pairs]
                model_b = model_rdm(profiles[b].select(emotions).values, metric)
                test = paired_bootstrap_items(human, model_a, model_b, method, n_boot, seed)
                tests.append({"run_set_a": a, "run_set_b": b, "metric": metric, "method": method,
                              "n_emotions": len(emotions), "tau_a": test.tau_a, "tau_b": test.tau_b,
                              "difference": test.difference, "ci_low": test.ci_low, "ci_high": test.ci_high,
                              "p": test.p, "n_boot": n_boot, "seed": seed, "test": PAIRED_TEST})
                bar.advance(task)

    results = _merged(lake, "model_comparison_results", study, rows,
                      lambda r: r["run_set"] in run_sets and r["metric"] == metric and r["method"] == method)
    computed = {(t["run_set_a"], t["run_set_b"]) for t in tests} if n_boot else set(pairs)
    stored = _merged(lake, "model_comparison_test_results", study, tests,
                     lambda r: (r["run_set_a"], r["run_set_b"]) in computed and r["metric"] == metric
                     and r["method"] == method)
    params = {"run_sets": run_sets, "metric": metric, "method": method, "n_boot": n_boot, "test": PAIRED_TEST}
    with lake.transaction(f"compare --run-sets {','.join(run_sets)} --study {study} --seed {seed}") as txn:
        txn.write("model_comparison_results", results, {"study": study})
        txn.write("model_comparison_test_results", stored, {"study": study})
        txn.write("analyses", analysis_record("compare", params=params, seed=seed),
                  {"analysis": "compare", "run_set": NO_RUN_SET, "study": study})
    return {"study": study, "metric": metric, "method": method, "n_boot": n_boot, "seed": seed,
            "run_sets": rows, "tests": tests}


def _study_emotions(lake: Lake, study: str) -> list[str]:
    table = fetch(lake, "SELECT DISTINCT emotion_a AS e FROM human_rdm WHERE study = ? "
                        "UNION SELECT DISTINCT emotion_b FROM human_rdm WHERE study = ?", [study, study])
    if table.num_rows == 0:
        raise NotFoundError(f"study {study!r} has no human similarity judgments (human_rdm is empty)")
    return table.column(0).to_pylist()


def _merged(lake: Lake, name: str, study: str, rows: list[dict], replaced) -> pa.Table:
    """`rows` plus the study's stored rows that `replaced(row)` does not supersede."""
    from emolake.warehouse.tables import TABLES

    schema = TABLES[name].schema
    columns = ", ".join(f'"{c}"' for c in schema.names)
    kept = [r for r in fetch(lake, f"SELECT {columns} FROM {name} WHERE study = ?", [study]).to_pylist()
            if not replaced(r)]
    table = {}
    for field in schema:
        values = [r[field.name] for r in kept + rows]
        table[field.name] = nullable([np.nan if v is None else v for v in values]) \
            if pa.types.is_floating(field.type) else pa.array(values, field.type)
    return pa.table(table, schema=schema)
