"""The study's appraisal components, recomputed from the raw appraisal item ratings.

As the study did: not-applicable answers (-99, stored as NULL) are imputed as 5 (the scale's
midpoint); principal components of the standardised items over raters; the number of components
kept by Horn's parallel analysis (observed eigenvalues above the mean eigenvalues of random
normal data of the same shape, seeded); varimax rotation (Kaiser-normalised, as R's
`stats::varimax`); regression component scores per rater, averaged per emotion. The rotated
components are matched to the study's published six (control, fairness, self-relativity,
other-relativity, expectedness, novelty) by their correlation across emotions with the
published 27 x 14 table: Hungarian assignment on |r|, then a sign flip where r < 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.optimize import linear_sum_assignment

from emolake.warehouse.errors import NotFoundError
from emolake.warehouse.lake import Lake
from emolake.warehouse.lineage import snapshot

from .lake_inputs import fetch, attribute_values
from .records import NO_RUN_SET, analysis_record

PUBLISHED_COMPONENTS = ("control", "fairness", "self-relativity", "other-relativity", "expectedness", "novelty")
NOT_APPLICABLE_IMPUTED = 5.0


@dataclass(frozen=True)
class Components:
    n_components: int
    eigenvalues: np.ndarray  # [n_items] observed, descending
    random_eigenvalues: np.ndarray  # [n_items] mean over the parallel-analysis draws
    loadings: np.ndarray  # [n_items, n_components] varimax-rotated
    scores: np.ndarray  # [n_raters, n_components] regression scores


def parallel_analysis(data: np.ndarray, n_draws: int = 100, seed: int = 0) -> tuple[int, np.ndarray, np.ndarray]:
    """(number kept, observed eigenvalues, mean random eigenvalues) of the item correlation matrix."""
    n, m = data.shape
    observed = np.sort(np.linalg.eigvalsh(np.corrcoef(data, rowvar=False)))[::-1]
    rng = np.random.default_rng(seed)
    random = np.mean([np.sort(np.linalg.eigvalsh(np.corrcoef(rng.normal(size=(n, m)), rowvar=False)))[::-1]
                      for _ in range(n_draws)], axis=0)
    above = observed > random
    kept = int(np.argmin(above)) if not above.all() else m  # the first run of components above chance
    return kept, observed, random


def varimax(loadings: np.ndarray, normalize: bool = True, tol: float = 1e-5, max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Varimax rotation (Kaiser 1958; the algorithm of R's stats::varimax): (rotated [p, k], rotation [k, k])."""
    x = np.asarray(loadings, dtype=np.float64)
    p, k = x.shape
    if k < 2:
        return x.copy(), np.eye(k)
    scale = np.sqrt((x ** 2).sum(axis=1, keepdims=True)) if normalize else np.ones((p, 1))
    x = x / scale
    rotation = np.eye(k)
    criterion = 0.0
    for _ in range(max_iter):
        z = x @ rotation
        u, s, vt = np.linalg.svd(x.T @ (z ** 3 - z @ np.diag((z ** 2).sum(axis=0)) / p))
        rotation = u @ vt
        previous, criterion = criterion, s.sum()
        if criterion < previous * (1 + tol):
            break
    return (x @ rotation) * scale, rotation


