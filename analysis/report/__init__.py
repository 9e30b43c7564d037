"""The product surface over the analyses: figures (`figures`), the HTML page (`page`), its CLI
command (`commands`) and the end-to-end demo (`demo`). The statistics live one level up, in
`analysis/`; nothing there imports from here.

`build_report` is re-exported lazily, so that importing the CLI commands stays cheap.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name in ("build_report", "write_report"):
        from . import page

        return getattr(page, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
