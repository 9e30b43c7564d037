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

from importlib import metadata as _metadata

# pytest imports a rootdir's __init__.py on its own, as a module named `__init__` outside any
# package, when the checkout's folder name is not an identifier (`emolake-main`): then there is no
# package to import from, and this file defines only the version.
if __package__:
    from .analysis.notebook import (
        attribute_neurons,
        open_lake,
        plot_mds,
        plot_rdms,
        plot_searchlight_counts,
        query,
        rdm,
        run_neurons,
        run_rsa,
        run_searchlight,
        searchlight,
    )
    from .warehouse.errors import BadInputError, EmolakeError, NotFoundError
    from .warehouse.lake import Lake

try:
    __version__ = _metadata.version("emolake")
except _metadata.PackageNotFoundError:  # a clone that was never installed
    __version__ = "unknown"

__all__ = [
    "BadInputError", "EmolakeError", "Lake", "NotFoundError", "__version__", "attribute_neurons", "open_lake",
    "plot_mds", "plot_rdms", "plot_searchlight_counts", "query", "rdm", "run_neurons", "run_rsa",
    "run_searchlight", "searchlight",
]
