"""``decoderlens score``: teacher-forced log-probs of a target at every encoder layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from decoderlens.cli.common import FinalNormChoice, FormatChoice, emit, friendly_errors
from decoderlens.cli.run import (
    DeviceMapOpt,
    DeviceOpt,
    DtypeOpt,
    FinalNormOpt,
    FormatOpt,
    LayersOpt,
    MaxMemoryOpt,
    ModelArg,
    OutputOpt,
    TgtLangOpt,
    load_lens,
)
from decoderlens.errors import InputError
from decoderlens.presentation.tables import render


def read_pairs(path: Path) -> tuple[list[str], list[str]]:
    """Input/target pairs from a JSONL file with ``input`` and ``target`` fields."""
    inputs, targets = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
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
    source: Annotated[str | None, typer.Argument(help="Input text (or audio/image path).")] = None,
    target: Annotated[str | None, typer.Argument(help="Target text to score.")] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="JSONL file of {input, target} rows.")] = None,
    layers: LayersOpt = "all",
    top_k: Annotated[int, typer.Option("--top-k", min=1)] = 5,
    final_norm: FinalNormOpt = FinalNormChoice.auto,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    device_map: DeviceMapOpt = None,
    tgt_lang: TgtLangOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    max_memory: MaxMemoryOpt = None,
    fmt: FormatOpt = FormatChoice.table,
    output: OutputOpt = None,
) -> None:
    """Score TARGET given SOURCE at every encoder layer (log-prob, rank, entropy, top-k per token)."""
    with friendly_errors():
        if pairs is not None:
            inputs, targets = read_pairs(pairs)
        elif source is not None and target is not None:
            inputs, targets = [source], [target]
        else:
            raise InputError("give SOURCE and TARGET, or --pairs FILE")
        lens = load_lens(model, device, dtype, device_map)
        result = lens.score(inputs, targets, layers, top_k=top_k, final_norm=final_norm.value, tgt_lang=tgt_lang,
                            batch_size=batch_size, max_memory=max_memory)
        if fmt is FormatChoice.table and output is not None:
            emit(result.to_json(), output)
            return
        emit(render(result, fmt.value, Console()), output)
