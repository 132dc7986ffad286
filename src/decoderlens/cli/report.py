"""``decoderlens report`` and ``decoderlens plot``: look at an evaluation folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decoderlens.cli.common import err_console, friendly_errors


def report(
    folder: Annotated[Path, typer.Argument(help="Evaluation folder (readouts.jsonl, summary.json).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file [default: FOLDER/report.html].",
                                                show_default=False)] = None,
) -> None:
    """Write a self-contained HTML report (opens offline) of an evaluation folder."""
    from decoderlens.presentation.report import write_report

    with friendly_errors():
        err_console.print(f"wrote {write_report(folder, output)}", highlight=False)


def plot(
    folder: Annotated[Path, typer.Argument(help="Evaluation folder.")],
    fmt: Annotated[str, typer.Option("--figure-format", help="png, svg or pdf.")] = "png",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the figures [default: "
                                             "FOLDER/figures].", show_default=False)] = None,
) -> None:
    """Write paper-ready figures: metric curves with confidence bands, and score heatmaps."""
    from decoderlens.presentation.plots import write_plots

    with friendly_errors():
        for path in write_plots(folder, fmt, out):
            err_console.print(f"wrote {path}", highlight=False)
