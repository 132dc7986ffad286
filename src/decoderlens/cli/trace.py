"""``decoderlens trace``: causal tracing in the encoder, which layer and position decide the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.errors import InputError
from decoderlens.fileio import FIGURE_FORMATS, check_output
from decoderlens.settings import GenerationSettings, LoadSettings, RuntimeSettings, TraceSettings


def parse_span(text: str) -> tuple[float, float]:
    """``START:END`` (token positions, or seconds for speech models)."""
    try:
        start, end = (float(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"--corrupt takes START:END (token positions, or seconds for speech), got {text!r}") from None
    return start, end


@common.settings_options(TraceSettings, GenerationSettings, RuntimeSettings, LoadSettings,
                         skip=("layers", "num_beams", "top_length_cap", "final_norm", "truncation", "batch_size",
                               "translators", "top_k", "decoding", "first_round"))
def trace_command(
    model: common.ModelArg,
    source: Annotated[str, typer.Argument(help="Input text (or an audio file for speech models).")],
    answer: Annotated[str | None, typer.Option("--answer", help="Answer whose probability is traced (default: the "
                                               "model's greedy output for the input).", show_default=False)] = None,
    corrupt: Annotated[str | None, typer.Option("--corrupt", metavar="START:END", help="Span to corrupt with noise: "
                                                "token positions, or seconds for speech (default: all).",
                                                show_default=False)] = None,
    corrupt_with: Annotated[str | None, typer.Option("--corrupt-with", help="Corrupt by running this input of the "
                                                     "same length instead.", show_default=False)] = None,
    fmt: common.FormatOpt = common.FormatChoice.table,
    output: common.OutputOpt = None,
    html: common.HtmlOpt = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the heatmap to this PNG, SVG or PDF file.",
                                              show_default=False)] = None,
    *,
    given: dict[str, Any],
) -> None:
    """Corrupt the input, restore single clean encoder states (layer x position) and measure how much of the
    answer's probability comes back."""
    with common.friendly_errors():
        generation, runtime = common.settings_of(GenerationSettings, given), common.settings_of(RuntimeSettings, given)
        settings, load = common.settings_of(TraceSettings, given), common.settings_of(LoadSettings, given)
        if corrupt is not None and corrupt_with is not None:
            raise InputError("give --corrupt or --corrupt-with, not both")
        check_output(plot, FIGURE_FORMATS, "--plot")
        check_output(html, ("html", "htm"), "--html")
        span = parse_span(corrupt) if corrupt is not None else None
        lens = common.load_lens(model, load)
        result = lens.trace(source, answer, corrupt_with if corrupt_with is not None else span, trace=settings,
                            generation=generation, runtime=runtime)
        common.show_result(result, fmt, output)  # the result first: drawing it can never lose it
        if html is not None:
            from decoderlens.presentation.report import trace_sections, write_analysis_html

            write_analysis_html(f"DecoderLens causal trace: {result.input}", f"answer {result.answer!r}",
                                trace_sections(result), html)
        if plot is not None:
            from decoderlens.presentation.plots import plot_trace

            plot_trace(result, plot)
