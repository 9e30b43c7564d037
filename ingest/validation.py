"""great-expectations validation of a parsed table before anything is written to the lake.

A suite is a list of `(expectation class name, kwargs)` pairs built by each reader, so that
great-expectations (slow to import) is only imported here, when a load actually runs. The suite runs
on a pandas DataFrame whose index is the file's data row; a failure becomes a `BadInputError` naming the
file, the first failing row, the column, what was expected and what was found. The validation result
JSON is returned so the caller can keep it beside the data (`validation_path`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pandas as pd

from emolake.warehouse.errors import BadInputError
from emolake.warehouse.names import name_from_text

Expectation = tuple[str, dict[str, Any]]


def between(column: str, low: float | None, high: float | None) -> Expectation:
    return "ExpectColumnValuesToBeBetween", {"column": column, "min_value": low, "max_value": high}


def in_set(column: str, values: Sequence[str]) -> Expectation:
    return "ExpectColumnValuesToBeInSet", {"column": column, "value_set": sorted(set(values))}


def not_null(column: str) -> Expectation:
    return "ExpectColumnValuesToNotBeNull", {"column": column}


def unique_together(*columns: str) -> Expectation:
    if len(columns) == 1:
        return "ExpectColumnValuesToBeUnique", {"column": columns[0]}
    return "ExpectCompoundColumnsToBeUnique", {"column_list": list(columns)}


def matches(column: str, regex: str) -> Expectation:
    return "ExpectColumnValuesToMatchRegex", {"column": column, "regex": regex}


def row_count_between(low: int, high: int | None = None) -> Expectation:
    return "ExpectTableRowCountToBeBetween", {"min_value": low, "max_value": high}


def columns_exist(columns: Sequence[str]) -> Expectation:
    return "ExpectTableColumnsToMatchSet", {"column_set": list(columns), "exact_match": False}


# Optional engines great-expectations imports when they are installed, though emolake validates
# pandas frames only: pyspark (installed for the Spark views) takes seconds and, under pandas 3,
# prints a FutureWarning on every validated ingest. Hidden while great-expectations is imported.
UNUSED_GX_ENGINES = ("pyspark",)


@contextlib.contextmanager
def _hidden_modules(names: Sequence[str]):
    """Make `import name` fail (ImportError) inside the block for modules not imported yet; restored after."""
    hidden = [n for n in names if n not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable" marker
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


@lru_cache(maxsize=1)
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    with _hidden_modules(UNUSED_GX_ENGINES):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, context


def run_suite(frame: pd.DataFrame, suite: Sequence[Expectation], *, name: str) -> dict:
    """Run `suite` on `frame` and return the result as a JSON-able dict (nothing raised)."""
    with _hidden_modules(UNUSED_GX_ENGINES):  # its lazy imports too
        return _run_suite(frame, suite, name)


def _run_suite(frame: pd.DataFrame, suite: Sequence[Expectation], name: str) -> dict:
    gx, context = _context()
    key = f"{name}-{len(context.data_sources.all())}"
    source = context.data_sources.add_pandas(name=key)
    batch = source.add_dataframe_asset(name=key).add_batch_definition_whole_dataframe(key).get_batch(
        batch_parameters={"dataframe": frame}
    )
    expectation_suite = gx.ExpectationSuite(name=name)
    for kind, kwargs in suite:
        expectation_suite.add_expectation(getattr(gx.expectations, kind)(**kwargs))
    result = batch.validate(expectation_suite, result_format="SUMMARY").to_json_dict()
    context.data_sources.delete(key)
    return result


def validate(frame: pd.DataFrame, suite: Sequence[Expectation], *, name: str, file: str,
             describe: dict[str, str] | None = None) -> dict:
    """Run `suite`; raise a BadInputError for the first failed expectation, else return the result.

    `describe` maps a column to how the user would name what it must hold ("a rating between 1 and 9").
    """
    result = run_suite(frame, suite, name=name)
    if not result["success"]:
        raise _first_failure(result, file, describe or {})
    return result


def _first_failure(result: dict, file: str, describe: dict[str, str]) -> BadInputError:
    failed = [r for r in result["results"] if not r["success"]]

    def first_row(r: dict) -> float:  # report the failure nearest the top of the file
        rows = r.get("result", {}).get("partial_unexpected_index_list") or []
        return min(rows) if rows else float("inf")

    failure = min(failed, key=first_row)
    config = failure["expectation_config"]
    kind, kwargs = config["type"], config["kwargs"]
    outcome = failure.get("result", {})
    rows = outcome.get("partial_unexpected_index_list") or []
    values = outcome.get("partial_unexpected_list") or []
    column = kwargs.get("column") or "-".join(kwargs.get("column_list") or []) or None
    exception = (failure.get("exception_info") or {}).get("exception_message")
    what, expected = _describe(kind, kwargs)
    expected = describe.get(column or "", expected)
    row = int(rows[0]) if rows else None
    found: object = values[0] if values else outcome.get("observed_value")
    if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique") and len(rows) >= 2:
        row = int(rows[1])  # the repeat, not the first occurrence
        shown = values[1] if isinstance(values[1], dict) else {column: values[1]}
        found = ", ".join(f"{k}={v}" for k, v in shown.items()) + f" (also at row {rows[0]})"
    message = f"{what} (great-expectations {kind}" + (f": {exception}" if exception else "") + ")"
    return BadInputError(message, file=file, row=row, column=column, expected=expected, found=found)


def _describe(kind: str, kwargs: dict) -> tuple[str, str]:
    """(what went wrong, what was expected) in the user's words, for one failed expectation."""
    if kind == "expect_column_values_to_be_between":
        return "value out of range", f"a value between {kwargs.get('min_value')} and {kwargs.get('max_value')}"
    if kind == "expect_column_values_to_be_in_set":
        values = kwargs.get("value_set") or []
        shown = ", ".join(map(str, values[:30])) + (" ..." if len(values) > 30 else "")
        return f"unknown {kwargs.get('column')}", f"one of {shown}"
    if kind == "expect_column_values_to_not_be_null":
        return "missing value", "a value (not empty)"
    if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"):
        columns = kwargs.get("column_list") or [kwargs.get("column")]
        return f"duplicate {'-'.join(columns)}", f"each {'-'.join(columns)} once"
    if kind == "expect_column_values_to_match_regex":
        return "malformed value", f"text matching {kwargs.get('regex')}"
    if kind == "expect_table_row_count_to_be_between":
        return "wrong number of rows", f"between {kwargs.get('min_value')} and {kwargs.get('max_value')} rows"
    if kind == "expect_table_columns_to_match_set":
        return "missing column", f"columns {kwargs.get('column_set')}"
    return "failed check", kind


def validation_path(table: str, partition: str, load_id: str, part: str = "") -> str:
    """Where a load's validation result lives in the lake: validation/<table>/<partition>/<load_id>[-part].json.

    `part` may come from a file name, so it is turned into a valid name (`warehouse.names`).
    """
    suffix = f"-{name_from_text(part)}" if part else ""
    return f"validation/{table}/{partition}/{load_id}{suffix}.json"
