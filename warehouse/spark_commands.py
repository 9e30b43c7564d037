"""CLI command `spark-sql`: the lake's views on Spark SQL (run a query, or print the transpiled views)."""

from __future__ import annotations

import click

from .lake import Lake

pass_lake = click.make_pass_decorator(Lake)


@click.command("spark-sql")
@click.argument("sql", required=False)
@click.option("--print", "print_views", is_flag=True,
              help="Print every view of sql/ as Spark SQL (CREATE OR REPLACE TEMPORARY VIEW ...) and exit.")
@click.option("--master", default="local[1]", show_default=True, help="Spark master URL.")
@click.option("--root", default=None, metavar="URI",
              help="Where Spark reads the lake's files (default: the lake folder), e.g. s3a://bucket/lake.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format: a table, CSV or JSON.")
@click.option("--limit", type=int, default=50, show_default=True, help="Only the first N: rows shown in table format.")
@pass_lake
def spark_sql(lake: Lake, sql: str | None, print_views: bool, master: str, root: str | None, fmt: str,
              limit: int) -> None:
    """Run read-only SQL over the lake's views on Spark SQL, or print the views transpiled for Spark.

    The views are `sql/*.sql` transpiled from DuckDB's dialect (warehouse/spark.py); their sources
    `lake_<table>` are the lake's committed files. Needs Java and pyspark (`pip install 'emolake[spark]'`).

    \b
    Example:
      emolake --lake lake spark-sql --print
      emolake --lake lake spark-sql "SELECT study, count(*) AS pairs FROM human_rdm GROUP BY study"
    """
    from .errors import BadInputError
    from .spark import query, spark_views

    if print_views:
        click.echo("-- Views of sql/ for Spark SQL; register the sources lake_<table> first:")
        click.echo("--   warehouse.spark.register_sources(spark, Lake(PATH), root=URI)")
        for _, statement in spark_views():
            click.echo(statement + ";")
        return
    if not sql:
        raise BadInputError("give a SQL query, or --print", expected="SQL or --print")
    from .console import print_table

    print_table(query(lake, sql, master=master, root=root), fmt=fmt, limit=limit if fmt == "table" else None)
