"""Results as tables: one description per table (``TableSpec``) drawn as rich tables that fit the terminal, as
compact HTML for notebooks, and results as text (JSON, CSV)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.table import Table

from decoderlens.presentation.numbers import fixed, interval, number
from decoderlens.results import GridOutput, LanguageOutput, LensOutput, ScoreOutput, TraceOutput

OutputFormat = Literal["table", "json", "csv"]
Column = tuple[str, list[str]]
"""A column: its header and its cells, one per row."""


@dataclass
class TableSpec:
    """One table: ``fixed`` columns (row labels) and data ``columns``, with a title and caption; ``shades`` (one
    0-1 value per data cell, column by column) tints the HTML cells like a heatmap."""

    title: str
    fixed: list[Column]
    columns: list[Column]
    caption: str = ""
    shades: list[list[float]] | None = field(default=None)


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


def rich_tables(specs: list[TableSpec], width: int = 100) -> list[Table]:
    """Specs as rich tables that fit ``width`` (wide ones continue below)."""
    return [table for spec in specs for table in fitted_tables(spec.title, spec.fixed, spec.columns, width,
                                                               spec.caption or None)]


def html_tables(specs: list[TableSpec]) -> str:
    """Specs as compact, script-free HTML tables (notebook display), shaded cells where the spec has shades."""
    parts = ['<div class="decoderlens">']
    for spec in specs:
        parts.append('<table style="border-collapse:collapse;font-size:12px;margin:6px 0">')
        parts.append(f'<caption style="text-align:left;font-weight:600;caption-side:top">{html.escape(spec.title)}'
                     "</caption><thead><tr>")
        parts += [f'<th style="text-align:right;padding:2px 6px">{html.escape(h)}</th>'
                  for h, _ in [*spec.fixed, *spec.columns]]
        parts.append("</tr></thead><tbody>")
        rows = len(spec.fixed[0][1]) if spec.fixed else 0
        for row in range(rows):
            parts.append("<tr>")
            parts += [f'<th style="text-align:right;padding:2px 6px;color:#0072B2">{html.escape(cells[row])}</th>'
                      for _, cells in spec.fixed]
            for index, (_, cells) in enumerate(spec.columns):
                style = "text-align:right;padding:2px 6px;font-variant-numeric:tabular-nums"
                if spec.shades is not None:
                    share = min(1.0, max(0.0, spec.shades[index][row]))
                    style += f";background:rgba(0,114,178,{0.06 + 0.88 * share:.3f})"
                    style += ";color:#fff" if share > 0.6 else ""
                parts.append(f'<td style="{style}" dir="auto">{html.escape(cells[row])}</td>')
            parts.append("</tr>")
        parts.append("</tbody></table>")
        if spec.caption:
            parts.append(f'<div style="color:#5b6577;font-size:11px">{html.escape(spec.caption)}</div>')
    parts.append("</div>")
    return "".join(parts)


def readout_specs(output: LensOutput) -> list[TableSpec]:
    """One table per input: a row per layer with its readout."""
    return [TableSpec(example.input,
                      [("layer", [f"{r.layer}{' (final)' if r.layer == output.num_encoder_layers else ''}"
                                  for r in example.readouts])],
                      [("readout", [r.text or "<empty>" for r in example.readouts])])
            for example in output]


def readout_tables(output: LensOutput) -> list[Table]:
    """One rich table per input: a row per layer with its readout (left-aligned, wrapping)."""
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


def score_specs(output: ScoreOutput) -> list[TableSpec]:
    """Per example: layers x target tokens, each cell the log-prob and rank (shaded by probability)."""
    specs = []
    for example in output:
        layers = example.layers
        fixed_columns = [("layer", [str(ls.layer) for ls in layers]),
                         ("total", [fixed(ls.logprob, 2) for ls in layers])]
        tokens = layers[0].tokens if layers else []
        columns = [(token.token, [f"{fixed(ls.tokens[i].logprob, 2)} #{ls.tokens[i].rank}" for ls in layers])
                   for i, token in enumerate(tokens)]
        shades = [[math.exp(ls.tokens[i].logprob) for ls in layers] for i in range(len(tokens))]
        specs.append(TableSpec(f"{example.input}  ->  {example.target}", fixed_columns, columns,
                               "cells: log-prob of the target token #its rank (0 = the top prediction)", shades))
    return specs


def score_tables(output: ScoreOutput, width: int = 80) -> list[Table]:
    """Per example: layers x target tokens, split to fit ``width``."""
    return rich_tables(score_specs(output), width)


def baseline_caption(baselines: dict[str, tuple[float, str]]) -> str:
    """The chance levels of a summary's metrics in one sentence (empty where none has one)."""
    if not baselines:
        return ""
    return "Chance level: " + "; ".join(f"{name} {number(value)} ({label})"
                                        for name, (value, label) in baselines.items()) + "."


