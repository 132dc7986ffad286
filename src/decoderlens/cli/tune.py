"""``decoderlens tune``: train tuned-lens translators, one per encoder layer, the model frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.evaluation.data import DataSource
from decoderlens.settings import GenerationSettings, LoadSettings, RuntimeSettings
from decoderlens.tuned.settings import TuneSettings


@common.settings_options(TuneSettings, DataSource, GenerationSettings, RuntimeSettings, LoadSettings,
                         skip=("path", "id_field", "layers", "num_beams", "top_length_cap", "translators", "top_k",
                               "batch_size", "decoding", "first_round"))
def tune_command(
    model: common.ModelArg,
    data: Annotated[str, typer.Argument(help="Data as for eval: JSONL/CSV/TSV, datasets folder, audio folder or Hub "
                                        "data set.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the translators (resumed if it holds a "
                                      "checkpoint).")],
    *,
    given: dict[str, Any],
) -> None:
    """Train one affine translator per encoder layer (T_l(h) = h + A_l h + b_l) into OUT."""
    with common.friendly_errors():
        from decoderlens.tuned.training import Tuner

        generation, runtime = common.settings_of(GenerationSettings, given), common.settings_of(RuntimeSettings, given)
        settings = common.settings_of(TuneSettings, given)
        names = {name: value for name, value in given.items() if name in DataSource.__dataclass_fields__}
        source = DataSource(data, **names).validate()
        lens = common.load_lens(model, common.settings_of(LoadSettings, given))
        tuner = Tuner(lens, source, settings, generation, runtime)
        for problem in tuner.problems:
            common.err_console.print(f"[yellow]skipped[/yellow] {problem}", highlight=False)
        translators = tuner.run(out)
        info = translators.info
        for layer, (raw, tuned) in enumerate(zip(info["val_kl_raw"], info["val_kl_tuned"], strict=True)):
            common.err_console.print(f"layer {layer}: validation KL {raw:.4f} (raw) -> {tuned:.4f} (tuned)",
                                     highlight=False)
        common.err_console.print(speed_line(info), highlight=False)
        common.err_console.print(f"translators in {out}/ (use them with --translators {out})", highlight=False)


def speed_line(info: dict[str, Any]) -> str:
    """Where the training's time went, in one line."""
    timing = info.get("timing", {})
    besides = [f"top outputs {timing.get('targets', 0):.0f} s"]
    if info.get("steps"):
        besides.append(f"{info['steps']} steps of {timing.get('seconds_per_step', 0):.2f} s (forward "
                       f"{timing.get('forward', 0):.0f} s, backward {timing.get('backward', 0):.0f} s)")
    if timing.get("lstsq"):
        besides.append(f"least squares {timing['lstsq']:.0f} s")
    besides.append(f"validation {timing.get('validation', 0):.0f} s")
    return (f"{info.get('objective')} in {info.get('seconds', 0) / 60:.1f} min: encoder "
            f"{timing.get('encoder', 0):.0f} s ({timing.get('states_encoded', 0):.0f} examples encoded, "
            f"{timing.get('states_reused', 0):.0f} read back from kept states); besides it " + ", ".join(besides))
