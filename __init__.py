"""emolake: emotion-concept knowledge in language models, as a Parquet lake with DuckDB views.

The Python surface for notebooks (the CLI is `emolake ...` / `python cli.py ...`)::

    import emolake
    lake = emolake.open_lake("lake")
    emolake.query(lake, "SELECT study, count(*) AS n FROM human_rdm GROUP BY study")
    emolake.rdm(lake, study="li2024")                 # labelled square DataFrame
    emolake.run_searchlight(lake, "demo-minilm", "li2024")
    emolake.plot_rdms(lake, "demo-minilm", "li2024")  # matplotlib Figure

Tables come back as pandas DataFrames (or polars / Arrow with `output=`); see the README's
"Python API" section. The implementation lives in `analysis/notebook.py`.
"""

from importlib import import_module as _import_module
from importlib import metadata as _metadata

# Names are loaded on first use (PEP 562), so `import emolake.warehouse.lake` (and so the CLI)
# does not pay for pandas, polars and matplotlib.
_EXPORTS = {
    **{name: "analysis.notebook" for name in (
        "attribute_neurons", "open_lake", "plot_mds", "plot_rdms", "plot_searchlight_counts", "query", "rdm",
        "run_neurons", "run_rsa", "run_searchlight", "searchlight")},
    "BadInputError": "warehouse.errors", "EmolakeError": "warehouse.errors", "NotFoundError": "warehouse.errors",
    "Lake": "warehouse.lake",
}


def __getattr__(name: str):
    # pytest may import a rootdir's __init__.py on its own, outside any package (a checkout folder
    # whose name is not an identifier): then there is nothing to import from.
    if name in _EXPORTS and __package__:
        return getattr(_import_module(f".{_EXPORTS[name]}", __package__), name)
    raise AttributeError(f"module 'emolake' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


try:
    __version__ = _metadata.version("emolake")
except _metadata.PackageNotFoundError:  # a clone that was never installed
    __version__ = "unknown"

__all__ = ["__version__", *sorted(_EXPORTS)]
