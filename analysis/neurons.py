"""Attribute-specific neuron sets: the top-k neurons of each attribute by searchlight tau, over
all layers ('global', the study) or within each layer ('per_layer').

The sets are not copied: `neuron_set_sizes` records which (k, scope) to list, and the
`attribute_neurons` view ranks `searchlight_results` (tau descending, ties by neuron id) and
keeps rank <= k. Re-running the searchlight therefore updates every set.
"""

from __future__ import annotations

import pyarrow as pa

from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake
from emolake.warehouse.lineage import snapshot

from .records import analysis_record

SCOPES = ("global", "per_layer")


def parse_ks(text: str) -> list[int]:
    """'500,1000,4000' -> [500, 1000, 4000] (positive, de-duplicated, sorted)."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise BadInputError("--k must be comma-separated integers", expected="e.g. 500,1000,4000", found=text) from None
    if not ks or ks[0] < 1:
        raise BadInputError("--k values must be positive integers", found=text)
    return ks


def run_neurons(lake: Lake, run_set: str, study: str, ks: list[int], scope: str = "global") -> dict:
    """Record top-k sets for `ks` (added to those already recorded); returns set sizes and overlaps."""
    if scope not in SCOPES:
        raise BadInputError("unknown scope", expected=f"one of {SCOPES}", found=scope)
    inputs = snapshot(lake, [("searchlight_results", f"run_set={run_set}/study={study}")])
    where = f"run_set = '{_quote(run_set)}' AND study = '{_quote(study)}'"
    tested = query(lake, f"SELECT count(DISTINCT neuron) AS n FROM searchlight_results WHERE {where}").column("n")[0].as_py()
    if not tested:
        raise NotFoundError(f"no searchlight results for run set {run_set!r} and study {study!r}",
                            expected=f"`emolake searchlight --run-set {run_set} --study {study}` first")
    if ks[-1] > tested:
        raise BadInputError(f"k = {ks[-1]} exceeds the {tested} neurons tested", expected=f"k <= {tested}")
    old = query(lake, f"SELECT k, scope FROM neuron_set_sizes WHERE {where}").to_pylist()
    sizes = sorted({(r["k"], r["scope"]) for r in old} | {(k, scope) for k in ks})
    table = pa.Table.from_pylist([{"k": k, "scope": s} for k, s in sizes])
    record = analysis_record("neurons", params={"sizes": [list(x) for x in sizes]})
    with lake.transaction(f"neurons --run-set {run_set} --study {study} --k {','.join(map(str, ks))} --scope {scope}") as txn:
        txn.write("neuron_set_sizes", table, {"run_set": run_set, "study": study})
        txn.write("analyses", record, {"analysis": "neurons", "run_set": run_set, "study": study})
        txn.write("result_inputs", inputs, {"analysis": "neurons", "run_set": run_set, "study": study})
    k_list = ",".join(map(str, ks))
    per_attribute = query(lake, f"""
        SELECT attribute, k, count(*) AS n, min(tau) AS min_tau, max(tau) AS max_tau
        FROM attribute_neurons WHERE {where} AND scope = '{scope}' AND k IN ({k_list})
        GROUP BY attribute, k ORDER BY attribute, k
    """).to_pylist()
    overlap = query(lake, f"""
        SELECT k, avg(jaccard) AS mean_jaccard, max(jaccard) AS max_jaccard
        FROM attribute_neuron_overlap WHERE {where} AND scope = '{scope}' AND k IN ({k_list})
        GROUP BY k ORDER BY k
    """).to_pylist()
    return {"run_set": run_set, "study": study, "scope": scope, "k": ks, "neurons_tested": tested,
            "sets": per_attribute, "overlap": overlap}


def _quote(text: str) -> str:
    return text.replace("'", "''")
