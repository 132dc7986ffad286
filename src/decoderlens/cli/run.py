"""``decoderlens run``: read out every encoder layer for a few inputs and print a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from decoderlens.cli.common import FinalNormChoice, FormatChoice, emit, friendly_errors
from decoderlens.engine import DEFAULT_TOP_LENGTH_CAP
from decoderlens.errors import InputError
from decoderlens.presentation.tables import render

ModelArg = Annotated[str, typer.Argument(help="Hub model name or local folder (save_pretrained layout).")]
LayersOpt = Annotated[str, typer.Option("--layers", help="'all', a list like '0,3,-1', or a slice like '2:6'.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
DeviceMapOpt = Annotated[str | None, typer.Option(
    "--device-map", help="'auto' spreads a model too large for one GPU over all GPUs (replaces --device).")]
MaxMemoryOpt = Annotated[str | None, typer.Option(
    "--max-memory", help="Keep each decoding call's stacked rows under this much memory, e.g. 8GiB.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16 or float16.")]
TgtLangOpt = Annotated[str | None, typer.Option("--tgt-lang", help="Target language (NLLB, M2M100, mBART-50).")]
TopLengthCapOpt = Annotated[float | None, typer.Option(
    "--top-length-cap", min=0, help="Cut lower layers' greedy outputs after CAP x the top layer's length + 16 "
    "tokens; 0 switches it off.")]
FinalNormOpt = Annotated[FinalNormChoice, typer.Option("--final-norm", help="Apply the encoder's final norm to "
                                                       "intermediate layers (auto) or read raw states (none).")]
FormatOpt = Annotated[FormatChoice, typer.Option("--format", help="table, json or csv.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to this file.")]


def load_lens(model: str, device: str, dtype: str, device_map: str | None = None) -> Any:
    """Load a ``DecoderLens`` (imported lazily so that ``--help`` stays fast)."""
    from decoderlens.engine import DecoderLens

    return DecoderLens.from_pretrained(model, device=device, dtype=dtype, device_map=device_map)


def collect_inputs(lens: Any, texts: list[str], audio: list[Path], image: list[Path]) -> list[Any]:
    """Positional inputs plus ``--audio``/``--image`` files, checked against the model's modality."""
    modality = lens.adapter.spec.modality
    if audio and modality != "speech":
        raise InputError(f"--audio was given, but {lens.name} is a {modality} model: audio needs a speech model")
    if image and modality != "vision":
        raise InputError(f"--image was given, but {lens.name} is a {modality} model: images need a vision "
                         "encoder-decoder model")
    items: list[Any] = [*texts, *map(str, audio), *map(str, image)]
    if not items:
        raise InputError("give at least one input (text, or --audio / --image files)")
    return items


def run(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Input texts (or audio/image paths).")] = None,
    layers: LayersOpt = "all",
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", min=1)] = None,
    num_beams: Annotated[int, typer.Option("--num-beams", min=1)] = 1,
    final_norm: FinalNormOpt = FinalNormChoice.auto,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    device_map: DeviceMapOpt = None,
    tgt_lang: TgtLangOpt = None,
    language: Annotated[str | None, typer.Option("--language", help="Spoken language (Whisper).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="transcribe or translate (Whisper).")] = None,
    audio: Annotated[list[Path] | None, typer.Option("--audio", help="Audio file (repeatable).")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", help="Image file (repeatable).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="Rows per generate call.")] = 256,
    max_memory: MaxMemoryOpt = None,
    truncate: Annotated[bool, typer.Option("--truncate", help="Truncate over-long inputs.")] = False,
    top_length_cap: TopLengthCapOpt = DEFAULT_TOP_LENGTH_CAP,
    fmt: FormatOpt = FormatChoice.table,
    output: OutputOpt = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML view to this file.")] = None,
) -> None:
    """Read out every encoder layer of MODEL for the given inputs."""
    with friendly_errors():
        lens = load_lens(model, device, dtype, device_map)
        items = collect_inputs(lens, inputs or [], audio or [], image or [])
        result = lens.generate(items, layers, max_new_tokens=max_new_tokens, num_beams=num_beams,
                               final_norm=final_norm.value, tgt_lang=tgt_lang, language=language, task=task,
                               batch_size=batch_size, max_rows=max_rows, max_memory=max_memory, truncation=truncate,
                               top_length_cap=top_length_cap,
                               progress=len(items) > batch_size)
        if html is not None:
            from decoderlens.presentation.report import write_lens_output_html

            write_lens_output_html(result, html)
        if fmt is FormatChoice.table and output is not None:
            emit(result.to_json(), output)
            return
        emit(render(result, fmt.value, Console()), output)
