"""``decoderlens compare``: two evaluation folders side by side, with paired differences per layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decoderlens.cli.common import FormatChoice, FormatOpt, emit, err_console, friendly_errors
from decoderlens.errors import InputError
from decoderlens.fileio import FIGURE_FORMATS, check_output


def compare_command(
    run_a: Annotated[Path, typer.Argument(help="Evaluation folder A.")],
    run_b: Annotated[Path, typer.Argument(help="Evaluation folder B (differences are B - A).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for compare.json and compare.html.",
                                             show_default=False)] = None,
    fmt: FormatOpt = FormatChoice.table,
    resamples: Annotated[int, typer.Option("--bootstrap-resamples", help="Paired bootstrap resamples.")] = 1000,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw both runs and their difference to this "
                                              "PNG, SVG or PDF file.", show_default=False)] = None,
) -> None:
    """Compare two runs over the same examples: per layer and metric, B - A with a 95% paired bootstrap CI."""
    with friendly_errors():
        check_output(plot, FIGURE_FORMATS, "--plot")
        if isinstance(resamples, bool) or resamples < 100:
            raise InputError(f"bootstrap_resamples (--bootstrap-resamples) must be at least 100 for a 95% interval, "
                             f"got {resamples}")
        from decoderlens.evaluation.compare import compare
        from decoderlens.evaluation.folder import EvalFolder
        from decoderlens.fileio import atomic_write_text, csv_text, json_text
        from decoderlens.presentation.compare_view import comparison_tables, reaching_tables
        from decoderlens.presentation.report import write_compare_html

        result = compare(run_a, run_b, resamples=resamples)
        for warning in result.warnings:
            err_console.print(f"[yellow]warning[/yellow] {warning}", highlight=False)
        summary = EvalFolder(run_a).summary()
        info = summary.metrics if summary else {}
        if out is not None:
            atomic_write_text(out / "compare.json", json_text(result.to_dict()) + "\n")
            page = write_compare_html(result, info, reaching_tables(result), out / "compare.html")
            err_console.print(f"wrote {out / 'compare.json'} and {page}", highlight=False)
        if fmt is FormatChoice.json:
            emit(json_text(result.to_dict()), None)
        elif fmt is FormatChoice.csv:
            emit(csv_text(result.to_records()), None)
        else:
            from rich.console import Console

            console = Console()
            for table in comparison_tables(result, console.width):
                console.print(table)
        if plot is not None:
            from decoderlens.presentation.plots import plot_comparison

            err_console.print(f"wrote {plot_comparison(result, plot, info)}", highlight=False)
