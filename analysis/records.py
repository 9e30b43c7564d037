"""The `analyses` row written beside every stored result: what was computed, with which
parameters and seed, over which runs and emotions."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pyarrow as pa

from emolake.warehouse.tables import TABLES
from emolake.warehouse.version import code_version

NO_RUN_SET = "none"  # run_set partition value of analyses that use human data only


def analysis_record(
    analysis: str, *, params: dict, seed: int | None = None, fdr: str | None = None, alpha: float | None = None,
    run_ids: list[str] | None = None, emotions: list[str] | None = None,
) -> pa.Table:
    """One `analyses` row (partition keys analysis/run_set/study are given to `txn.write`)."""
    row = {
        "analysis_id": f"{analysis}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        "params": json.dumps(params, sort_keys=True, default=str), "seed": seed, "fdr": fdr, "alpha": alpha,
        "run_ids": json.dumps(run_ids or []), "n_emotions": len(emotions or []), "emotions": json.dumps(emotions or []),
        "created_at": datetime.now(timezone.utc), "code_version": code_version(),
    }
    return pa.Table.from_pylist([row], schema=TABLES["analyses"].schema)


def nullable(values) -> pa.Array:
    """float64 Arrow array with NaN stored as NULL (so SQL sorts and counts them as missing)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, mask=np.isnan(values), type=pa.float64())
