"""``decoderlens score``: teacher-forced log-probs of a target at every encoder layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from decoderlens.cli.common import (
    BatchSizeOpt,
    DeviceMapOpt,
    DeviceOpt,
    DtypeOpt,
    FinalNormOpt,
    FormatChoice,
    FormatOpt,
    LayersOpt,
    MaxMemoryOpt,
    MaxRowsOpt,
    ModelArg,
    OutputOpt,
    TgtLangOpt,
    TruncateOpt,
    emit,
    friendly_errors,
    load_lens,
    overrides,
    settings_of,
)
from decoderlens.errors import InputError
from decoderlens.settings import GenerationSettings, RuntimeSettings, check_count


def read_pairs(path: Path) -> tuple[list[str], list[str]]:
    """Input/target pairs from a JSONL file with ``input`` and ``target`` fields."""
    inputs, targets = [], []
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not valid UTF-8 ({err.reason} at byte {err.start})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            inputs.append(str(row["input"]))
            targets.append(str(row["target"]))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise InputError(f"{path}:{number}: expected a JSON object with 'input' and 'target' ({err})") from None
    return inputs, targets


def score(
    model: ModelArg,
    source: Annotated[str | None, typer.Argument(help="Input text (or audio/image path).", show_default=False)] = None,
    target: Annotated[str | None, typer.Argument(help="Target text to score.", show_default=False)] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="JSONL file of {input, target} rows.",
                                               show_default=False)] = None,
    layers: LayersOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Most likely tokens listed per position.")] = 5,
    final_norm: FinalNormOpt = None,
    tgt_lang: TgtLangOpt = None,
    truncate: TruncateOpt = None,
    batch_size: BatchSizeOpt = None,
    max_rows: MaxRowsOpt = None,
    max_memory: MaxMemoryOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    device_map: DeviceMapOpt = None,
    fmt: FormatOpt = FormatChoice.table,
    output: OutputOpt = None,
) -> None:
    """Score TARGET given SOURCE at every encoder layer (log-prob, rank, entropy, top-k per token)."""
    with friendly_errors():
        given = overrides(layers=layers, final_norm=final_norm, tgt_lang=tgt_lang, truncation=truncate,
                          batch_size=batch_size, max_rows=max_rows, max_memory=max_memory, device=device,
                          dtype=dtype, device_map=device_map)
        generation, runtime = settings_of(GenerationSettings, given), settings_of(RuntimeSettings, given)
        check_count("top_k", top_k)
        if pairs is not None:
            inputs, targets = read_pairs(pairs)
        elif source is not None and target is not None:
            inputs, targets = [source], [target]
        else:
            raise InputError("give SOURCE and TARGET, or --pairs FILE")
        if not inputs:
            raise InputError(f"{pairs} holds no pairs")
        lens = load_lens(model, runtime)
        result = lens.score_items(inputs, targets, generation, runtime, top_k)
        from decoderlens.presentation.tables import render

        emit(render(result, "json" if fmt is FormatChoice.table and output is not None else fmt.value), output)
