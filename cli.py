"""emolake command line: a thin Click layer over the library.

Each command parses its options, calls one library function, and prints the result. Library
errors are named exceptions (`emolake.warehouse.errors`) mapped here to exit codes: 0 ok, 2 bad input
(with file, row, column, expected and found in the message), 1 internal error.
"""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path

if __name__ == "__main__" and "emolake" not in sys.modules:
    # `python cli.py` from a clone: bind the package name `emolake` to this checkout, installed or not.
    import importlib.util

    _root = Path(__file__).resolve().parent
    _spec = importlib.util.spec_from_file_location("emolake", _root / "__init__.py",
                                                   submodule_search_locations=[str(_root)])
    sys.modules["emolake"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["emolake"])

import click

from emolake.warehouse.errors import BadInputError, DiskFullError, EmolakeError
from emolake.warehouse.lake import DEFAULT_LAKE, LAKE_ENV, Lake
from emolake.warehouse.names import guard_name_options

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class EmolakeGroup(click.Group):
    """Turns library errors into one-line messages and exit codes instead of tracebacks."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EmolakeError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # a full disk anywhere else: one line naming the path, not a traceback
            if exc.errno != errno.ENOSPC:
                raise
            where = exc.filename or (ctx.obj.root if isinstance(ctx.obj, Lake) else "the output")
            click.echo(f"Error: {DiskFullError(where)}", err=True)
            ctx.exit(EXIT_INTERNAL)
        except KeyboardInterrupt:
            click.echo("Interrupted: finished work is kept; run the same command again to resume.", err=True)
            ctx.exit(130)


@click.group(cls=EmolakeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--lake", "lake_path", envvar=LAKE_ENV, default=DEFAULT_LAKE, show_default=True,
              type=click.Path(file_okay=False), help=f"Lake directory, or s3://bucket/prefix on any S3-compatible store "
              f"(credentials and endpoint from the AWS environment and config files) (env {LAKE_ENV}).")
@click.version_option(package_name="emolake")
@click.pass_context
def cli(ctx: click.Context, lake_path: str) -> None:
    """emolake: emotion-concept knowledge in transformer language models, as a queryable data lake.

    \b
    Example:
      emolake --lake lake init
      emolake --lake lake ingest goemotions ../shared/data/goemotions
      emolake --lake lake query "SELECT emotion, count(*) FROM stimuli GROUP BY 1"
    """
    ctx.obj = Lake(lake_path)


pass_lake = click.make_pass_decorator(Lake)


def json_option(fn):
    """`--json`: print the command's summary as one JSON object."""
    return click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(fn)


@cli.command()
@pass_lake
def init(lake: Lake) -> None:
    """Create an empty lake (folders, seed files, warehouse views). Idempotent.

    \b
    Example:
      emolake --lake lake init
    """
    from emolake.warehouse.database import rebuild_views

    created = lake.init()
    rebuild_views(lake)
    click.echo(f"{'Created' if created else 'Lake already exists at'} {lake.root}")


@cli.command()
@json_option
@pass_lake
def status(lake: Lake, as_json: bool) -> None:
    """Show what the lake holds: rows per table, runs, studies, datasets, stale results and marts.

    Counts come from the commit log, not from scanning views, so it answers in about a second.

    \b
    Example:
      emolake --lake lake status --json
    """
    from emolake.warehouse.console import print_summary
    from emolake.warehouse.status import lake_status

    info = lake_status(lake.require())
    if as_json:
        print_summary("status", info, as_json=True)
        return
    print_summary(f"Lake {lake.root}", {k: v for k, v in info.items() if k != "rows"})
    print_summary("Rows per table", info["rows"])


@cli.command()
@click.option("--run-set", default=None, help="Run set: only this one's marts [default: every run set].")
@click.option("--force", is_flag=True, help="Redo every step, even those the lake already holds: fresh marts are rebuilt too.")
@json_option
@pass_lake
def refresh(lake: Lake, run_set: str | None, force: bool, as_json: bool) -> None:
    """Rebuild the materialised marts (model_rdm) that are stale or missing.

    Commands that change a mart's inputs rebuild it themselves; this is for lakes written by an
    older emolake, after a failed or interrupted rebuild, or after the view definitions changed.

    \b
    Example:
      emolake --lake lake refresh
      emolake --lake lake refresh --run-set li2024-roberta --force --json
    """
    from emolake.warehouse.console import print_summary
    from emolake.warehouse.marts import refresh as refresh_marts

    built = refresh_marts(lake.require(), None if run_set is None else [run_set], force=force, progress=not as_json)
    summary = {f"{b['mart']} run_set={b['run_set']}": f"{b['rows']} rows in {b['seconds']} s" for b in built}
    if as_json:
        print_summary("refresh", {"built": built}, as_json=True)
        return
    print_summary("Marts rebuilt" if built else "Every mart is fresh", summary)


PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parameters(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, str]:
    """`-p name=value` pairs -> {name: value}, bound by DuckDB as `$name` (never pasted into the SQL)."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not PARAMETER_NAME.fullmatch(name):
            raise click.BadParameter(f"expected name=value with a name of letters, digits and _, found {pair[:200]!r}",
                                     ctx, param)
        if name in values:
            raise click.BadParameter(f"parameter {name!r} given twice", ctx, param)
        values[name] = value
    return values


def _read_sql(sql: str | None, sql_file: str | None) -> str:
    """The SQL text: the argument, `-` for stdin, or `--file PATH` (exactly one of them)."""
    if (sql is None) == (sql_file is None):
        raise click.UsageError("give the SQL as an argument, as - to read it from stdin, or with --file PATH "
                               "(exactly one)")
    if sql_file is not None:
        try:
            return Path(sql_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise BadInputError("the SQL file is not UTF-8 text", file=sql_file, expected="UTF-8",
                                found=f"byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start}") from None
    return sys.stdin.read() if sql == "-" else sql


@cli.command()
@click.argument("sql", required=False)
@click.option("--file", "sql_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Read the SQL from this file.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", callback=_parameters,
              help="Query parameter, used in the SQL as $NAME and bound by DuckDB, never pasted into the SQL "
                   "(repeatable; values are text, cast by DuckDB where the SQL compares them).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "ndjson"]), default="table",
              show_default=True, help="Output format: a table, CSV, one JSON array, or one JSON object per line.")
@click.option("--limit", type=click.IntRange(0), default=50, show_default=True,
              help="Only the first N: rows shown in table format (csv, json and ndjson print every row).")
@pass_lake
def query(lake: Lake, sql: str | None, sql_file: str | None, params: dict[str, str], fmt: str, limit: int) -> None:
    """Run read-only SQL against the warehouse views (writes are refused).

    SQL is the argument, `-` (read from stdin) or `--file PATH`; `-p name=value` binds `$name`.

    \b
    Example:
      emolake --lake lake query "SELECT study, count(*) FROM human_rdm GROUP BY 1" --format csv
      emolake --lake lake query 'SELECT run_id, status FROM runs WHERE run_set = $rs' -p rs=demo-minilm --format ndjson
    """
    from emolake.warehouse.console import print_table
    from emolake.warehouse.database import query as run_query

    text = _read_sql(sql, sql_file)
    unused = [name for name in params if not re.search(rf"\${name}\b", text)]
    if unused:
        raise BadInputError(f"parameters not used by the query: {', '.join(unused)}", column="-p/--param",
                            expected=" and ".join(f"${name}" for name in unused) + " in the SQL")
    print_table(run_query(lake, text, params), fmt=fmt, limit=limit if fmt == "table" else None)


from emolake.ingest.commands import ingest  # noqa: E402
cli.add_command(ingest)
from emolake.extract.commands import extract  # noqa: E402
cli.add_command(extract)
from emolake.warehouse.commands import export  # noqa: E402
cli.add_command(export)
from emolake.warehouse.spark_commands import spark_sql  # noqa: E402
cli.add_command(spark_sql)
from emolake.analysis.report.commands import report  # noqa: E402
cli.add_command(report)
from emolake.analysis.commands import appraisal, compare, neurons, rsa, searchlight  # noqa: E402
cli.add_command(appraisal)
cli.add_command(rsa)
cli.add_command(searchlight)
cli.add_command(neurons)
cli.add_command(compare)

from emolake.extract.inference.commands import ablate, ablation_stats, infer  # noqa: E402
cli.add_command(infer)
cli.add_command(ablate)
cli.add_command(ablation_stats)
from emolake.extract.protocol_commands import protocol  # noqa: E402
cli.add_command(protocol)
from emolake.analysis.report.demo import demo  # noqa: E402
cli.add_command(demo)
guard_name_options(cli)  # every flag whose value becomes a partition or file name: one check, naming the flag


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SystemExit as exc:
        sys.exit(exc.code)


if __name__ == "__main__":
    main()
