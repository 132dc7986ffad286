"""How translators are trained: the settings of ``decoderlens tune`` (every field is an option of the same name)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from decoderlens.errors import InputError
from decoderlens.settings import check_choice, check_count, described

OBJECTIVES = ("auto", "kl", "reference", "lstsq")
CLOSED_FORM_MODALITIES = ("speech",)
"""Encoders that ``auto`` fits in closed form: a KL step decodes every layer against all of a clip's frames
(Whisper-base: 30 s of audio, 1,500 frames), so the hundreds of steps KL needs take hours on a CPU where least
squares takes minutes (measured in ``docs/whisper.md``)."""
FULL_RANK_UP_TO = 1024
"""Translators are full rank up to this width; wider encoders default to low rank."""
LOW_RANK = 64


@dataclass
class TuneSettings:
    """How translators are trained (every field is a ``decoderlens tune`` option of the same name)."""

    objective: str = field(default="auto", metadata=described(
        "kl (self-distillation on the model's own output), reference (cross-entropy on references), lstsq (closed "
        "form), or auto: lstsq for speech encoders, kl for the others.", metavar="auto|kl|reference|lstsq"))
    steps: int = field(default=300, metadata=described("Gradient steps."))
    step_batch: int = field(default=16, metadata=described("Examples per gradient step."))
    lr: float = field(default=0.1, metadata=described(
        "Peak learning rate of SGD with Nesterov momentum (decays linearly to 0)."))
    seed: int = field(default=0, metadata=described("Seed of sampling and initialisation."))
    rank: int | None = field(default=None, metadata=described(
        "Rank of each translator (default: full rank up to width 1024, else 64)."))
    init: str = field(default="zero", metadata=described("zero (the raw lens) or lstsq.", metavar="zero|lstsq"))
    control: bool = field(default=False, metadata=described(
        "Train on shuffled (state, top output) pairs: a control of what translators learn on their own."))
    validation: int | None = field(default=None, metadata=described(
        "Held-out examples (default: 10% of the data, at most 256)."))
    checkpoint_every: int = field(default=50, metadata=described("Steps between two checkpoints."))

    def chosen_objective(self, modality: str) -> str:
        """The objective that runs for an encoder of ``modality`` (``auto`` resolved)."""
        if self.objective != "auto":
            return self.objective
        return "lstsq" if modality in CLOSED_FORM_MODALITIES else "kl"

    def validate(self) -> TuneSettings:
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("init", self.init, ("zero", "lstsq"))
        for name in ("steps", "step_batch", "checkpoint_every"):
            check_count(name, getattr(self, name))
        check_count("rank", self.rank, optional=True)
        check_count("validation", self.validation, optional=True)
        if isinstance(self.lr, bool) or not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                                              and self.lr > 0):
            raise InputError(f"lr (--lr) must be a positive number, got {self.lr!r}")
        return self
