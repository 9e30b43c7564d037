"""CLI commands over the warehouse as a whole: `export` (a table or view to a file for R and others)."""

from __future__ import annotations

import click

from .lake import Lake

pass_lake = click.make_pass_decorator(Lake)


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "arrow"]), default="parquet",
              show_default=True, help="Output format: parquet (zstd), csv, or arrow (Arrow IPC file, .arrow/.feather).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output path: the file to write.")
@click.option("--where", default=None, metavar="SQL", help="Keep only rows matching this SQL condition.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_lake
def export(lake: Lake, name: str, fmt: str, out: str, where: str | None, as_json: bool) -> None:
    """Export table or view NAME to one file (Parquet, CSV or Arrow IPC).

    Partition keys become ordinary typed columns; no float16 columns; the same schema reads back
    in pyarrow, polars and R's arrow. Rows stream, so large tables export in flat memory.

    \b
    Example:
      emolake --lake lake export human_rdm --format parquet --out human_rdm.parquet
      emolake --lake lake export stimuli --format csv --out test.csv --where "split = 'test'"
      emolake --lake lake export emotion_attributes --format arrow --out attributes.arrow --json
    """
    from .console import print_summary
    from .export import export as run_export

    summary = run_export(lake.require(), name, fmt, out, where)
    if as_json:
        print_summary("export", summary, as_json=True)
        return
    click.echo(f"Wrote {summary['rows']:,} rows of {name} to {summary['path']} ({fmt})")
