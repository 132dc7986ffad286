"""``decoderlens score``: teacher-forced log-probs of a target at every encoder layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.errors import InputError
from decoderlens.settings import GenerationSettings, LoadSettings, RuntimeSettings


def read_pairs(path: Path) -> tuple[list[str], list[str]]:
    """Input/target pairs from a JSONL file with ``input`` and ``target`` fields (read as ``eval`` reads data);
    any malformed line is refused with its place."""
    from decoderlens.evaluation.data import DataSource, load_rows

    loaded = load_rows(DataSource(str(path), input_field="input", target_field="target"))
    if loaded.problems:
        raise InputError(f"{path}: {loaded.problems[0]}: each line must be a JSON object with 'input' and 'target'")
    return [str(row.input) for row in loaded.rows], [row.reference for row in loaded.rows]


@common.settings_options(GenerationSettings, RuntimeSettings, LoadSettings,
                         skip=("max_new_tokens", "num_beams", "language", "task", "top_length_cap", "decoding",
                               "first_round"))
def score(
    model: common.ModelArg,
    source: Annotated[str | None, typer.Argument(help="Input text (or audio/image path).", show_default=False)] = None,
    target: Annotated[str | None, typer.Argument(help="Target text to score.", show_default=False)] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="JSONL file of {input, target} rows.",
                                               show_default=False)] = None,
    fmt: common.FormatOpt = common.FormatChoice.table,
    output: common.OutputOpt = None,
    force: common.ForceOpt = False,
    *,
    given: dict[str, Any],
) -> None:
    """Score TARGET given SOURCE at every encoder layer (log-prob, rank, entropy, top-k per token)."""
    with common.friendly_errors():
        generation, runtime = common.settings_of(GenerationSettings, given), common.settings_of(RuntimeSettings, given)
        load = common.settings_of(LoadSettings, given)
        if pairs is not None:
            inputs, targets = read_pairs(pairs)
        elif source is not None and target is not None:
            inputs, targets = [source], [target]
        else:
            raise InputError("give SOURCE and TARGET, or --pairs FILE")
        if not inputs:
            raise InputError(f"{pairs} holds no pairs")
        lens = common.load_lens(model, load, force)
        common.show_result(lens.score(inputs, targets, generation=generation, runtime=runtime), fmt, output)
