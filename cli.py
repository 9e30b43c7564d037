"""emolake command line: a thin Click layer over the library.

Each command parses its options, calls one library function, and prints the result. Library
errors are named exceptions (`warehouse.errors`) mapped here to exit codes: 0 ok, 2 bad input
(with file, row, column, expected and found in the message), 1 internal error.
"""

from __future__ import annotations

import sys

import click

from warehouse.errors import EmolakeError
from warehouse.lake import DEFAULT_LAKE, LAKE_ENV, Lake

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class EmolakeGroup(click.Group):
    """Turns library errors into one-line messages and exit codes instead of tracebacks."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EmolakeError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted: finished work is kept; run the same command again to resume.", err=True)
            ctx.exit(130)


@click.group(cls=EmolakeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--lake", "lake_path", envvar=LAKE_ENV, default=DEFAULT_LAKE, show_default=True,
              type=click.Path(file_okay=False), help=f"Lake directory (env {LAKE_ENV}).")
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
    from warehouse.database import rebuild_views

    created = lake.init()
    rebuild_views(lake)
    click.echo(f"{'Created' if created else 'Lake already exists at'} {lake.root}")


@cli.command()
@json_option
@pass_lake
def status(lake: Lake, as_json: bool) -> None:
    """Show what the lake holds: rows per view, runs, studies, datasets.

    \b
    Example:
      emolake --lake lake status --json
    """
    from warehouse.console import print_summary
    from warehouse.status import lake_status

    info = lake_status(lake.require())
    if as_json:
        print_summary("status", info, as_json=True)
        return
    print_summary(f"Lake {lake.root}", {k: v for k, v in info.items() if k != "views"})
    print_summary("Rows per view", info["views"])


@cli.command()
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--limit", type=int, default=50, show_default=True, help="Rows shown in table format.")
@pass_lake
def query(lake: Lake, sql: str, fmt: str, limit: int) -> None:
    """Run read-only SQL against the warehouse views (writes are refused).

    \b
    Example:
      emolake --lake lake query "SELECT study, count(*) FROM human_rdm GROUP BY 1" --format csv
    """
    from warehouse.console import print_table
    from warehouse.database import query as run_query

    print_table(run_query(lake, sql), fmt=fmt, limit=limit if fmt == "table" else None)


from ingest.commands import ingest  # noqa: E402
cli.add_command(ingest)
from extract.commands import extract  # noqa: E402
cli.add_command(extract)
from warehouse.commands import export  # noqa: E402
cli.add_command(export)
from warehouse.spark_commands import spark_sql  # noqa: E402
cli.add_command(spark_sql)
from analysis.report_commands import report  # noqa: E402
cli.add_command(report)
from analysis.commands import appraisal, neurons, rsa, searchlight  # noqa: E402
cli.add_command(appraisal)
cli.add_command(rsa)
cli.add_command(searchlight)
cli.add_command(neurons)

from extract.inference_commands import ablate, ablation_stats, infer  # noqa: E402
cli.add_command(infer)
cli.add_command(ablate)
cli.add_command(ablation_stats)
from analysis.demo import demo  # noqa: E402
cli.add_command(demo)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SystemExit as exc:
        sys.exit(exc.code)


if __name__ == "__main__":
    main()
