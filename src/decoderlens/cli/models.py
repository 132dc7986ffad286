"""``decoderlens models``: the models that ship with decoderlens, by the short name every command accepts."""

from __future__ import annotations

from decoderlens.cli.common import FormatChoice, FormatOpt, emit
from decoderlens.fileio import csv_text, json_text
from decoderlens.shipped import SHIPPED


def models_command(fmt: FormatOpt = FormatChoice.table) -> None:
    """List the models that ship inside the package (use the name in place of a Hub name or folder)."""
    rows = [{"name": m.name, "description": m.description, "path": str(m.path)} for m in SHIPPED.values()]
    if fmt is FormatChoice.json:
        emit(json_text(rows), None)
    elif fmt is FormatChoice.csv:
        emit(csv_text(rows), None)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Models that ship with decoderlens")
        for column in ("name", "what it is", "folder"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(row["name"], row["description"], row["path"])
        Console().print(table)
