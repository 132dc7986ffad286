"""``decoderlens eval``: per-layer task metrics over a data set, resumable, into a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from decoderlens.cli.common import FinalNormChoice, err_console, friendly_errors
from decoderlens.cli.run import DeviceMapOpt, DeviceOpt, DtypeOpt, MaxMemoryOpt, TgtLangOpt, TopLengthCapOpt
from decoderlens.engine import DEFAULT_TOP_LENGTH_CAP
from decoderlens.errors import InputError


def summary_table(summary: dict[str, object]) -> Table:
    """Layers x metrics, each cell ``value [low, high]``."""
    layers: list[dict[str, object]] = summary["layers"]  # type: ignore[assignment]
    names = [k for k, v in layers[0].items() if isinstance(v, dict)] if layers else []
    table = Table(title=f"{summary['model']}: per-layer metrics (95% bootstrap CI)", title_justify="left",
                  header_style="bold")
    table.add_column("layer", justify="right", style="cyan")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("n", justify="right")
    for entry in layers:
        cells = []
        for name in names:
            est: dict[str, float] = entry[name]  # type: ignore[assignment]
            cells.append(f"{est['value']:.3g} [dim][{est['low']:.3g}, {est['high']:.3g}][/dim]")
        table.add_row(str(entry["layer"]), *cells, str(entry["n"]))
    return table


def eval_command(
    model: Annotated[str | None, typer.Argument(help="Hub model name or local folder.")] = None,
    data: Annotated[str | None, typer.Argument(help="JSONL/CSV/TSV file, datasets folder, audio folder or "
                                               "Hub data set name.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder (resumed if it exists).")] = Path(
        "decoderlens-eval"),
    recipe: Annotated[str | None, typer.Option("--recipe", help="Recipe YAML file or shipped recipe name.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Preset: qa, mt, asr, logic or generic.")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metric name (repeatable).")] = None,
    normalize: Annotated[str | None, typer.Option("--normalize", help="none, lower, squad or whisper.")] = None,
    input_field: Annotated[str | None, typer.Option("--input-field")] = None,
    target_field: Annotated[str | None, typer.Option("--target-field")] = None,
    id_field: Annotated[str | None, typer.Option("--id-field")] = None,
    config: Annotated[str | None, typer.Option("--config", help="Hub data set config.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Data set split.")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Prompt with an {input} placeholder.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use the first N rows.")] = None,
    layers: Annotated[str | None, typer.Option("--layers")] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", min=1)] = None,
    num_beams: Annotated[int | None, typer.Option("--num-beams", min=1)] = None,
    final_norm: Annotated[FinalNormChoice | None, typer.Option("--final-norm")] = None,
    tgt_lang: TgtLangOpt = None,
    language: Annotated[str | None, typer.Option("--language", help="Spoken language (Whisper).")] = None,
    speech_task: Annotated[str | None, typer.Option("--speech-task", help="transcribe or translate (Whisper).")] = None,
    top_length_cap: TopLengthCapOpt = None,
    score: Annotated[bool | None, typer.Option("--score/--no-score", help="Score the reference per layer.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    on_error: Annotated[str | None, typer.Option("--on-error", help="skip or fail on malformed rows.")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    device_map: DeviceMapOpt = None,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Evaluate every encoder layer of MODEL on DATA with the task's metrics; resumes an interrupted run."""
    from decoderlens.evaluation.data import DataSource
    from decoderlens.evaluation.metrics import Metric
    from decoderlens.evaluation.recipes import load_recipe
    from decoderlens.evaluation.runner import EvalSettings, evaluate

    with friendly_errors():
        if on_error not in (None, "skip", "fail"):
            raise InputError("--on-error takes 'skip' or 'fail'")
        overrides = {"model": model, "task": task, "metrics": metric or None, "normalize": normalize,
                     "layers": layers, "max_new_tokens": max_new_tokens, "num_beams": num_beams,
                     "final_norm": final_norm.value if final_norm else None, "tgt_lang": tgt_lang,
                     "language": language, "speech_task": speech_task, "score": score, "batch_size": batch_size,
                     "top_length_cap": top_length_cap,
                     "on_error": on_error, "path": data, "config": config, "split": split,
                     "input_field": input_field, "target_field": target_field, "id_field": id_field,
                     "template": template, "limit": limit}
        if recipe is not None:
            settings = load_recipe(recipe, overrides)
        else:
            if model is None or data is None:
                raise InputError("give MODEL and DATA, or --recipe FILE")
            source = DataSource(data, input_field, target_field, id_field, config, split, template, limit)
            chosen: list[str | Metric] | None = list(metric) if metric else None
            settings = EvalSettings(model=model, data=source, task=task or "generic", metrics=chosen,
                                    normalize=normalize, layers=layers or "all", max_new_tokens=max_new_tokens,
                                    num_beams=num_beams or 1, final_norm=final_norm.value if final_norm else "auto",
                                    tgt_lang=tgt_lang, language=language, task_token=speech_task,
                                    score=bool(score), batch_size=batch_size or 16,
                                    top_length_cap=DEFAULT_TOP_LENGTH_CAP if top_length_cap is None else top_length_cap,
                                    on_error=on_error or "skip")  # type: ignore[arg-type]
        settings.device, settings.dtype, settings.device_map = device, dtype, device_map
        settings.max_memory = max_memory
        try:
            report = evaluate(settings, out)
        except KeyboardInterrupt:
            err_console.print(f"[yellow]interrupted[/yellow]: results so far are in {out}/readouts.jsonl; "
                              "run the same command again to resume")
            raise typer.Exit(130) from None
        for problem in report.skipped:
            err_console.print(f"[yellow]skipped[/yellow] {problem}")
        Console().print(summary_table(report.summary))
        err_console.print(f"results in {out}/ (readouts.jsonl, summary.json, summary.csv)")
