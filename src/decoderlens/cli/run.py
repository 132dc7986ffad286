"""``decoderlens run``: read out every encoder layer for a few inputs and print a table, JSON or CSV."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli.common import (
    ForceOpt,
    FormatChoice,
    FormatOpt,
    HtmlOpt,
    ModelArg,
    OutputOpt,
    friendly_errors,
    load_lens,
    settings_of,
    settings_options,
    show_result,
)
from decoderlens.errors import InputError
from decoderlens.fileio import check_output
from decoderlens.settings import (
    ATTRIBUTION_METHODS,
    GenerationSettings,
    LoadSettings,
    RuntimeSettings,
    check_choice,
)


def collect_inputs(lens: Any, texts: list[str], audio: list[Path], image: list[Path]) -> list[Any]:
    """Positional inputs or ``--audio``/``--image`` files, checked against the model's modality.

    Files given with their flags and positional inputs are not mixed: ``--audio a.wav b.wav`` would make
    ``b.wav`` a positional input and change the order, so it is refused with the two ways to write it.
    """
    modality = lens.adapter.spec.modality
    if audio and modality != "speech":
        raise InputError(f"--audio was given, but {lens.name} is a {modality} model: audio needs a speech model")
    if image and modality != "vision":
        raise InputError(f"--image was given, but {lens.name} is a {modality} model: images need a vision "
                         "encoder-decoder model")
    flagged = [*map(str, audio), *map(str, image)]
    if flagged and texts:
        flag = "--audio" if audio else "--image"
        raise InputError(f"give files either all after the model ({' '.join([*flagged, *texts][:3])} ...) or each "
                         f"after its own {flag} ({flag} {flagged[0]} {flag} {texts[0]}); mixed, their order would "
                         "change")
    return [*texts, *flagged]


@settings_options(GenerationSettings, RuntimeSettings, LoadSettings, skip=("top_k",))
def run(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Input texts (or audio/image paths).",
                                                       show_default=False)] = None,
    audio: Annotated[list[Path] | None, typer.Option("--audio", metavar="FILE", show_default=False,
                                                     help="Audio file (repeat the flag for each).")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", metavar="FILE", show_default=False,
                                                     help="Image file (repeat the flag for each).")] = None,
    fmt: FormatOpt = FormatChoice.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    html: HtmlOpt = None,
    detect_language: Annotated[bool, typer.Option(
        "--detect-language", help="Show the language each layer detects (multilingual speech models) instead of "
        "its readout.")] = False,
    attribute: Annotated[str | None, typer.Option(
        "--attribute", metavar="METHOD", help="With --html: also show where each layer looks, each readout token "
        "attributed to the source by grad, ig or occlusion (click a token on the page).", show_default=False)] = None,
    *,
    given: dict[str, Any],
) -> None:
    """Read out every encoder layer of MODEL for the given inputs."""
    with friendly_errors():
        generation, runtime = settings_of(GenerationSettings, given), settings_of(RuntimeSettings, given)
        load = settings_of(LoadSettings, given)
        if not (inputs or audio or image):
            raise InputError("give at least one input (text, or --audio / --image files)")
        check_output(html, ("html", "htm"), "--html")
        if attribute is not None:
            if html is None:
                raise InputError("--attribute draws on the page: give --html FILE too (or use decoderlens attribute)")
            check_choice("attribute", attribute, ATTRIBUTION_METHODS)
        if html is not None and "token_scores" not in given:
            generation = replace(generation, token_scores=True)  # the page colours tokens by probability, entropy
        lens = load_lens(model, load, force)
        items = collect_inputs(lens, inputs or [], audio or [], image or [])
        if detect_language:
            if html is not None:
                raise InputError("--html draws readouts: drop it, or --detect-language")
            show_result(lens.detect_language(items, generation=generation, runtime=runtime, progress=len(items) > 8),
                        fmt, output)
            return
        result = lens.generate(items, generation=generation, runtime=runtime, progress=len(items) > 8)
        show_result(result, fmt, output)  # the result first: drawing it can never lose it
        if html is not None:
            from decoderlens.presentation.report import write_lens_output_html

            found = None if attribute is None else lens.attribute(items, method=attribute, generation=generation,
                                                                  runtime=runtime)
            write_lens_output_html(result, html, found)
