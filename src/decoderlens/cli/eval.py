"""``decoderlens eval``: per-layer task metrics over a data set, resumable, into an evaluation folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from decoderlens.cli.common import err_console, friendly_errors, quiet_transformers, settings_options
from decoderlens.errors import InputError
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.settings import GenerationSettings, LoadSettings, RuntimeSettings

if TYPE_CHECKING:
    from decoderlens.engine import DecoderLens
    from decoderlens.evaluation.distributed import ProcessInfo


def lens_loader(settings: EvalSettings) -> Any:
    """Loads the evaluation's model once its data has been read (on the process's device under ``accelerate``),
    with its translators where the lens mode reads the tuned lens."""

    def load(proc: ProcessInfo) -> DecoderLens:
        from decoderlens.engine import DecoderLens
        from decoderlens.settings import LensMode

        quiet_transformers()
        load = settings.load
        device = proc.device if proc.world > 1 and load.device == "auto" else load.device
        translators = None if settings.lens_mode is LensMode.raw else load.translators
        return DecoderLens.from_pretrained(settings.model, device=device or "auto", dtype=load.dtype,
                                           device_map=load.device_map, translators=translators, force=settings.force)

    return load


@settings_options(EvalSettings, DataSource, GenerationSettings, RuntimeSettings, LoadSettings, skip=("top_k",))
def eval_command(
    model: Annotated[str | None, typer.Argument(help="Hub model name or local folder.", show_default=False)] = None,
    data: Annotated[str | None, typer.Argument(help="JSONL/CSV/TSV file, datasets folder, audio folder or Hub data "
                                               "set name.", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder (resumed if it exists).")] = Path(
        "decoderlens-eval"),
    recipe: Annotated[str | None, typer.Option("--recipe", help="Recipe YAML file or shipped recipe name.",
                                               show_default=False)] = None,
    *,
    given: dict[str, Any],
) -> None:
    """Evaluate every encoder layer of MODEL on DATA with the task's metrics; resumes an interrupted run."""
    from decoderlens.evaluation.metrics import list_presets
    from decoderlens.evaluation.recipes import read_recipe
    from decoderlens.evaluation.runner import evaluate
    from decoderlens.evaluation.settings import settings_from
    from decoderlens.presentation.tables import summary_tables

    with friendly_errors():
        if given.get("task") in list_presets():
            raise InputError(f"--task is the spoken task of Whisper-style models (transcribe or translate): did you "
                             f"mean --preset {given['task']}?")
        options = read_recipe(recipe) if recipe is not None else {}
        options.update({**{k: v for k, v in {"model": model, "path": data}.items() if v is not None}, **given})
        settings = settings_from(options).validate()
        try:
            report = evaluate(settings, out, lens_loader(settings))
        except KeyboardInterrupt:
            err_console.print(f"[yellow]interrupted[/yellow]: results so far are in {out}/readouts.jsonl; run the "
                              "same command again to resume", highlight=False)
            raise typer.Exit(130) from None
        for problem in report.skipped:
            err_console.print(f"[yellow]skipped[/yellow] {problem}", highlight=False)
        from rich.console import Console

        console = Console()
        for table in summary_tables(report.summary, console.width):
            console.print(table)
        err_console.print(f"results in {out}/ (readouts.jsonl, summary.json, summary.csv); `decoderlens report {out}` "
                          "draws them", highlight=False)
