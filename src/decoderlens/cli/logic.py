"""``decoderlens logic ...`` and ``decoderlens demo``: the propositional-logic experiment."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli.common import friendly_errors, quiet_transformers, settings_of, settings_options
from decoderlens.logic.config import ModelShape, TrainConfig


class TargetChoice(StrEnum):
    majority = "majority"
    minimal = "minimal"


logic_app = typer.Typer(help="The propositional-logic experiment: data, training, analysis.", no_args_is_help=True)


ExamplesOpt = Annotated[int, typer.Option("--examples", "-n", min=1, help="Held-out formulas to read.")]
BeamsOpt = Annotated[int, typer.Option("--num-beams", help="Beam width (1: greedy decoding).")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Start afresh instead of reusing an earlier run in --out.")]


def read_out_logic_model(out: Path, examples: int, model: Path | None, num_beams: int, fresh: bool) -> None:
    """Read out every layer of a logic model (the shipped one when ``model`` is None) on held-out formulas."""
    from decoderlens.logic import shipped_model_path
    from decoderlens.logic.demo import run_demo
    from decoderlens.shipped import resolve_model_name

    with friendly_errors():
        quiet_transformers()
        path = None if model is None else Path(resolve_model_name(str(model)))
        run_demo(out, examples, model_path=None if path == shipped_model_path() else path, fresh=fresh,
                 num_beams=num_beams)


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path("decoderlens-demo"),
    examples: ExamplesOpt = 300, num_beams: BeamsOpt = 1, fresh: FreshOpt = False,
    model: Annotated[Path | None, typer.Option("--model", help="Another logic model folder.",
                                               show_default=False)] = None,
) -> None:
    """Read out every encoder layer of the shipped logic model on held-out formulas (offline)."""
    read_out_logic_model(out, examples, model, num_beams, fresh)


@logic_app.command("data")
def data(
    out: Annotated[Path, typer.Argument(help="Folder for train/validation/test JSONL files.")],
    seed: Annotated[int, typer.Option("--seed")] = 0,
    train_size: Annotated[int, typer.Option("--train-size", min=1)] = 100_000,
    eval_size: Annotated[int, typer.Option("--eval-size", min=1)] = 2_000,
    target: Annotated[TargetChoice, typer.Option("--target", help="Targets: 'minimal' partial assignments or "
                                                 "full 'majority' ones.")] = TargetChoice.minimal,
) -> None:
    """Write seeded train/validation/test splits of satisfiable formulas with satisfying assignments."""
    from decoderlens.logic.data import write_splits

    sizes = {"train": train_size, "validation": eval_size, "test": eval_size}
    paths = write_splits(out, seed, sizes, target=str(target))
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@logic_app.command("train")
@settings_options(TrainConfig, skip=("shape",))
def train(
    out: Annotated[Path, typer.Argument(help="Run folder: checkpoint.pt, train_log.jsonl, model/.")],
    d_model: Annotated[int, typer.Option("--d-model", min=8, help="Model width (feed-forward 4x); the shipped "
                                         "model has 64, the paper's 128.")] = ModelShape().d_model,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch.")] = None,
    *,
    given: dict[str, Any],
) -> None:
    """Train the logic model from scratch (resumes from OUT/checkpoint.pt if present)."""
    with friendly_errors():
        cfg = settings_of(TrainConfig, {**given, "shape": ModelShape(d_model=d_model, d_ff=4 * d_model)})
        import torch

        from decoderlens.logic.data import SPLITS, generate_examples
        from decoderlens.logic.train import train as run_training

        if threads:
            torch.set_num_threads(threads)
        offset, count = SPLITS["validation"]
        validation = generate_examples(count, seed=cfg.seed * 1000 + offset, prefix="validation-", target=cfg.target)
        if cfg.init_from == "shipped":
            from decoderlens.logic import shipped_model_path

            cfg.init_from = str(shipped_model_path())
        final = run_training(out, cfg, validation)
    typer.echo(f"model saved to {final}")


@logic_app.command("export")
def export(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint.pt written by `logic train`.")],
    target: Annotated[Path, typer.Argument(help="Folder for the save_pretrained model.")],
    half: Annotated[bool, typer.Option("--half", help="Store float16 weights (half the size).")] = False,
    card_examples: Annotated[int, typer.Option("--card-examples", help="Held-out formulas measured for the "
                                               "model card (0: no card).")] = 2000,
    notes: Annotated[str | None, typer.Option("--notes", help="Training history for the model card.")] = None,
    average_last: Annotated[int, typer.Option("--average-last", min=1, help="Export the mean weights of the run's "
                                              "newest N snapshots (1: the checkpoint itself).")] = 1,
) -> None:
    """Export a training checkpoint as a model folder that `decoderlens run` reads, with a model card."""
    from decoderlens.logic.card import write_model_card
    from decoderlens.logic.checkpoints import export_checkpoint
    from decoderlens.logic.demo import run_demo

    try:
        folder = export_checkpoint(checkpoint, target, half=half, average_last=average_last)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--average-last") from None
    if notes:
        config_path = folder / "training_config.json"
        config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "notes": notes}, indent=2))
    if card_examples:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            analysis = run_demo(Path(scratch) / "analysis", card_examples, model_path=folder)
        write_model_card(folder, analysis, card_examples)
    typer.echo(f"model saved to {folder}")


@logic_app.command("analyze")
def analyze_cmd(
    model: Annotated[Path, typer.Argument(help="Logic model folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path("logic-analysis"),
    examples: ExamplesOpt = 2_000, num_beams: BeamsOpt = 1, fresh: FreshOpt = False,
) -> None:
    """Per-layer analysis of a logic model on the held-out test split."""
    read_out_logic_model(out, examples, model, num_beams, fresh)
