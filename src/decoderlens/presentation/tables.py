"""Rendering results as rich terminal tables, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Literal

from rich.console import Console
from rich.table import Table

from decoderlens.results import LensOutput, ScoreOutput

OutputFormat = Literal["table", "json", "csv"]


def readout_tables(output: LensOutput) -> list[Table]:
    """One table per input: a row per layer with its readout."""
    tables = []
    for example in output:
        table = Table(title=example.input, title_justify="left", show_lines=False, header_style="bold")
        table.add_column("layer", justify="right", style="cyan", no_wrap=True)
        table.add_column("readout")
        for readout in example.readouts:
            marker = " (final)" if readout.layer == output.num_encoder_layers else ""
            table.add_row(f"{readout.layer}{marker}", readout.text or "[dim]<empty>[/dim]")
        tables.append(table)
    return tables


def score_tables(output: ScoreOutput) -> list[Table]:
    """One table per example: layers x target tokens, each cell the log-prob (and rank)."""
    tables = []
    for example in output:
        table = Table(title=f"{example.input}  ->  {example.target}", title_justify="left", header_style="bold")
        table.add_column("layer", justify="right", style="cyan")
        for token in example.layers[0].tokens if example.layers else []:
            table.add_column(token.token, justify="right")
        table.add_column("total", justify="right", style="bold")
        for layer in example.layers:
            cells = [f"{t.logprob:.2f} [dim]#{t.rank}[/dim]" for t in layer.tokens]
            table.add_row(str(layer.layer), *cells, f"{layer.logprob:.2f}")
        tables.append(table)
    return tables


def to_csv(records: list[dict[str, object]]) -> str:
    """Records as CSV text (lists are joined with spaces)."""
    if not records:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
    writer.writeheader()
    for record in records:
        writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in record.items()})
    return buffer.getvalue()


def render(output: LensOutput | ScoreOutput, fmt: OutputFormat, console: Console | None = None) -> str | None:
    """JSON/CSV text for ``fmt`` json/csv; for ``table``, prints to ``console`` and returns ``None``."""
    if fmt == "json":
        return json.dumps(output.to_dict(), ensure_ascii=False, indent=2)
    if fmt == "csv":
        return to_csv(output.to_records())
    console = console or Console()
    tables = readout_tables(output) if isinstance(output, LensOutput) else score_tables(output)
    for table in tables:
        console.print(table)
    return None
