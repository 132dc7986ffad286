"""What determines a logic-model training run: the model's shape and the training settings (stored with every
checkpoint and in the model card; ``decoderlens logic train`` makes its options from these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field

from decoderlens.errors import InputError
from decoderlens.settings import check_count, described


@dataclass(frozen=True)
class ModelShape:
    """Shape of the from-scratch model (defaults: the shipped model's, 6+6 layers of width 64; the paper's is 128):
    residual width ``d_model``, ``num_layers`` encoder blocks and as many decoder blocks, feed-forward width
    ``d_ff``."""

    d_model: int = 64
    num_layers: int = 6
    num_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.0
    position_buckets: int = 160
    """T5 relative-position buckets; 160 (80 per direction) keeps every offset within a formula distinct."""


@dataclass
class TrainConfig:
    """Everything that determines a training run (field help = its documentation and its option's help)."""

    seed: int = field(default=0, metadata=described(
        "Seeds the model's initialisation and every batch (batches are generated afresh from it)."))
    max_steps: int = field(default=16_000, metadata=described("Optimiser steps; the learning-rate schedule ends "
                                                              "there."))
    batch_size: int = field(default=64, metadata=described("Formulas per step."))
    micro_batches: int = field(default=4, metadata=described(
        "Each batch is sorted by formula size and run in this many slices (less padding, same gradient)."))
    learning_rate: float = field(default=1e-3, metadata=described("Peak learning rate of AdamW (betas 0.9/0.98).",
                                                                  flag="--lr"))
    warmup_steps: int = field(default=300, metadata=described("Steps of linear warm-up before the cosine decay."))
    min_lr_ratio: float = field(default=0.1, metadata=described("Where the cosine decay ends, as a share of the "
                                                                "peak."))
    weight_decay: float = field(default=0.01, metadata=described("AdamW weight decay."))
    curriculum_start_size: int = field(default=6, metadata=described(
        "Largest formula size at the first step of the curriculum."))
    curriculum_steps: int = field(default=5_000, metadata=described(
        "Steps over which the largest size grows to 35 (0: all sizes from the start)."))
    size_bias: float = field(default=0.0, metadata=described(
        "Formula sizes are drawn with weight size**size_bias (0: uniform, as in the test split; 1 dwells on large "
        "formulas)."))
    target: str = field(default="majority", metadata=described(
        "What the model learns to write: 'majority' (a full assignment, each variable towards more satisfying "
        "completions) or 'minimal' (the generator's minimal partial assignment). Validation examples should carry "
        "the same kind, so that exact match is measured against it.", metavar="majority|minimal"))
    aux_weight: float = field(default=1.0, metadata=described(
        "Weight of the auxiliary loss: a linear probe on the encoder output predicts the 32-entry truth table of "
        "the subformula at every position (0: plain sequence-to-sequence). The probe is dropped at export."))
    init_from: str | None = field(default=None, metadata=described(
        "Warm-start a fresh run (new schedule) from the weights of this checkpoint file or model folder "
        "('shipped': the shipped model).", metavar="PATH"))
    eval_every: int = field(default=500, metadata=described("Steps between validation passes."))
    eval_examples: int = field(default=500, metadata=described("Validation formulas per pass."))
    checkpoint_every: int = field(default=250, metadata=described("Steps between checkpoints."))
    snapshots: int = field(default=8, metadata=described(
        "The model weights of the last this many checkpoints are kept in snapshots/ (for averaging at export)."))
    shape: ModelShape = field(default_factory=ModelShape)

    def validate(self) -> TrainConfig:
        """Raise ``InputError`` naming the setting and its option for any value that cannot work."""
        from decoderlens.logic.data import TARGET_KINDS  # lazy: numpy stays out of the command line's --help

        for name in ("max_steps", "batch_size", "micro_batches", "eval_every", "eval_examples", "checkpoint_every",
                     "snapshots"):
            check_count(name, getattr(self, name))
        for name in ("warmup_steps", "curriculum_steps", "curriculum_start_size", "seed"):
            check_count(name, getattr(self, name), minimum=0)
        for name in ("size_bias", "aux_weight", "weight_decay", "min_lr_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"{name} must be a number of at least 0, got {value!r}")
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate (--lr) must be a positive number, got {self.learning_rate!r}")
        if self.target not in TARGET_KINDS:
            raise InputError(f"target (--target) must be one of {', '.join(TARGET_KINDS)}, got {self.target!r}")
        return self
