"""The model card that ships next to the logic model's weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from decoderlens.logic.analysis import LogicAnalysis


def model_card(training: dict[str, Any], analysis: LogicAnalysis, num_examples: int) -> str:
    """Markdown card: task, architecture, training configuration and measured per-layer results."""
    shape = training.get("shape", {})
    rows = "\n".join(
        f"| {layer} | {r.parses:.1%} | {r.correct:.1%} | {r.exact:.1%} |" for layer, r in analysis.overall.items()
    )
    base = analysis.baselines
    steps = int(training.get("steps", 0))
    batch = int(training.get("batch_size", 0))
    return f"""---
library_name: transformers
tags: [decoderlens, propositional-logic, t5]
license: apache-2.0
---
# decoderlens logic model

A T5 encoder-decoder trained from scratch to output a satisfying assignment for a propositional
formula over `a..e` (operators `! & | xor <->`, Polish notation, sizes 1-35), in the spirit of the
DecoderLens paper's logic model (6 encoder + 6 decoder layers). It is the embedded default of
`decoderlens demo`.

## Architecture
T5 (relu feed-forward), d_model {shape.get("d_model")}, {shape.get("num_layers")} encoder and
{shape.get("num_layers")} decoder layers, {shape.get("num_heads")} heads, feed-forward {shape.get("d_ff")},
dropout {shape.get("dropout")}, {shape.get("position_buckets", 16)} relative-position buckets; word-level
tokenizer over `<pad> </s> <unk> a b c d e ! & | xor <-> 0 1`. It is an ordinary
`T5ForConditionalGeneration`: nothing beyond the Hugging Face model is needed to run it.

## Training
- data: formulas generated afresh for every batch by the seeded generator
  (`decoderlens.logic.data`), sizes uniform up to the curriculum's limit{slices_text(training)};
  {steps:,} steps x {batch} formulas = {steps * batch:,} formulas seen;
- target: {target_text(training)};
- loss: cross-entropy on the target{aux_text(training)};
- AdamW (betas 0.9/0.98, weight decay {training.get("weight_decay")}), peak learning rate
  {training.get("learning_rate")}, {training.get("warmup_steps")} warm-up steps, cosine decay to
  {training.get("min_lr_ratio")} of the peak; gradient clipping 1.0;
- curriculum: {curriculum_text(training)};
- seed {training.get("seed")}; {float(training.get("minutes", 0.0)):.0f} minutes of training on a CPU (wall clock)
  (`decoderlens logic train`; the run resumes from its checkpoint){averaging_text(training)}.
{"" if not training.get("notes") else chr(10) + "History: " + str(training["notes"]) + chr(10)}
## Results (greedy decoding, {num_examples} held-out test formulas)
| encoder layer read | logic_parses | logic_correct (semantically correct) | accuracy (exact match) |
|---|---|---|---|
{rows}

Trivial baselines on the same formulas: the best constant answer ({base["best_constant_answer"]}) is
correct for {float(base["best_constant"]):.1%}; a uniformly random full assignment for
{float(base["random_full_assignment"]):.1%}.
"""


def slices_text(training: dict[str, Any]) -> str:
    """How the card describes micro-batches (nothing when each batch runs whole)."""
    slices = int(training.get("micro_batches", 1))
    if slices <= 1:
        return ""
    return f"; each batch is sorted by size and run in {slices} slices (less padding, same gradient)"


def curriculum_text(training: dict[str, Any]) -> str:
    """How the card describes the size curriculum."""
    if not int(training.get("curriculum_steps", 0)):
        return "none (all sizes from the first step)"
    return (f"formula sizes up to {training.get('curriculum_start_size')} at first, growing linearly to 35 "
            f"over {training.get('curriculum_steps')} steps")


def averaging_text(training: dict[str, Any]) -> str:
    """How the card describes checkpoint averaging at export (absent when the checkpoint was exported as is)."""
    steps = training.get("averaged_steps")
    if not steps:
        return ""
    return (f";\n- the shipped weights are the mean of {len(steps)} snapshots taken every "
            f"{training.get('checkpoint_every')} steps, from step {steps[0]:,} to step {steps[-1]:,}")


def target_text(training: dict[str, Any]) -> str:
    """How the card describes the training target (older runs trained on minimal assignments)."""
    if training.get("target", "minimal") == "majority":
        return ("a full satisfying assignment built in variable order, each variable taking the value that keeps "
                "more satisfying completions (0 on ties); any satisfying assignment counts as correct, and exact "
                "match below is measured against this target")
    return "the minimal satisfying partial assignment (fewest variables, then variable order)"


def aux_text(training: dict[str, Any]) -> str:
    """How the card describes the auxiliary truth-table loss (absent in older runs)."""
    weight = float(training.get("aux_weight", 0.0))
    if not weight:
        return ""
    return (f", plus {weight:g} x an auxiliary loss during training only: a linear probe on the final encoder "
            "output predicts, at every input position, the 32-entry truth table of the subformula that starts "
            "there (binary cross-entropy). The probe is not part of the shipped model")


def write_model_card(model_dir: Path, analysis: LogicAnalysis, num_examples: int) -> Path:
    """Write ``README.md`` into ``model_dir`` from its ``training_config.json`` and ``analysis``."""
    training = json.loads((model_dir / "training_config.json").read_text())
    path = model_dir / "README.md"
    path.write_text(model_card(training, analysis, num_examples), encoding="utf-8")
    return path
