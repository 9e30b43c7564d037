"""Every view that reads a lake table's files reads only committed ones (docs/RELIABILITY.md)."""

from __future__ import annotations

import re

from emolake.warehouse.database import sql_files
from emolake.warehouse.tables import TABLES

READ = re.compile(r"read_parquet\('(?P<table>[a-z_]+)/(?P<glob>[^']*)'(?P<rest>.*?);", re.S)


def test_every_read_of_a_lake_table_filters_on_the_live_files():
    reads = []
    for name, text in sql_files():
        for match in READ.finditer(text):
            table = match["table"]
            if table == "_commits":
                continue
            assert table in TABLES, f"sql/{name} reads {table}/, which is not a lake table"
            depth = match["glob"].count("/") + 2  # the path in the lake: table folder, partitions, file
            live = f"_lake_path(filename, {depth}) IN (SELECT path FROM _live_files WHERE table_name = '{table}')"
            assert live in match["rest"], f"sql/{name}: {table} is read without the commit-log filter `{live}`"
            reads.append(table)
    assert set(reads) == set(TABLES), f"tables without a view: {sorted(set(TABLES) - set(reads))}"
