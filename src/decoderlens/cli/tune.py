"""``decoderlens tune``: train tuned-lens translators, one per encoder layer, the model frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.settings import GenerationSettings, RuntimeSettings


def _opt(flag: str, text: str) -> Any:
    return typer.Option(flag, help=text, show_default=False)


@common.settings_options(GenerationSettings, RuntimeSettings,
                         skip=("layers", "num_beams", "top_length_cap", "translators", "batch_size"))
def tune_command(
    model: common.ModelArg,
    data: Annotated[str, typer.Argument(help="Data as for eval: JSONL/CSV/TSV, datasets folder, audio folder or Hub "
                                        "data set.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the translators (resumed if it holds a "
                                      "checkpoint).")],
    objective: Annotated[str, typer.Option("--objective", help="kl (self-distillation on the model's own output), "
                                           "reference (cross-entropy on references) or lstsq (closed form).")] = "kl",
    steps: Annotated[int, typer.Option("--steps", help="Gradient steps.")] = 300,
    batch: Annotated[int, typer.Option("--batch-size", help="Examples per step.")] = 16,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (SGD, Nesterov momentum, linear decay).")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of sampling and initialisation.")] = 0,
    rank: Annotated[int | None, _opt("--rank", "Rank of each translator (default: full rank up to width 1024, else "
                                     "64).")] = None,
    init: Annotated[str, typer.Option("--init", help="zero (the raw lens) or lstsq.")] = "zero",
    control: Annotated[bool, typer.Option("--control", help="Train on shuffled (state, top output) pairs: a "
                                          "control of what translators learn on their own.")] = False,
    validation: Annotated[int | None, _opt("--validation", "Held-out examples (default: 10%, at most 256).")] = None,
    limit: Annotated[int | None, _opt("--limit", "Use only the first N usable rows.")] = None,
    input_field: Annotated[str | None, _opt("--input-field", "Field holding the input.")] = None,
    target_field: Annotated[str | None, _opt("--target-field", "Field holding the reference.")] = None,
    config: Annotated[str | None, _opt("--config", "Hub data set configuration.")] = None,
    split: Annotated[str | None, _opt("--split", "Data set split.")] = None,
    template: Annotated[str | None, _opt("--template", "Prompt with an {input} placeholder.")] = None,
    *,
    given: dict[str, Any],
) -> None:
    """Train one affine translator per encoder layer (T_l(h) = h + A_l h + b_l) into OUT."""
    with common.friendly_errors():
        from decoderlens.evaluation.data import DataSource
        from decoderlens.tuned.training import Tuner, TuneSettings

        generation, runtime = common.settings_of(GenerationSettings, given), common.settings_of(RuntimeSettings, given)
        settings = TuneSettings(objective, steps, batch, lr, seed, rank, init, control, validation).validate()
        source = DataSource(data, input_field, target_field, None, config, split, template, limit).validate()
        lens = common.load_lens(model, runtime)
        tuner = Tuner(lens, source, settings, generation, runtime)
        for problem in tuner.problems:
            common.err_console.print(f"[yellow]skipped[/yellow] {problem}", highlight=False)
        translators = tuner.run(out)
        info = translators.info
        for layer, (raw, tuned) in enumerate(zip(info["val_kl_raw"], info["val_kl_tuned"], strict=True)):
            common.err_console.print(f"layer {layer}: validation KL {raw:.4f} (raw) -> {tuned:.4f} (tuned)",
                                     highlight=False)
        common.err_console.print(f"translators in {out}/ (use them with --translators {out})", highlight=False)
