"""Searchlight RSA over single neurons: for every neuron x attribute, Kendall tau-b between the
neuron's RDM (|a_i - a_j| over emotion pairs, averaged over the runs of a run set) and the
attribute's RDM, a one-sided p (positive association) and FDR q-values over all tests, in both
modes (`fdr.FDR_MODES`).

Inference (`INFERENCES`):
- 'permutation' (default): valid under permutation of the emotion labels. The 351 pairs of an
  RDM over 27 emotions are not independent, so the asymptotic Kendall p, which treats them as
  independent observations, is far too small. Under a uniformly random relabelling of the
  attribute RDM's emotions (rows and columns together), tau's numerator S has mean exactly 0
  (for any two pairs of pairs there is a relabelling that swaps them, so sign(y_a - y_b) and
  sign(y_b - y_a) are equally likely), but its variance and skewness depend on both RDMs and the
  null is right-skewed (skewness ~0.6 for 27 emotions), so a normal z is too liberal in the tail.
  We estimate the second and third moments per test from P seeded permutations, shared by all
  neurons (one matrix product over pair signs per block of permutations), and take p from the
  Pearson type III distribution with those moments (the three-moment approximation of MRPP,
  Mielke et al. 1976). On null data (27 emotions, shuffled attributes) it gives p < .05, .01, .001
  at 1.04, 1.01, 1.01 times the nominal rate with P = 500 (1.05, 1.06, 1.2 with 300; a normal z:
  1.3, 2.2, 5.4): tests/test_analysis_searchlight.py checks this. A per-test empirical p would
  need far more permutations than FDR over 516,096 tests can use (its floor is 1 / (P + 1)).
- 'asymptotic': the study's normal approximation (scipy's / R's tie-corrected variance), kept
  for reproducing the study (`searchlight --inference asymptotic --fdr study`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from scipy import stats

from emolake.warehouse.console import progress_bar
from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import Lake
from emolake.warehouse.lineage import run_set_inputs, snapshot

from .fdr import FDR_MODES, bh_monotone, bh_study
from .inference import label_permutations
from .kendall import kendall_tau, sign_matrix
from .lake_inputs import attribute_values, emotion_profiles, shared_emotions
from .rdm import feature_rdms, n_items, pair_indices, rdm, square
from .records import analysis_record, nullable

NEURON_BLOCK = 4096  # neurons per progress step
INFERENCES = ("permutation", "asymptotic")
N_PERMUTATIONS = 500  # enough for the skewness: calibrated down to p = .001 (module docstring)
PERMUTED_COLUMNS = 1024  # permuted attribute RDMs per block: their sign matrix is [61,425, 1,024] float32 (250 MB)
NULL_NEURON_BLOCK = 2048  # neurons per null block: their sign matrix is [61,425, 2,048] float32 (500 MB)
Y_CACHE_BYTES = 1 << 30  # keep the permuted attribute signs (int8, one byte each) for all neuron blocks up to 1 GiB


@dataclass(frozen=True)
class SearchlightStats:
    tau: np.ndarray  # [n_neurons, n_attributes]
    p: np.ndarray  # [n_neurons, n_attributes], one-sided (tau > 0), by `inference`
    p_asymptotic: np.ndarray  # [n_neurons, n_attributes], the study's normal approximation
    null_sd: np.ndarray  # [n_neurons, n_attributes], permutation sd of tau's numerator (NaN: asymptotic)
    null_skew: np.ndarray  # [n_neurons, n_attributes], its permutation skewness (NaN: asymptotic)
    q_monotone: np.ndarray  # Benjamini-Hochberg over all tests
    q_study: np.ndarray  # p * N / rank(p) over all tests
    inference: str
    n_perm: int
    seed: int | None


def permuted_attribute_rdms(attribute_rdms: np.ndarray, permutations: np.ndarray) -> np.ndarray:
    """Every attribute RDM [n_pairs, n_attributes] relabelled by every permutation [n_perm, n_items]
    (rows and columns together) -> [n_pairs, n_perm * n_attributes], permutation-major."""
    n = n_items(attribute_rdms.shape[0])
    full = np.stack([square(attribute_rdms[:, a], n) for a in range(attribute_rdms.shape[1])])  # [n_attr, n, n]
    i, j = pair_indices(n)
    permuted = full[:, permutations[:, i], permutations[:, j]]  # [n_attr, n_perm, n_pairs]
    return permuted.transpose(2, 1, 0).reshape(len(i), -1)


def dense_ranks(x: np.ndarray) -> np.ndarray:
    """Each column's dense ranks (0, 1, ...; equal values, in x's own precision, get equal ranks), as the
    smallest integer type that holds them (int16 for the 351 pairs of 27 emotions)."""
    dtype = np.int16 if len(x) <= np.iinfo(np.int16).max else np.int32
    return (stats.rankdata(x, method="dense", axis=0) - 1).astype(dtype)


def rank_signs(ranks: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """sign(r_k - r_l) for every pair k < l of rows of the dense ranks [n, m] (`dense_ranks`), as `dtype`
    [n(n-1)/2, m]: the signs of the values themselves, ties included."""
    k, l = (torch.tensor(i) for i in pair_indices(len(ranks)))  # a copy: the cached indices are read-only
    t = torch.from_numpy(np.ascontiguousarray(ranks))
    return (t[k] - t[l]).sign_().to(dtype)


def permutation_null_moments(
    neuron_rdms: np.ndarray, attribute_rdms: np.ndarray, permutations: np.ndarray,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Means over `permutations` [n_perm, n_items] of S^2 and S^3, S = tau's numerator (concordant -
    discordant) of each neuron RDM [n_pairs, n_neurons] with each relabelled attribute RDM
    [n_pairs, n_attributes]: the permutation variance and third central moment of S (its
    permutation mean is exactly 0). Returns two [n_neurons, n_attributes] arrays.
    `advance(c)` is called after every c neuron x permutation columns.

    One matrix product per block of neurons and block of permutations, [permuted columns, pairs
    of pairs] x [pairs of pairs, neurons], in float32: signs are -1, 0, 1 and every sum is an
    integer below 2**24, so it is exact. Signs come from dense ranks (exact ties). A neuron block's
    signs are built once for all permutations, and the permuted attribute signs once for all neuron
    blocks (int8, kept while they fit in `Y_CACHE_BYTES`, else rebuilt per neuron block)."""
    n_neurons, n_attributes = neuron_rdms.shape[1], attribute_rdms.shape[1]
    per_block = max(1, PERMUTED_COLUMNS // n_attributes)
    blocks = [permutations[b0:b0 + per_block] for b0 in range(0, len(permutations), per_block)]
    attribute_ranks = dense_ranks(attribute_rdms)  # permuting an RDM's labels permutes its ranks alike
    n_pp = len(pair_indices(neuron_rdms.shape[0])[0])
    keep = n_pp * len(permutations) * n_attributes <= Y_CACHE_BYTES
    kept: dict[int, torch.Tensor] = {}

    def y_signs(b: int) -> torch.Tensor:  # [nb * n_attr, n_pp] float32, permutation-major rows
        signs = kept.get(b)
        if signs is None:
            signs = rank_signs(permuted_attribute_rdms(attribute_ranks, blocks[b]), torch.int8).T.contiguous()
            if keep:
                kept[b] = signs
        return signs.to(torch.float32)

    sum_2 = np.zeros((n_neurons, n_attributes))
    sum_3 = np.zeros((n_neurons, n_attributes))
    for start in range(0, n_neurons, NULL_NEURON_BLOCK):
        stop = min(start + NULL_NEURON_BLOCK, n_neurons)
        x_signs = rank_signs(dense_ranks(neuron_rdms[:, start:stop]))  # [n_pp, block neurons]
        for b, block in enumerate(blocks):
            s = (y_signs(b) @ x_signs).numpy().astype(np.float64)  # [nb * n_attr, block neurons]
            s = s.reshape(len(block), n_attributes, stop - start)
            sum_2[start:stop] += (s ** 2).sum(axis=0).T
            sum_3[start:stop] += (s ** 3).sum(axis=0).T
            if advance is not None:
                advance((stop - start) * len(block))
    return sum_2 / len(permutations), sum_3 / len(permutations)


def pearson3_p(numerator: np.ndarray, variance: np.ndarray, third: np.ndarray) -> np.ndarray:
    """One-sided (greater) p of S from its null variance and third central moment (mean 0), by the
    Pearson type III distribution with that skewness; NaN where the variance is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(variance)
        z = numerator / sd
        skew = third / sd ** 3
        ok = np.isfinite(z) & np.isfinite(skew)
    p = np.full(np.shape(z), np.nan)
    p[ok] = stats.pearson3.sf(z[ok], skew[ok])
    return p


def searchlight_tau(
    neuron_rdms: np.ndarray, attribute_rdms: np.ndarray, inference: str = "permutation",
    n_perm: int = N_PERMUTATIONS, seed: int = 0, progress: bool = False,
) -> SearchlightStats:
    """Tau-b, one-sided p and q of every neuron RDM [n_pairs, n_neurons] against every attribute
    RDM [n_pairs, n_attributes], with p by `inference` (module docstring). Neuron RDMs are compared
    in their own precision (float32 ties values that differ only beyond 7 digits; float64 is exact)."""
    if inference not in INFERENCES:
        raise ValueError(f"unknown inference {inference!r} (expected one of {INFERENCES})")
    n_neurons = neuron_rdms.shape[1]
    tau = np.empty((n_neurons, attribute_rdms.shape[1]))
    p_asymptotic = np.empty_like(tau)
    numerator = np.empty_like(tau)
    permuting = inference == "permutation"
    with progress_bar("columns") as bar:
        task = bar.add_task("searchlight tau", total=n_neurons, visible=progress)
        for start in range(0, n_neurons, NEURON_BLOCK):
            stop = min(start + NEURON_BLOCK, n_neurons)
            result = kendall_tau(neuron_rdms[:, start:stop], attribute_rdms, variant="b", alternative="greater")
            tau[start:stop], p_asymptotic[start:stop] = result.tau, result.p
            numerator[start:stop] = result.numerator
            bar.advance(task, stop - start)
        null_sd = null_skew = np.full_like(tau, np.nan)
        p = p_asymptotic
        if permuting:
            if n_perm < 2:
                raise ValueError("the permutation inference needs at least 2 permutations")
            permutations = label_permutations(n_items(attribute_rdms.shape[0]), n_perm, seed)
            null_task = bar.add_task(f"null ({n_perm} permutations)", total=n_neurons * n_perm, visible=progress)
            variance, third = permutation_null_moments(neuron_rdms, attribute_rdms, permutations,
                                                       lambda c: bar.advance(null_task, c))
            p = np.where(np.isnan(tau), np.nan, pearson3_p(numerator, variance, third))
            null_sd = np.sqrt(variance)
            with np.errstate(divide="ignore", invalid="ignore"):
                null_skew = third / null_sd ** 3
    return SearchlightStats(tau, p, p_asymptotic, null_sd, null_skew, bh_monotone(p), bh_study(p), inference,
                            n_perm if permuting else 0, seed if permuting else None)


PRECISIONS = ("float64", "float32")


def run_searchlight(
    lake: Lake, run_set: str, study: str, fdr: str = "monotone", alpha: float = 0.01, precision: str = "float64",
    progress: bool = True, inference: str = "permutation", n_perm: int = N_PERMUTATIONS, seed: int = 0,
) -> dict:
    """Searchlight of run set `run_set` against study `study`'s attributes; results replace the
    (run_set, study) partition of `searchlight_results` in one transaction. Returns a summary.

    `inference`: 'permutation' (default; `n_perm` label permutations from `seed`) or 'asymptotic'
    (the study's). `precision` of the neuron RDMs: float64 equals scipy on the exact values;
    float32 is faster and can tie values that differ only beyond float32's 7 digits."""
    if precision not in PRECISIONS:
        raise BadInputError("unknown precision", expected=f"one of {PRECISIONS}", found=precision)
    if fdr not in FDR_MODES:
        raise BadInputError("unknown FDR mode", expected=f"one of {FDR_MODES}", found=fdr)
    if inference not in INFERENCES:
        raise BadInputError("unknown inference", expected=f"one of {INFERENCES}", found=inference)
    if inference == "permutation" and n_perm < 2:
        raise BadInputError("--permutations must be at least 2 for --inference permutation", found=n_perm)
    if not 0 < alpha < 1:
        raise BadInputError("alpha must lie between 0 and 1", found=alpha)
    inputs = snapshot(lake, [("emotion_attributes", f"study={study}"), *run_set_inputs(lake, run_set)])
    profiles = emotion_profiles(lake, run_set)
    attributes = attribute_values(lake, study)
    emotions = shared_emotions(profiles.emotions, attributes.emotions)
    profiles, attributes = profiles.select(emotions), attributes.select(emotions)
    neuron_rdms = feature_rdms(profiles.values).astype(precision)  # [n_pairs, n_neurons]
    attribute_rdms = rdm(attributes.values, "absolute")  # [n_pairs, n_attributes]
    result = searchlight_tau(neuron_rdms, attribute_rdms, inference, n_perm, seed, progress=progress)
    q = result.q_monotone if fdr == "monotone" else result.q_study

    n_neurons, n_attributes = result.tau.shape
    table = pa.table({
        "neuron": np.repeat(profiles.neurons, n_attributes).astype(np.int32),
        "layer": np.repeat(profiles.layers, n_attributes).astype(np.int32),
        "unit": np.repeat(profiles.units, n_attributes).astype(np.int32),
        "attribute": pa.array(np.tile(np.array(attributes.attributes, dtype=object), n_neurons), pa.string()),
        "tau": nullable(result.tau.ravel()), "p": nullable(result.p.ravel()), "q": nullable(q.ravel()),
        "q_monotone": nullable(result.q_monotone.ravel()), "q_study": nullable(result.q_study.ravel()),
        "inference": pa.array([inference] * result.tau.size, pa.string()),
        "p_asymptotic": nullable(result.p_asymptotic.ravel()),
    })
    record = analysis_record(
        "searchlight", params={"fdr": fdr, "alpha": alpha, "method": "tau_b", "alternative": "greater",
                               "neuron_rdm": "absolute difference, mean over runs", "precision": precision,
                               "inference": inference, "n_perm": result.n_perm,
                               "permuted": "emotion labels of the attribute RDMs" if result.n_perm else None},
        seed=result.seed, fdr=fdr, alpha=alpha, run_ids=profiles.run_ids, emotions=emotions,
    )
    command = (f"searchlight --run-set {run_set} --study {study} --inference {inference} --fdr {fdr} --alpha {alpha}"
               + (f" --permutations {n_perm} --seed {seed}" if result.n_perm else ""))
    with lake.transaction(command) as txn:
        txn.write("searchlight_results", table, {"run_set": run_set, "study": study})
        txn.write("analyses", record, {"analysis": "searchlight", "run_set": run_set, "study": study})
        txn.write("result_inputs", inputs, {"analysis": "searchlight", "run_set": run_set, "study": study})

    significant = {mode: (qv < alpha) for mode, qv in (("monotone", result.q_monotone), ("study", result.q_study))}
    per_attribute = {a: int(significant[fdr][:, k].sum()) for k, a in enumerate(attributes.attributes)}
    return {
        "run_set": run_set, "study": study, "runs": len(profiles.run_ids), "emotions": len(emotions),
        "neurons": n_neurons, "attributes": n_attributes, "tests": int(result.tau.size),
        "inference": inference, "permutations": result.n_perm, "seed": result.seed, "fdr": fdr, "alpha": alpha,
        "significant_tests": int(significant[fdr].sum()),
        "significant_neurons": int(significant[fdr].any(axis=1).sum()),
        "selective_neurons": int((significant[fdr].sum(axis=1) == 1).sum()),
        "significant_tests_other_mode": int(significant["study" if fdr == "monotone" else "monotone"].sum()),
        "fraction_p_below_05": float(np.nanmean(result.p < 0.05)),
        "significant_per_attribute": per_attribute,
    }