def principal_components(data: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Varimax-rotated PCA loadings [n_items, k] and regression scores [n_raters, k] of standardised data."""
    z = (data - data.mean(axis=0)) / data.std(axis=0, ddof=1)
    corr = np.corrcoef(data, rowvar=False)
    values, vectors = np.linalg.eigh(corr)
    order = np.argsort(values)[::-1][:n_components]
    loadings = vectors[:, order] * np.sqrt(values[order])  # [n_items, k]
    rotated, _ = varimax(loadings)
    weights = np.linalg.solve(corr, rotated)  # regression scores: Z R^-1 L
    return rotated, z @ weights


def components(data: np.ndarray, n_draws: int = 100, seed: int = 0, n_components: int | None = None) -> Components:
    """Parallel analysis, PCA and varimax on item ratings [n_raters, n_items] (no missing values)."""
    kept, observed, random = parallel_analysis(data, n_draws, seed)
    k = n_components or kept
    loadings, scores = principal_components(data, k)
    return Components(k, observed, random, loadings, scores)


def match_components(emotion_scores: np.ndarray, published: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match components [n_emotions, k] to published columns [n_emotions, k'] (k >= k').

    Returns (component index per published column, sign per published column, r after the flip).
    """
    k, k_pub = emotion_scores.shape[1], published.shape[1]
    r = np.corrcoef(emotion_scores.T, published.T)[:k, k:]  # [k, k_pub]
    rows, cols = linear_sum_assignment(-np.abs(r))
    index = np.empty(k_pub, dtype=int)
    index[cols] = rows
    signs = np.sign(r[index, np.arange(k_pub)])
    return index, signs, np.abs(r[index, np.arange(k_pub)])


def run_appraisal(lake: Lake, study: str, published_study: str | None = None, n_draws: int = 100, seed: int = 0) -> dict:
    """Recompute the appraisal components of `study` and compare all 14 attributes with the
    published table (`published_study`, default the same study): the six components after
    matching, the eight rated attributes as plain per-emotion means. Writes `appraisal_components`."""
    published_study = published_study or study
    inputs = snapshot(lake, [("ratings", f"study={study}"), ("emotion_attributes", f"study={published_study}")])
    items = fetch(lake, """SELECT rater, emotion, attribute, rating FROM ratings
                            WHERE study = ? AND instrument = 'appraisal' ORDER BY rater, attribute""", [study])
    if items.num_rows == 0:
        raise NotFoundError(f"study {study!r} has no raw appraisal ratings (instrument 'appraisal')")
    raters = sorted(set(items.column("rater").to_pylist()))
    names = sorted(set(items.column("attribute").to_pylist()), key=_item_order)
    data = np.full((len(raters), len(names)), np.nan)
    r_index = {r: i for i, r in enumerate(raters)}
    n_index = {n: i for i, n in enumerate(names)}
    emotion_of = {}
    for rater, emotion, item, rating in zip(*(items.column(c).to_pylist() for c in ("rater", "emotion", "attribute", "rating"))):
        data[r_index[rater], n_index[item]] = NOT_APPLICABLE_IMPUTED if rating is None else rating
        emotion_of[rater] = emotion
    data = np.where(np.isnan(data), NOT_APPLICABLE_IMPUTED, data)
    result = components(data, n_draws, seed)

    published = attribute_values(lake, published_study)
    emotions = published.emotions
    rater_emotion = np.array([emotion_of[r] for r in raters])
    emotion_scores = np.stack([result.scores[rater_emotion == e].mean(axis=0) for e in emotions])  # [n_emotions, k]
    pub_columns = [published.attributes.index(a) for a in PUBLISHED_COMPONENTS]
    index, signs, r = match_components(emotion_scores, published.values[:, pub_columns])

    rated = fetch(lake, """SELECT attribute, emotion, avg(rating) AS value FROM ratings
                            WHERE study = ? AND instrument <> 'appraisal' GROUP BY attribute, emotion""", [study])
    means = {}
    for attribute, emotion, value in zip(*(rated.column(c).to_pylist() for c in ("attribute", "emotion", "value"))):
        means.setdefault(attribute, {})[emotion] = value
    correlation = {}
    rows = []
    for j, name in enumerate(PUBLISHED_COMPONENTS):
        values = signs[j] * emotion_scores[:, index[j]]
        correlation[name] = float(r[j])
        rows += [{"emotion": e, "attribute": name, "value": float(v), "component": int(index[j]),
                  "r_published": float(r[j])} for e, v in zip(emotions, values)]
    for attribute in published.attributes:
        if attribute in means and attribute not in PUBLISHED_COMPONENTS:
            ours = np.array([means[attribute].get(e, np.nan) for e in emotions])
            pub = published.values[:, published.attributes.index(attribute)]
            correlation[attribute] = float(np.corrcoef(ours, pub)[0, 1])
            rows += [{"emotion": e, "attribute": attribute, "value": float(v), "component": -1,
                      "r_published": correlation[attribute]} for e, v in zip(emotions, ours)]
    record = analysis_record("appraisal", params={"n_draws": n_draws, "imputed": NOT_APPLICABLE_IMPUTED,
                                                  "published_study": published_study,
                                                  "n_components": result.n_components}, seed=seed, emotions=emotions)
    with lake.transaction(f"appraisal --study {study} --seed {seed}") as txn:
        txn.write("appraisal_components", pa.Table.from_pylist(rows), {"study": study})
        txn.write("analyses", record, {"analysis": "appraisal", "run_set": NO_RUN_SET, "study": study})
        txn.write("result_inputs", inputs, {"analysis": "appraisal", "run_set": NO_RUN_SET, "study": study})
    return {
        "study": study, "raters": len(raters), "items": len(names), "seed": seed,
        "components_by_parallel_analysis": result.n_components,
        "eigenvalues": [round(float(v), 3) for v in result.eigenvalues[:8]],
        "random_eigenvalues": [round(float(v), 3) for v in result.random_eigenvalues[:8]],
        "r_with_published": {k: round(v, 4) for k, v in correlation.items()},
    }


def _item_order(name: str) -> tuple[int, str]:
    head = name.split("_", 1)[0]
    return (int(head), name) if head.isdigit() else (10 ** 6, name)
