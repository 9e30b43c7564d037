"""The Python surface for notebooks, re-exported by `import emolake`: open a lake, query it, read
labelled RDMs and neuron tables as DataFrames, run the analyses, draw the figures.

Everything here calls what the CLI calls (`warehouse.database.query`, `analysis.rsa.run_rsa`,
`analysis.searchlight.run_searchlight`, `analysis.neurons.run_neurons`, the `analysis.report.figures`
drawings) with the CLI's defaults, and reads the same warehouse views SQL users see; nothing is
computed a second way. Tables come back as pandas (default), polars or Arrow (`output=`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd
import pyarrow as pa
from matplotlib.figure import Figure

from emolake.warehouse.database import query as run_query
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import DEFAULT_LAKE, Lake

from .report import figures as plots
from .commands import NEURON_SET_SIZES

Output = Literal["pandas", "polars", "arrow"]
OUTPUTS = ("pandas", "polars", "arrow")


def open_lake(path: str | os.PathLike = DEFAULT_LAKE, *, create: bool = False) -> Lake:
    """The lake at `path` (an emolake lake folder); `create=True` makes an empty one if none is there.

    Raises `NotFoundError` (a `BadInputError`) when `path` holds no lake and `create` is False."""
    lake = Lake(path)
    if create and not lake.exists:
        from emolake.warehouse.database import rebuild_views

        lake.init()
        rebuild_views(lake)
    return lake.require()


def _frame(table: pa.Table, output: Output):
    if output == "pandas":
        return table.to_pandas()
    if output == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if output == "arrow":
        return table
    raise BadInputError("unknown output", column="output", expected=f"one of {OUTPUTS}", found=output)


def query(lake: Lake, sql: str, params: Mapping[str, object] | None = None, *, output: Output = "pandas"):
    """Rows of read-only `sql` over the warehouse views (as `emolake query`; writes are refused).

    `params` are bound by DuckDB to the `$name` placeholders (never pasted into the SQL), e.g.
    `query(lake, "SELECT * FROM runs WHERE run_set = $rs", {"rs": "demo-minilm"})`."""
    if output not in OUTPUTS:
        raise BadInputError("unknown output", column="output", expected=f"one of {OUTPUTS}", found=output)
    return _frame(run_query(lake, sql, dict(params) if params else None), output)


def rdm(lake: Lake, *, run_set: str | None = None, study: str | None = None, attribute: str | None = None,
        metric: str = "correlation", output: Literal["pandas", "polars"] = "pandas"):
    """A labelled square RDM [n_emotions x n_emotions]: emotions (sorted) as index and columns, 0 on
    the diagonal, NaN for a pair the view lacks.

    - `run_set=R`: the model RDM of run set R (view `model_rdm`, `metric` correlation, euclidean or cosine);
    - `study=S`: the human similarity RDM of study S (view `human_rdm`);
    - `study=S, attribute=A`: the attribute RDM |a_i - a_j| of A in S (view `attribute_rdm`).

    pandas frames carry what they are in `.attrs["rdm"]`; polars frames (which have no index) hold
    the emotions in a first column `emotion`."""
    if (run_set is None) == (study is None) or (attribute is not None and study is None):
        raise BadInputError("rdm() takes run_set=, or study= (with attribute= for an attribute RDM)",
                            expected="run_set or study", found={"run_set": run_set, "study": study,
                                                                "attribute": attribute})
    if run_set is not None:
        from .rsa import MODEL_METRICS

        if metric not in MODEL_METRICS:
            raise BadInputError("unknown model RDM metric", column="metric", expected=f"one of {MODEL_METRICS}",
                                found=metric)
        label = {"kind": "model", "run_set": run_set, "metric": metric}
        sql = ("SELECT emotion_a, emotion_b, distance FROM model_rdm WHERE run_set = $run_set "
               "AND metric = $metric")
        params: dict[str, object] = {"run_set": run_set, "metric": metric}
    elif attribute is not None:
        label = {"kind": "attribute", "study": study, "attribute": attribute}
        sql = ("SELECT emotion_a, emotion_b, distance FROM attribute_rdm WHERE study = $study "
               "AND attribute = $attribute")
        params = {"study": study, "attribute": attribute}
    else:
        label = {"kind": "human", "study": study}
        sql = "SELECT emotion_a, emotion_b, distance FROM human_rdm WHERE study = $study"
        params = {"study": study}
    pairs = query(lake, sql, params)
    if pairs.empty:
        raise NotFoundError(f"no {label['kind']} RDM for {', '.join(f'{k} {v!r}' for k, v in label.items() if k != 'kind')}",
                            expected=_how_to_compute(label["kind"]))
    emotions = sorted(set(pairs["emotion_a"]) | set(pairs["emotion_b"]))
    square = pd.DataFrame(plots.pairs_to_square(pairs, emotions),  # [n_emotions, n_emotions]
                          index=pd.Index(emotions, name="emotion"), columns=pd.Index(emotions, name="emotion"))
    square.attrs["rdm"] = label
    if output == "pandas":
        return square
    if output == "polars":
        import polars as pl

        return pl.from_pandas(square.reset_index())
    raise BadInputError("unknown output", column="output", expected="pandas or polars", found=output)


def _how_to_compute(kind: str) -> str:
    return {"model": "a run set with extracted runs (`emolake extract --run-set R`)",
            "human": "similarity judgments of the study (`emolake ingest similarity PATH --study S`)",
            "attribute": "the study's attribute table (`emolake ingest attributes PATH --study S`)"}[kind]


def searchlight(lake: Lake, run_set: str, study: str, *, output: Output = "pandas"):
    """Every neuron x attribute of a stored searchlight (view `searchlight`: tau, p, q, both FDR modes)."""
    table = run_query(lake, "SELECT * FROM searchlight WHERE run_set = $run_set AND study = $study "
                            "ORDER BY neuron, attribute", {"run_set": run_set, "study": study})
    if table.num_rows == 0:
        raise NotFoundError(f"no searchlight results for run set {run_set!r} and study {study!r}",
                            expected=f"`emolake.run_searchlight(lake, {run_set!r}, {study!r})` first")
    return _frame(table, output)


def attribute_neurons(lake: Lake, run_set: str, study: str, *, k: int | None = None, scope: str = "global",
                      output: Output = "pandas"):
    """The top-k neuron sets of each attribute (view `attribute_neurons`), ordered by attribute, k
    and rank; `k=None` gives every recorded k."""
    sql = ("SELECT * FROM attribute_neurons WHERE run_set = $run_set AND study = $study AND scope = $scope"
           + (" AND k = $k" if k is not None else "") + " ORDER BY attribute, k, rank")
    params: dict[str, object] = {"run_set": run_set, "study": study, "scope": scope}
    if k is not None:
        params["k"] = int(k)
    table = run_query(lake, sql, params)
    if table.num_rows == 0:
        raise NotFoundError(f"no attribute neurons for run set {run_set!r}, study {study!r}, scope {scope!r}"
                            + (f", k {k}" if k is not None else ""),
                            expected=f"`emolake.run_neurons(lake, {run_set!r}, {study!r}, k=...)` first")
    return _frame(table, output)


def run_rsa(lake: Lake, study: str, *, run_set: str | None = None, metric: str = "correlation",
            method: str = "tau_b", permutations: int = 10_000, bootstrap: int = 1_000, seed: int = 0,
            attributes_study: str | None = None, progress: bool = True) -> dict:
    """`emolake rsa`: human attribute importance and noise ceiling of `study`, and with `run_set`
    the model-vs-human and model-vs-attribute RSA; stored in the lake, summary returned."""
    from .rsa import run_rsa as rsa

    return rsa(lake.require(), study, run_set, metric, method, permutations, bootstrap, seed, progress=progress,
               attributes_study=attributes_study)


def run_searchlight(lake: Lake, run_set: str, study: str, *, fdr: str = "monotone", alpha: float = 0.01,
                    precision: str = "float64", progress: bool = True) -> dict:
    """`emolake searchlight`: tau, one-sided p and FDR q of every neuron x attribute; stored, summary returned."""
    from .searchlight import run_searchlight as searchlight_run

    return searchlight_run(lake.require(), run_set, study, fdr, alpha, precision, progress=progress)


def run_neurons(lake: Lake, run_set: str, study: str, *, k: str | Sequence[int] = NEURON_SET_SIZES,
                scope: str = "global") -> dict:
    """`emolake neurons`: record top-k neuron sets (k as `"500,1000"` or a list of ints); summary returned."""
    from .neurons import parse_ks, run_neurons as neurons_run

    ks = parse_ks(k if isinstance(k, str) else ",".join(str(int(v)) for v in k))
    return neurons_run(lake.require(), run_set, study, ks, scope)


def plot_rdms(lake: Lake, run_set: str, study: str, *, metric: str = "correlation") -> Figure:
    """The model RDM of `run_set` beside the human RDM of `study` over their shared emotions, both in
    the human RDM's clustering order (the report's first figure)."""
    model = rdm(lake, run_set=run_set, metric=metric)
    human = rdm(lake, study=study)
    emotions = [e for e in human.index if e in set(model.index)]
    if len(emotions) < 3:
        raise BadInputError(f"run set {run_set!r} and study {study!r} share too few emotions",
                            expected="at least 3", found=emotions)
    fig, _ = plots.draw_rdm_pair(model.loc[emotions, emotions].to_numpy(), human.loc[emotions, emotions].to_numpy(),
                                 emotions, model_title=f"model RDM: {run_set} ({metric})",
                                 human_title=f"human RDM: {study}")
    return fig


def plot_mds(rdm_frame: pd.DataFrame, *, seed: int = 0, title: str = "") -> Figure:
    """Metric MDS map (seeded) of a labelled square RDM such as `rdm(...)` returns."""
    emotions = list(rdm_frame.index)
    if list(rdm_frame.columns) != emotions:
        raise BadInputError("plot_mds needs a square RDM with the same emotions as index and columns",
                            expected=emotions, found=list(rdm_frame.columns))
    label = rdm_frame.attrs.get("rdm", {})
    name = ", ".join(f"{v}" for k, v in label.items() if k != "kind")
    fig, _ = plots.draw_mds(rdm_frame.to_numpy(dtype=float), emotions, seed,
                            title=title or f"{label.get('kind', '')} RDM {name} (metric MDS, seed {seed})".strip())
    return fig


def plot_searchlight_counts(lake: Lake, run_set: str, study: str, *, fdr: str | None = None,
                            alpha: float | None = None) -> Figure:
    """Significant and selective neurons per layer and attribute (view `searchlight_counts`), for one
    FDR mode and alpha chosen as the report chooses them."""
    from .report.page import searchlight_panels

    counts = query(lake, "SELECT * FROM searchlight_counts WHERE run_set = $run_set AND study = $study",
                   {"run_set": run_set, "study": study})
    if counts.empty:
        raise NotFoundError(f"no searchlight counts for run set {run_set!r} and study {study!r}",
                            expected=f"`emolake.run_searchlight(lake, {run_set!r}, {study!r})` first")
    panels, _ = searchlight_panels(counts, fdr, alpha)
    return plots.draw_searchlight_counts(panels)
