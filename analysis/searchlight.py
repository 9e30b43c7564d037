"""Searchlight RSA over single neurons: for every neuron x attribute, Kendall tau-b between the
neuron's RDM (|a_i - a_j| over emotion pairs, averaged over the runs of a run set) and the
attribute's RDM, a one-sided p (positive association, normal approximation with scipy's
tie-corrected variance) and FDR q-values over all tests, in both modes (`fdr.FDR_MODES`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from warehouse.console import progress_bar
from warehouse.errors import BadInputError
from warehouse.lake import Lake
from warehouse.lineage import run_set_inputs, snapshot

from .fdr import FDR_MODES, bh_monotone, bh_study
from .kendall import kendall_tau
from .lake_inputs import attribute_values, emotion_profiles, shared_emotions
from .rdm import feature_rdms, rdm
from .records import analysis_record, nullable

NEURON_BLOCK = 4096  # neurons per progress step


@dataclass(frozen=True)
class SearchlightStats:
    tau: np.ndarray  # [n_neurons, n_attributes]
    p: np.ndarray  # [n_neurons, n_attributes], one-sided (tau > 0)
    q_monotone: np.ndarray  # Benjamini-Hochberg over all tests
    q_study: np.ndarray  # p * N / rank(p) over all tests


def searchlight_tau(neuron_rdms: np.ndarray, attribute_rdms: np.ndarray, progress: bool = False) -> SearchlightStats:
    """Tau-b, one-sided p and q of every neuron RDM [n_pairs, n_neurons] against every attribute
    RDM [n_pairs, n_attributes]. Neuron RDMs are compared in float32 (pass float64 to compare in
    float64: exact on values that float32 would tie, twice as slow)."""
    n_neurons = neuron_rdms.shape[1]
    tau = np.empty((n_neurons, attribute_rdms.shape[1]))
    p = np.empty_like(tau)
    with progress_bar("tests") as bar:
        task = bar.add_task("searchlight", total=n_neurons * attribute_rdms.shape[1], visible=progress)
        for start in range(0, n_neurons, NEURON_BLOCK):
            stop = min(start + NEURON_BLOCK, n_neurons)
            result = kendall_tau(neuron_rdms[:, start:stop], attribute_rdms, variant="b", alternative="greater")
            tau[start:stop], p[start:stop] = result.tau, result.p
            bar.advance(task, (stop - start) * attribute_rdms.shape[1])
    return SearchlightStats(tau, p, bh_monotone(p), bh_study(p))


PRECISIONS = ("float64", "float32")


def run_searchlight(
    lake: Lake, run_set: str, study: str, fdr: str = "monotone", alpha: float = 0.01, precision: str = "float64",
    progress: bool = True,
) -> dict:
    """Searchlight of run set `run_set` against study `study`'s attributes; results replace the
    (run_set, study) partition of `searchlight_results` in one transaction. Returns a summary.

    `precision` of the neuron RDMs: float64 equals scipy on the exact values; float32 is ~1.5x
    faster and can tie values that differ only beyond float32's 7 digits."""
    if precision not in PRECISIONS:
        raise BadInputError("unknown precision", expected=f"one of {PRECISIONS}", found=precision)
    if fdr not in FDR_MODES:
        raise BadInputError("unknown FDR mode", expected=f"one of {FDR_MODES}", found=fdr)
    if not 0 < alpha < 1:
        raise BadInputError("alpha must lie between 0 and 1", found=alpha)
    inputs = snapshot(lake, [("emotion_attributes", f"study={study}"), *run_set_inputs(lake, run_set)])
    profiles = emotion_profiles(lake, run_set)
    attributes = attribute_values(lake, study)
    emotions = shared_emotions(profiles.emotions, attributes.emotions)
    profiles, attributes = profiles.select(emotions), attributes.select(emotions)
    neuron_rdms = feature_rdms(profiles.values).astype(precision)  # [n_pairs, n_neurons]
    attribute_rdms = rdm(attributes.values, "absolute")  # [n_pairs, n_attributes]
    stats = searchlight_tau(neuron_rdms, attribute_rdms, progress=progress)
    q = stats.q_monotone if fdr == "monotone" else stats.q_study

    n_neurons, n_attributes = stats.tau.shape
    table = pa.table({
        "neuron": np.repeat(profiles.neurons, n_attributes).astype(np.int32),
        "layer": np.repeat(profiles.layers, n_attributes).astype(np.int32),
        "unit": np.repeat(profiles.units, n_attributes).astype(np.int32),
        "attribute": pa.array(np.tile(np.array(attributes.attributes, dtype=object), n_neurons), pa.string()),
        "tau": nullable(stats.tau.ravel()), "p": nullable(stats.p.ravel()), "q": nullable(q.ravel()),
        "q_monotone": nullable(stats.q_monotone.ravel()), "q_study": nullable(stats.q_study.ravel()),
    })
    record = analysis_record(
        "searchlight", params={"fdr": fdr, "alpha": alpha, "method": "tau_b", "alternative": "greater",
                               "neuron_rdm": "absolute difference, mean over runs", "precision": precision},
        fdr=fdr, alpha=alpha, run_ids=profiles.run_ids, emotions=emotions,
    )
    with lake.transaction(f"searchlight --run-set {run_set} --study {study} --fdr {fdr} --alpha {alpha}") as txn:
        txn.write("searchlight_results", table, {"run_set": run_set, "study": study})
        txn.write("analyses", record, {"analysis": "searchlight", "run_set": run_set, "study": study})
        txn.write("result_inputs", inputs, {"analysis": "searchlight", "run_set": run_set, "study": study})

    significant = {mode: (qv < alpha) for mode, qv in (("monotone", stats.q_monotone), ("study", stats.q_study))}
    per_attribute = {a: int(significant[fdr][:, k].sum()) for k, a in enumerate(attributes.attributes)}
    return {
        "run_set": run_set, "study": study, "runs": len(profiles.run_ids), "emotions": len(emotions),
        "neurons": n_neurons, "attributes": n_attributes, "tests": int(stats.tau.size), "fdr": fdr, "alpha": alpha,
        "significant_tests": int(significant[fdr].sum()),
        "significant_neurons": int(significant[fdr].any(axis=1).sum()),
        "selective_neurons": int((significant[fdr].sum(axis=1) == 1).sum()),
        "significant_tests_other_mode": int(significant["study" if fdr == "monotone" else "monotone"].sum()),
        "significant_per_attribute": per_attribute,
    }
