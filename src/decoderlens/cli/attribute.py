"""``decoderlens attribute``: where each layer looks, per readout token, over the source's tokens, frames or
patches."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.errors import InputError
from decoderlens.fileio import FIGURE_FORMATS, check_output
from decoderlens.settings import AttributionSettings, GenerationSettings, LoadSettings, RuntimeSettings


@common.settings_options(AttributionSettings, GenerationSettings, RuntimeSettings, LoadSettings,
                         skip=("num_beams", "top_k", "token_scores", "decoding", "first_round"))
def attribute_command(
    model: common.ModelArg,
    source: Annotated[str, typer.Argument(help="Input text (or an audio or image file).")],
    target: Annotated[str | None, typer.Option("--target", help="Attribute this text, teacher-forced at every "
                                               "layer (default: each layer's own readout).",
                                               show_default=False)] = None,
    fmt: common.FormatOpt = common.FormatChoice.table,
    output: common.OutputOpt = None,
    force: common.ForceOpt = False,
    html: common.HtmlOpt = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw layer x source position to this PNG, SVG "
                                              "or PDF file (audio: under its waveform).", show_default=False)] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                           help="Show progress bars (on a terminal).")] = True,
    *,
    given: dict[str, Any],
) -> None:
    """Attribute every token each encoder layer reads out of SOURCE (or --target) to the source positions of that
    layer's states: tokens for text, frames with their seconds for audio, patches for images."""
    with common.friendly_errors():
        generation, runtime = common.settings_of(GenerationSettings, given), common.settings_of(RuntimeSettings, given)
        settings, load = common.settings_of(AttributionSettings, given), common.settings_of(LoadSettings, given)
        check_output(plot, FIGURE_FORMATS, "--plot")
        check_output(html, ("html", "htm"), "--html")
        if target is not None and not target.strip():
            raise InputError("--target is empty: give the text to attribute, or leave --target out to attribute "
                             "each layer's own readout")
        lens = common.load_lens(model, load, force)
        result = lens.attribute(source, target=target, attribution=settings, generation=generation,
                                runtime=runtime, progress=progress and sys.stderr.isatty())
        common.show_result(result, fmt, output)  # the result first: drawing it can never lose it
        if html is not None:
            from decoderlens.presentation.attribution_view import attribution_sections
            from decoderlens.presentation.report import write_analysis_html

            write_analysis_html(f"DecoderLens attribution: {result.examples[0].input}",
                                f"{result.method} · {lens.name}", attribution_sections(result), html)
        if plot is not None:
            from decoderlens.presentation.attribution_view import plot_attribution

            plot_attribution(result, plot, audio=_waveform(lens, source))


def _waveform(lens: Any, source: str) -> Any:
    """The audio of a speech model's input, for the figure's strip (``None`` for text and images)."""
    if lens.adapter.spec.modality != "speech":
        return None
    from decoderlens.inputs import audio_rate, load_audio

    rate = audio_rate(lens.processor)
    return load_audio(source, rate), rate
