"""Results for the terminal (rich tables that fit the width) and as text (JSON, CSV)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from decoderlens.fileio import csv_text, json_text
from decoderlens.presentation.numbers import interval, number
from decoderlens.results import GridOutput, LensOutput, ScoreOutput, TraceOutput

OutputFormat = Literal["table", "json", "csv"]
Column = tuple[str, list[str]]
"""A column: its header and its cells, one per row."""


def fitted_tables(title: str, fixed: Sequence[Column], columns: Sequence[Column], width: int,
                  caption: str | None = None) -> list[Table]:
    """Tables that show ``fixed`` columns and as many of ``columns`` as fit ``width``, continued below."""
    fixed_width = sum(max(len(h), *(len(c) for c in cells)) + 3 for h, cells in fixed) + 1
    groups: list[list[Column]] = [[]]
    used = fixed_width
    for column in columns:
        need = max(len(column[0]), *(len(c) for c in column[1])) + 3
        if groups[-1] and used + need > width:
            groups.append([])
            used = fixed_width
        groups[-1].append(column)
        used += need
    tables = []
    for index, group in enumerate(groups):
        table = Table(title=title if index == 0 else None, title_justify="left", header_style="bold",
                      caption=caption if index == len(groups) - 1 else None, caption_justify="left")
        for header, _ in fixed:
            table.add_column(header, justify="right", style="cyan", no_wrap=True)
        for header, _ in group:
            table.add_column(header, justify="right", no_wrap=True)
        rows = len(fixed[0][1]) if fixed else 0
        for row in range(rows):
            table.add_row(*[cells[row] for _, cells in fixed], *[cells[row] for _, cells in group])
        tables.append(table)
    return tables


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


def score_tables(output: ScoreOutput, width: int = 80) -> list[Table]:
    """Per example: layers x target tokens, each cell the log-prob and rank, split to fit ``width``."""
    tables = []
    for example in output:
        layers = example.layers
        fixed = [("layer", [str(ls.layer) for ls in layers]), ("total", [f"{ls.logprob:.2f}" for ls in layers])]
        tokens = layers[0].tokens if layers else []
        columns = [(token.token, [f"{ls.tokens[i].logprob:.2f} #{ls.tokens[i].rank}" for ls in layers])
                   for i, token in enumerate(tokens)]
        tables += fitted_tables(f"{example.input}  ->  {example.target}", fixed, columns, width,
                                caption="cells: log-prob of the target token #its rank (0 = the top prediction)")
    return tables


def baseline_caption(baselines: dict[str, tuple[float, str]]) -> str:
    """The chance levels of a summary's metrics in one sentence (empty where none has one)."""
    if not baselines:
        return ""
    return "Chance level: " + "; ".join(f"{name} {number(value)} ({label})"
                                        for name, (value, label) in baselines.items()) + "."


def summary_tables(summary: Any, width: int = 80) -> list[Table]:
    """Layers x metrics of an evaluation summary, each cell ``value [low, high]``, split to fit ``width``; with
    raw and tuned lenses, a row per lens under each layer."""
    rows = sorted(((entry.layer, lens, entry) for lens, entries in summary.lens_curves for entry in entries),
                  key=lambda row: (row[0], row[1] != "raw"))
    fixed = [("layer", [str(layer) for layer, _, _ in rows])]
    if len(summary.lens_curves) > 1:
        fixed.append(("lens", [lens for _, lens, _ in rows]))
    fixed.append(("n", [str(entry.n) for _, _, entry in rows]))
    columns = [(name, [interval(e.metrics[name].value, e.metrics[name].low, e.metrics[name].high)
                       if name in e.metrics else "" for _, _, e in rows])
               for name in summary.metric_names]
    caption = " ".join(filter(None, ["cells: value [95% bootstrap interval].",
                                     baseline_caption(summary.baselines())]))
    return fitted_tables(f"{summary.model}: per-layer metrics", fixed, columns, width, caption)


def grid_tables(output: GridOutput, width: int = 80) -> list[Table]:
    """Per example: encoder layers (rows) x decoder layers (columns), each cell the target's log-prob."""
    tables = []
    for example in output:
        rows = sorted({c.encoder_layer for c in example.cells})
        columns = sorted({c.decoder_layer for c in example.cells})
        fixed = [("enc \\ dec", [str(e) for e in rows])]
        cells = [(str(d), [f"{example.cell(e, d).logprob:.2f}" for e in rows]) for d in columns]
        tables += fitted_tables(f"{example.input}  ->  {example.target}", fixed, cells, width,
                                caption="log-prob of the target read through encoder layer (row) and decoder layer "
                                        f"(column; {output.num_decoder_layers} = the real output)")
    return tables


def trace_tables(trace: TraceOutput, width: int = 80) -> list[Table]:
    """Encoder layers (rows) x positions (columns) of restored probability."""
    values = trace.restored
    columns = trace.tokens if values and len(values[0]) == len(trace.tokens) else ["all positions"]
    fixed = [("layer", [str(layer) for layer in range(len(values))])]
    cells = [(str(name), [f"{row[i]:.3f}" for row in values]) for i, name in enumerate(columns)]
    caption = (f"p({trace.answer}): clean {trace.clean_prob:.3g}, corrupted {trace.corrupt_prob:.3g} "
               f"({trace.corruption}); cells: restored")
    return fitted_tables(f"causal trace of {trace.input}", fixed, cells, width, caption)


def render(output: LensOutput | ScoreOutput | GridOutput | TraceOutput, fmt: OutputFormat,
           console: Console | None = None) -> str | None:
    """JSON/CSV text for ``fmt`` json/csv; for ``table``, prints to ``console`` and returns ``None``."""
    if fmt == "json":
        return json_text(output.to_dict())
    if fmt == "csv":
        return csv_text(output.to_records())
    console = console or Console()
    if isinstance(output, TraceOutput):
        tables = trace_tables(output, console.width)
    elif isinstance(output, LensOutput):
        tables = readout_tables(output)
    elif isinstance(output, GridOutput):
        tables = grid_tables(output, console.width)
    else:
        tables = score_tables(output, console.width)
    for table in tables:
        console.print(table)
    return None
