"""RSA runs over the lake: human attribute importance and the noise ceiling of a study, and the
model RDM of a run set against the human RDM and against each attribute RDM (with a variance
partitioning over all attribute RDMs). Results replace their partitions in one transaction.

p: one-sided asymptotic p (positive association); p_perm: permutation over emotion labels of
the target RDM (rows and columns together). CIs: BCa bootstrap (bias-corrected: the resamples of a mean
RDM over raters sit below the estimate) over raters (human RDM)
and over emotions (pairs of an emotion with itself dropped).

Target 'human_raters' is the mean over raters of compare(rater RDM, model RDM): the quantity
that the noise ceiling (Nili et al. 2014: each rater against the group mean with / without
that rater) bounds. Target 'human' compares the model with the group-mean RDM.

Per layer (`analysis.layers`): the same two human targets for the RDM of each layer's neurons
alone; attribute targets and the variance partitioning are computed over all neurons only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from emolake.warehouse.console import progress_bar
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake
from emolake.warehouse.lineage import run_set_inputs, snapshot

from .compare import METHODS, compare, compare_test
from .inference import bootstrap_items, bootstrap_raters, noise_ceiling, permutation_test, variance_partition
from .lake_inputs import attribute_values, emotion_profiles, fetch, human_emotions, human_rdm, rater_rdms, shared_emotions
from .layers import layer_model_rdms
from .rdm import METRICS, model_rdm, rdm, subset
from .records import NO_RUN_SET, analysis_record, nullable

MODEL_METRICS = tuple(m for m in METRICS if m != "absolute")


def _check(method: str, metric: str, n_perm: int, n_boot: int) -> None:
    if method not in METHODS:
        raise BadInputError("unknown comparison method", expected=f"one of {sorted(METHODS)}", found=method)
    if metric not in MODEL_METRICS:
        raise BadInputError("unknown model RDM metric", expected=f"one of {list(MODEL_METRICS)}", found=metric)
    if n_perm < 0 or n_boot < 0:
        raise BadInputError("--permutations and --bootstrap must be >= 0", found=(n_perm, n_boot))


def _row(target_rdm: np.ndarray, other: np.ndarray, method: str, n_perm: int, seed: int) -> dict:
    value, p = compare_test(target_rdm, other, method, alternative="greater")
    p_perm = permutation_test(target_rdm, other, method, n_perm, seed).p if n_perm else np.nan
    return {"tau": value, "p": p, "p_perm": p_perm, "n_perm": n_perm, "n_pairs": len(target_rdm)}


def _human_rows(human: np.ndarray, per_rater: np.ndarray, model: np.ndarray, metric: str, method: str,
                n_perm: int, n_boot: int, seed: int) -> list[dict]:
    """Rows 'human' (model vs the group-mean RDM: tau, p, permutation p, CIs over emotions and raters)
    and, with two or more raters, 'human_raters' (mean over raters of compare(rater, model), the
    quantity the noise ceiling bounds). human, model [n_pairs]; per_rater [n_raters, n_pairs]."""
    row = _row(human, model, method, n_perm, seed)
    items = bootstrap_items(human, model, method, n_boot, seed) if n_boot else None
    by_raters = bootstrap_raters(per_rater, model, method, n_boot, seed) if n_boot and len(per_rater) > 1 else None
    rows = [{"target": "human", "metric": metric, "method": method, **row,
             "ci_emotions_low": items.ci_low if items else np.nan,
             "ci_emotions_high": items.ci_high if items else np.nan,
             "ci_raters_low": by_raters.ci_low if by_raters else np.nan,
             "ci_raters_high": by_raters.ci_high if by_raters else np.nan, "n_boot": n_boot}]
    if len(per_rater) > 1:
        single = np.mean([compare(r, model, method) for r in per_rater])
        rows.append({"target": "human_raters", "metric": metric, "method": method, "tau": single,
                     "p": np.nan, "p_perm": np.nan, "n_perm": 0, "n_pairs": len(model),
                     "ci_emotions_low": np.nan, "ci_emotions_high": np.nan, "ci_raters_low": np.nan,
                     "ci_raters_high": np.nan, "n_boot": 0})
    return rows


def _optional(read, *args):
    """`read(*args)`, or (None, reason) when the study lacks that input."""
    try:
        return read(*args), None
    except NotFoundError as exc:
        return None, str(exc)


def run_rsa(
    lake: Lake, study: str, run_set: str | None = None, metric: str = "correlation", method: str = "tau_b",
    n_perm: int = 10_000, n_boot: int = 1_000, seed: int = 0, progress: bool = True,
    attributes_study: str | None = None, layers: bool = True,
) -> dict:
    """Every RSA part the inputs allow; returns a summary whose `skipped` says which parts were not
    computed and why. Human parts: attribute importance (needs attribute values and similarity
    judgments), noise ceiling (judgments of two or more raters); model parts (with `run_set`):
    model vs human (judgments), model vs attributes and variance partitioning (attribute values).

    The attribute table comes from `attributes_study` (default: `study`), e.g. to use the published
    attributes with another study's similarity judgments. With `layers`, the RDM of each layer's
    neurons alone is compared with the human RDM too (targets 'human' and 'human_raters', with the
    same permutations, bootstrap and seed), stored in `layer_rsa_results` (`model_rsa.layer`)."""
    _check(method, metric, n_perm, n_boot)
    human_inputs = [("emotion_attributes", f"study={attributes_study or study}"), ("similarity_judgments", f"study={study}")]
    lineage = {"attribute_importance": snapshot(lake, human_inputs)}  # before reading: a change meanwhile shows
    if run_set is not None:
        lineage["rsa"] = snapshot(lake, human_inputs + run_set_inputs(lake, run_set))
    attributes, no_attributes = _optional(attribute_values, lake, attributes_study or study)
    judged, no_judgments = _optional(human_emotions, lake, study)
    if attributes is None and judged is None:
        raise NotFoundError(f"study {study!r} has neither attribute values nor similarity judgments",
                            expected="emotion_attributes or similarity_judgments of the study (ingest them first)")
    emotions = shared_emotions(*[e for e in (attributes.emotions if attributes else None, judged) if e is not None])
    human = per_rater = None
    raters: list[str] = []
    if judged is not None:
        human = human_rdm(lake, study, emotions)
        raters, per_rater = rater_rdms(lake, study, emotions)
    attribute_names: list[str] = []
    attribute_rdms = None
    if attributes is not None:
        attributes = attributes.select(emotions)
        attribute_names = attributes.attributes
        attribute_rdms = rdm(attributes.values, "absolute")  # [n_pairs, n_attributes]
    skipped = {}
    if attributes is None:
        skipped["attribute_importance"] = skipped["model_vs_attributes"] = f"no attribute values: {no_attributes}"
    if judged is None:
        skipped["attribute_importance"] = skipped["noise_ceiling"] = skipped["model_vs_human"] = \
            f"no similarity judgments: {no_judgments}"
    elif len(raters) < 2:
        skipped["noise_ceiling"] = f"needs two or more raters, the study has {len(raters)}"
    if run_set is None:
        for part in ("model_vs_human", "model_vs_attributes"):
            skipped.setdefault(part, "no --run-set")
    params = {"metric": metric, "method": method, "n_perm": n_perm, "n_boot": n_boot,
              "attributes_study": attributes_study or study,
              "alternative": "greater", "permuted": "emotion labels of the second RDM",
              "ci": "bca (bootstrap over raters / emotions, bias-corrected and accelerated)",
              "skipped": skipped, "layers": layers}

    profiles = None
    if run_set is not None:
        profiles = emotion_profiles(lake, run_set)
        model_emotions = shared_emotions(profiles.emotions, emotions)  # the model part uses these
        profiles = profiles.select(model_emotions)
        if human is not None:
            human_m = subset(human, emotions, model_emotions)
            per_rater_m = subset(per_rater, emotions, model_emotions) if len(raters) else per_rater
        if attribute_rdms is not None:
            attribute_rdms_m = subset(attribute_rdms, emotions, model_emotions)

    both = human is not None and attribute_rdms is not None
    n_layers = len(np.unique(profiles.layers)) if profiles is not None and layers and human is not None else 0
    steps = (len(attribute_names) if both else 0) + 1 + (len(attribute_names) + 2 + n_layers if profiles is not None else 0)
    importance, rsa_rows, partition_rows, layer_rows = [], [], [], []
    ceiling = None
    with progress_bar("comparisons") as bar:
        task = bar.add_task("rsa", total=steps, visible=progress)
        for k, attribute in enumerate(attribute_names if both else []):
            row = _row(human, attribute_rdms[:, k], method, n_perm, seed)
            ci = bootstrap_raters(per_rater, attribute_rdms[:, k], method, n_boot, seed) if n_boot and len(raters) > 1 else None
            importance.append({"attribute": attribute, "method": method, **row,
                               "ci_raters_low": ci.ci_low if ci else np.nan, "ci_raters_high": ci.ci_high if ci else np.nan,
                               "n_boot": n_boot if ci else 0, "n_raters": len(raters)})
            bar.advance(task)
        if len(raters) > 1:
            ceiling = noise_ceiling(per_rater, method)
        bar.advance(task)

        if profiles is not None:
            model = model_rdm(profiles.values, metric)  # [n_pairs], mean over runs
            if human is not None:
                human, per_rater = human_m, per_rater_m
                rsa_rows += _human_rows(human, per_rater, model, metric, method, n_perm, n_boot, seed)
            bar.advance(task)
            if attribute_rdms is not None:
                attribute_rdms = attribute_rdms_m
                for k, attribute in enumerate(attribute_names):
                    row = _row(model, attribute_rdms[:, k], method, n_perm, seed)
                    rsa_rows.append({"target": attribute, "metric": metric, "method": method, **row,
                                     "ci_emotions_low": np.nan, "ci_emotions_high": np.nan,
                                     "ci_raters_low": np.nan, "ci_raters_high": np.nan, "n_boot": 0})
                    bar.advance(task)
                split = variance_partition(model, attribute_rdms, attribute_names)
                partition_rows = [{"metric": metric, "term": "all", "r2": split.r2, "unique_r2": np.nan, "beta": np.nan},
                                  {"metric": metric, "term": "shared", "r2": np.nan, "unique_r2": split.shared,
                                   "beta": np.nan}]
                partition_rows += [{"metric": metric, "term": a, "r2": np.nan, "unique_r2": split.unique[a],
                                    "beta": split.beta[a]} for a in attribute_names]
            bar.advance(task)
            if layers and human is not None:
                for layer, n_neurons, layer_model in layer_model_rdms(profiles, metric):
                    layer_rows += [{"layer": layer, "n_neurons": n_neurons, **row} for row in
                                   _human_rows(human, per_rater, layer_model, metric, method, n_perm, n_boot, seed)]
                    bar.advance(task)

    command = f"rsa --study {study}" + (f" --run-set {run_set}" if run_set else "") + f" --seed {seed}"
    human_part = {"study": study}
    model_part = {"run_set": run_set, "study": study}
    same_method = ("method = ?", [method])
    same_both = ("metric = ? AND method = ?", [metric, method])
    importance_table = _merged(lake, "attribute_importance_results", human_part, importance, same_method)
    ceiling_table = _merged(lake, "noise_ceiling_results", human_part, [{
        "method": method, "lower": ceiling.lower, "upper": ceiling.upper, "n_raters": ceiling.n_raters,
    }] if ceiling else [], same_method)
    if profiles is not None:
        rsa_table = _merged(lake, "rsa_results", model_part, rsa_rows, same_both)
        partition_table = _merged(lake, "variance_partition_results", model_part, partition_rows, ("metric = ?", [metric]))
        # without `layers`, stale per-layer rows of this metric and method are dropped, not left beside new ones
        layer_table = _merged(lake, "layer_rsa_results", model_part, layer_rows, same_both)
    with lake.transaction(command) as txn:
        txn.write("attribute_importance_results", importance_table, human_part)
        txn.write("noise_ceiling_results", ceiling_table, human_part)
        txn.write("analyses", analysis_record("attribute_importance", params=params, seed=seed, emotions=emotions),
                  {"analysis": "attribute_importance", "run_set": NO_RUN_SET, "study": study})
        txn.write("result_inputs", lineage["attribute_importance"],
                  {"analysis": "attribute_importance", "run_set": NO_RUN_SET, "study": study})
        if profiles is not None:
            txn.write("rsa_results", rsa_table, model_part)
            txn.write("variance_partition_results", partition_table, model_part)
            txn.write("layer_rsa_results", layer_table, model_part)
            txn.write("analyses", analysis_record("rsa", params=params, seed=seed, run_ids=profiles.run_ids,
                                                  emotions=profiles.emotions),
                      {"analysis": "rsa", "run_set": run_set, "study": study})
            txn.write("result_inputs", lineage["rsa"], {"analysis": "rsa", "run_set": run_set, "study": study})

    summary = {
        "study": study, "run_set": run_set, "emotions": len(emotions), "raters": len(raters), "method": method,
        "metric": metric, "permutations": n_perm, "bootstrap": n_boot, "seed": seed,
        "noise_ceiling": [round(ceiling.lower, 4), round(ceiling.upper, 4)] if ceiling else None,
        "attribute_importance": {r["attribute"]: round(r["tau"], 4) for r in importance},
        "skipped": skipped,
    }
    human_row = next((r for r in rsa_rows if r["target"] == "human"), None)
    if human_row:
        summary.update({"model_vs_human": round(human_row["tau"], 4), "model_vs_human_p_perm": human_row["p_perm"]})
    if partition_rows:
        summary["model_r2_attributes"] = round(partition_rows[0]["r2"], 4)
    if layer_rows:
        summary["model_vs_human_by_layer"] = {str(r["layer"]): round(r["tau"], 4) for r in layer_rows
                                              if r["target"] == "human"}
    return summary


def _merged(lake: Lake, name: str, partition: dict, rows: list[dict], replaced: tuple[str, list]) -> pa.Table:
    """New `rows` plus the partition's stored rows of other methods/metrics (those matching
    `replaced` are superseded), so that e.g. `--metric euclidean` keeps the correlation results."""
    from emolake.warehouse.tables import TABLES

    condition, values = replaced
    columns = ", ".join(f'"{c}"' for c in TABLES[name].schema.names)
    where = " AND ".join(f'"{k}" = ?' for k in partition)
    kept = fetch(lake, f"SELECT {columns} FROM {name} WHERE {where} AND NOT ({condition})",
                  [*partition.values(), *values])
    return pa.concat_tables([kept.cast(TABLES[name].schema), _table(name, rows)])


def _table(name: str, rows: list[dict]) -> pa.Table:
    """Rows -> Arrow with NaN floats stored as NULL."""
    from emolake.warehouse.tables import TABLES

    schema = TABLES[name].schema
    columns = {}
    for field in schema:
        values = [r[field.name] for r in rows]
        columns[field.name] = nullable(values) if pa.types.is_floating(field.type) else pa.array(values, field.type)
    return pa.table(columns, schema=schema)
