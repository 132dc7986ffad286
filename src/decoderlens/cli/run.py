"""``decoderlens run``: read out every encoder layer for a few inputs and print a table, JSON or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli.common import (
    BatchSizeOpt,
    DeviceMapOpt,
    DeviceOpt,
    DtypeOpt,
    FinalNormOpt,
    FormatChoice,
    FormatOpt,
    LanguageOpt,
    LayersOpt,
    MaxMemoryOpt,
    MaxNewTokensOpt,
    MaxRowsOpt,
    ModelArg,
    NumBeamsOpt,
    OutputOpt,
    TaskOpt,
    TgtLangOpt,
    TopLengthCapOpt,
    TruncateOpt,
    emit,
    friendly_errors,
    load_lens,
    overrides,
    settings_of,
)
from decoderlens.errors import InputError
from decoderlens.settings import GenerationSettings, RuntimeSettings


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
    items: list[Any] = [*texts, *flagged]
    if not items:
        raise InputError("give at least one input (text, or --audio / --image files)")
    return items


def run(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Input texts (or audio/image paths).",
                                                       show_default=False)] = None,
    layers: LayersOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    num_beams: NumBeamsOpt = None,
    final_norm: FinalNormOpt = None,
    tgt_lang: TgtLangOpt = None,
    language: LanguageOpt = None,
    task: TaskOpt = None,
    top_length_cap: TopLengthCapOpt = None,
    truncate: TruncateOpt = None,
    audio: Annotated[list[Path] | None, typer.Option("--audio", help="Audio file (repeat the flag for each).",
                                                     show_default=False)] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", help="Image file (repeat the flag for each).",
                                                     show_default=False)] = None,
    batch_size: BatchSizeOpt = None,
    max_rows: MaxRowsOpt = None,
    max_memory: MaxMemoryOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    device_map: DeviceMapOpt = None,
    fmt: FormatOpt = FormatChoice.table,
    output: OutputOpt = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML view to this file.",
                                              show_default=False)] = None,
) -> None:
    """Read out every encoder layer of MODEL for the given inputs."""
    with friendly_errors():
        given = overrides(layers=layers, max_new_tokens=max_new_tokens, num_beams=num_beams, final_norm=final_norm,
                          tgt_lang=tgt_lang, language=language, task=task, top_length_cap=top_length_cap,
                          truncation=truncate, batch_size=batch_size, max_rows=max_rows, max_memory=max_memory,
                          device=device, dtype=dtype, device_map=device_map)
        generation, runtime = settings_of(GenerationSettings, given), settings_of(RuntimeSettings, given)
        if not (inputs or audio or image):
            raise InputError("give at least one input (text, or --audio / --image files)")
        lens = load_lens(model, runtime)
        items = collect_inputs(lens, inputs or [], audio or [], image or [])
        result = lens.read(items, generation, runtime, progress=len(items) > 8)
        if html is not None:
            from decoderlens.presentation.report import write_lens_output_html

            write_lens_output_html(result, html)
        from decoderlens.presentation.tables import render

        emit(render(result, "json" if fmt is FormatChoice.table and output is not None else fmt.value), output)