def summary_specs(summary: Any) -> list[TableSpec]:
    """Layers x metrics of an evaluation summary, each cell ``value [low, high]``; with raw and tuned lenses, a row
    per lens under each layer."""
    rows = sorted(((entry.layer, lens, entry) for lens, entries in summary.lens_curves for entry in entries),
                  key=lambda row: (row[0], row[1] != "raw"))
    fixed_columns = [("layer", [str(layer) for layer, _, _ in rows])]
    if len(summary.lens_curves) > 1:
        fixed_columns.append(("lens", [lens for _, lens, _ in rows]))
    fixed_columns.append(("n", [str(entry.n) for _, _, entry in rows]))
    columns = [(name, [interval(e.metrics[name].value, e.metrics[name].low, e.metrics[name].high)
                       if name in e.metrics else "" for _, _, e in rows])
               for name in summary.metric_names]
    caption = " ".join(filter(None, ["cells: value [95% bootstrap interval].",
                                     baseline_caption(summary.baselines())]))
    return [TableSpec(f"{summary.model}: per-layer metrics", fixed_columns, columns, caption)]


def summary_tables(summary: Any, width: int = 80) -> list[Table]:
    """An evaluation summary's table, split to fit ``width``."""
    return rich_tables(summary_specs(summary), width)


def grid_table_specs(output: GridOutput) -> list[TableSpec]:
    """Per example: encoder layers (rows) x decoder layers (columns), each cell the target's log-prob."""
    specs = []
    for example in output:
        rows = sorted({c.encoder_layer for c in example.cells})
        columns = sorted({c.decoder_layer for c in example.cells})
        values = [[example.cell(e, d).logprob for e in rows] for d in columns]
        low, high = min(min(v) for v in values), max(max(v) for v in values)
        shades = [[(v - low) / (high - low) if high > low else 1.0 for v in column] for column in values]
        specs.append(TableSpec(f"{example.input}  ->  {example.target}", [("enc \\ dec", [str(e) for e in rows])],
                               [(str(d), [fixed(v, 2) for v in column]) for d, column in zip(columns, values,
                                                                                           strict=True)],
                               "log-prob of the target read through encoder layer (row) and decoder layer "
                               f"(column; {output.num_decoder_layers} = the real output)", shades))
    return specs


def grid_tables(output: GridOutput, width: int = 80) -> list[Table]:
    """The 2-D lens of every example, split to fit ``width``."""
    return rich_tables(grid_table_specs(output), width)


def trace_specs(trace: TraceOutput) -> list[TableSpec]:
    """Encoder layers (rows) x positions (columns) of restored probability."""
    values = trace.restored
    columns = trace.tokens if values and len(values[0]) == len(trace.tokens) else ["all positions"]
    top = max([trace.clean_prob, *(v for row in values for v in row)]) or 1.0
    caption = (f"p({trace.answer}): clean {number(trace.clean_prob)}, corrupted {number(trace.corrupt_prob)} "
               f"({trace.corruption}); cells: the answer's probability with that state restored")
    return [TableSpec(f"causal trace of {trace.input}", [("layer", [str(layer) for layer in range(len(values))])],
                      [(str(name), [fixed(row[i], 3) for row in values]) for i, name in enumerate(columns)],
                      caption, [[row[i] / top for row in values] for i in range(len(columns))])]


def trace_tables(trace: TraceOutput, width: int = 80) -> list[Table]:
    """A causal trace, split to fit ``width``."""
    return rich_tables(trace_specs(trace), width)


def language_specs(output: LanguageOutput) -> list[TableSpec]:
    """Per input: the language each layer detects, its probability and the runners-up."""
    return [TableSpec(example.input, [("layer", [str(ll.layer) for ll in example.layers])],
                      [("language", [ll.language for ll in example.layers]),
                       ("probability", [fixed(ll.probability, 3) for ll in example.layers]),
                       ("runners-up", [", ".join(f"{g.language} {fixed(g.probability, 3)}" for g in ll.runners_up)
                                       for ll in example.layers])],
                      "the language the decoder names first when it reads each layer (probability among the "
                      "model's languages)", [[ll.probability for ll in example.layers], [0.0] * len(example.layers),
                                             [0.0] * len(example.layers)])
            for example in output]
