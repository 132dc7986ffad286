"""``decoderlens grid``: the 2-D lens, every encoder layer x every decoder layer, of a target."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.fileio import check_output
from decoderlens.settings import GenerationSettings, LoadSettings, RuntimeSettings


@common.settings_options(GenerationSettings, RuntimeSettings, LoadSettings,
                         skip=("num_beams", "top_length_cap", "top_k"))
def grid_command(
    model: common.ModelArg,
    source: Annotated[str, typer.Argument(help="Input text (or audio/image path).", show_default=False)],
    target: Annotated[str | None, typer.Argument(help="Target to read (default: the model's own greedy output).",
                                                 show_default=False)] = None,
    fmt: common.FormatOpt = common.FormatChoice.table,
    output: common.OutputOpt = None,
    force: common.ForceOpt = False,
    html: common.HtmlOpt = None,
    *,
    given: dict[str, Any],
) -> None:
    """Teacher-forced log-prob of TARGET through every encoder layer x decoder layer (a logit lens inside the
    decoder for layers below the top)."""
    with common.friendly_errors():
        generation, runtime = common.settings_of(GenerationSettings, given), common.settings_of(RuntimeSettings, given)
        check_output(html, ("html", "htm"), "--html")
        lens = common.load_lens(model, common.settings_of(LoadSettings, given), force)
        result = lens.grid([source], None if target is None else [target], generation=generation, runtime=runtime)
        if html is not None:
            from decoderlens.presentation.report import display_name, grid_sections, write_analysis_html

            write_analysis_html(f"DecoderLens 2-D lens: {display_name(result.model)}",
                                f"{result.num_encoder_layers} encoder layers x {result.num_decoder_layers} decoder "
                                "layers", grid_sections(result), html)
        common.show_result(result, fmt, output)
