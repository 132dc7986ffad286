"""``decoderlens eval``: per-layer task metrics over a data set, resumable, into an evaluation folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from decoderlens.cli.common import err_console, friendly_errors, quiet_transformers, settings_options
from decoderlens.errors import InputError
from decoderlens.settings import GenerationSettings, LoadSettings, RuntimeSettings

if TYPE_CHECKING:
    from decoderlens.engine import DecoderLens
    from decoderlens.evaluation.distributed import ProcessInfo
    from decoderlens.evaluation.settings import EvalSettings


def _opt(flag: str, text: str, metavar: str | None = None) -> typer.models.OptionInfo:
    return typer.Option(flag, help=text, metavar=metavar, show_default=False)


def lens_loader(settings: EvalSettings) -> Any:
    """Loads the evaluation's model once its data has been read (on the process's device under ``accelerate``),
    with its translators where the lens mode reads the tuned lens."""

    def load(proc: ProcessInfo) -> DecoderLens:
        from decoderlens.engine import DecoderLens
        from decoderlens.lenses import LensMode

        quiet_transformers()
        load = settings.load
        device = proc.device if proc.world > 1 and load.device == "auto" else load.device
        translators = None if settings.lens_mode is LensMode.raw else load.translators
        return DecoderLens.from_pretrained(settings.model, device=device or "auto", dtype=load.dtype,
                                           device_map=load.device_map, translators=translators, force=settings.force)

    return load


@settings_options(GenerationSettings, RuntimeSettings, LoadSettings, skip=("top_k",))
def eval_command(
    model: Annotated[str | None, typer.Argument(help="Hub model name or local folder.", show_default=False)] = None,
    data: Annotated[str | None, typer.Argument(help="JSONL/CSV/TSV file, datasets folder, audio folder or Hub data "
                                               "set name.", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder (resumed if it exists).")] = Path(
        "decoderlens-eval"),
    recipe: Annotated[str | None, _opt("--recipe", "Recipe YAML file or shipped recipe name.")] = None,
    preset: Annotated[str | None, _opt("--preset", "Metrics for a kind of task: qa, mt, asr, logic or generic "
                                       "[default: generic].", "NAME")] = None,
    metric: Annotated[list[str] | None, _opt("--metric", "Metric name (repeat the flag for several; default: the "
                                             "preset's).", "NAME")] = None,
    normalize: Annotated[str | None, _opt("--normalize", "Text normalisation before metrics: none, lower, squad or "
                                          "whisper (default: the preset's).", "NAME")] = None,
    input_field: Annotated[str | None, _opt("--input-field", "Field holding the input (dotted paths reach into "
                                            "nested fields; default: guessed).")] = None,
    target_field: Annotated[str | None, _opt("--target-field", "Field holding the reference (default: "
                                             "guessed).")] = None,
    id_field: Annotated[str | None, _opt("--id-field", "Field holding the example id (default: id, else the row "
                                         "number).")] = None,
    config: Annotated[str | None, _opt("--config", "Hub data set configuration.")] = None,
    split: Annotated[str | None, _opt("--split", "Data set split (default: test, or the only one).")] = None,
    template: Annotated[str | None, _opt("--template", "Prompt wrapped around text inputs, with an {input} "
                                         "placeholder.")] = None,
    limit: Annotated[int | None, _opt("--limit", "Use only the first N usable rows.", "N")] = None,
    score: Annotated[bool | None, typer.Option("--score/--no-score", help="Also score the reference per layer "
                                               "(teacher-forced log-probs).", show_default=False)] = None,
    grid: Annotated[bool | None, typer.Option("--grid/--no-grid", help="Also record the 2-D lens of the reference "
                                              "(every encoder layer x decoder layer).", show_default=False)] = None,
    lens: Annotated[str | None, _opt("--lens", "raw, tuned (with --translators) or both: raw and tuned readouts "
                                     "from one encoder pass [default: tuned with --translators, else raw].",
                                     "raw|tuned|both")] = None,
    force: Annotated[bool | None, typer.Option("--force", help="Use translators trained for another model (same "
                                               "shape) anyway, with a warning.", show_default=False)] = None,
    on_error: Annotated[str | None, _opt("--on-error", "skip (and report) or fail on malformed rows [default: "
                                         "skip].", "skip|fail")] = None,
    chunk_size: Annotated[int | None, _opt("--chunk-size", "Examples decoded between two writes to disk "
                                           "[default: 256].", "N")] = None,
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
        named = {"model": model, "path": data, "preset": preset, "metrics": metric or None, "normalize": normalize,
                 "input_field": input_field, "target_field": target_field, "id_field": id_field, "config": config,
                 "split": split, "template": template, "limit": limit, "score": score, "grid": grid, "lens": lens,
                 "force": force, "on_error": on_error, "chunk_size": chunk_size}
        options.update({**{k: v for k, v in named.items() if v is not None}, **given})
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
