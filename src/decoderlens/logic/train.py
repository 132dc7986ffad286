"""Seeded, resumable training of the logic model on freshly generated formulas, with a size curriculum."""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from decoderlens.logic.data import MAX_SIZE, LogicExample, generate_examples
from decoderlens.logic.formulas import FormulaError, is_satisfying, parse_assignment, truth_mask
from decoderlens.logic.model import ModelShape, build_model, build_tokenizer


@dataclass
class TrainConfig:
    """Everything that determines a training run; stored with every checkpoint and in the model card."""

    seed: int = 0
    max_steps: int = 14_000
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_steps: int = 400
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    curriculum_start_size: int = 6
    curriculum_steps: int = 5_000
    size_band: int = 2
    """Batches hold sizes within this band of a random top size (0: sizes uniform over the whole range)."""
    init_from: str | None = None
    """Start a fresh run (new schedule) from the weights of this checkpoint file or model folder
    (e.g. the shipped model: ``decoderlens.logic.shipped_model_path()``)."""
    eval_every: int = 500
    eval_examples: int = 500
    checkpoint_every: int = 250
    shape: ModelShape = field(default_factory=ModelShape)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.learning_rate * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def curriculum_max_size(step: int, cfg: TrainConfig) -> int:
    """Largest formula size sampled at ``step``: grows linearly to the full range."""
    frac = min(1.0, step / max(1, cfg.curriculum_steps))
    return round(cfg.curriculum_start_size + frac * (MAX_SIZE - cfg.curriculum_start_size))


def training_batch(step: int, cfg: TrainConfig) -> list[LogicExample]:
    """A deterministic batch for ``step``: sizes in a narrow band so that padding stays small."""
    rng = random.Random(cfg.seed * 1_000_003 + step)
    if cfg.size_band == 0:
        return generate_examples(cfg.batch_size, seed=rng.getrandbits(32), max_size=curriculum_max_size(step, cfg))
    top = rng.randint(1, curriculum_max_size(step, cfg))
    low = max(1, top - cfg.size_band)
    return generate_examples(cfg.batch_size, seed=rng.getrandbits(32), max_size=top, min_size=low)


def encode_batch(
    tokenizer: PreTrainedTokenizerBase, examples: list[LogicExample]
) -> dict[str, torch.Tensor]:
    """Tokenise formulas and targets; padded label positions are ignored by the loss."""
    enc = tokenizer([e.formula for e in examples], padding=True, return_tensors="pt")
    labels = tokenizer([e.target for e in examples], padding=True, return_tensors="pt").input_ids
    labels[labels == tokenizer.pad_token_id] = -100
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "labels": labels}


@torch.no_grad()
def semantic_accuracy(
    model: Any, tokenizer: PreTrainedTokenizerBase, examples: list[LogicExample], batch_size: int = 250
) -> tuple[float, float]:
    """Greedy top-layer accuracy: (share semantically correct, share exactly matching the target)."""
    model.eval()
    correct = exact = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        enc = tokenizer([e.formula for e in chunk], padding=True, return_tensors="pt")
        out = model.generate(**enc, max_new_tokens=12, do_sample=False, num_beams=1)
        for ex, text in zip(chunk, tokenizer.batch_decode(out, skip_special_tokens=True), strict=True):
            exact += text.strip() == ex.target
            with contextlib.suppress(FormulaError):
                correct += is_satisfying(truth_mask(ex.formula), parse_assignment(text))
    model.train()
    return correct / len(examples), exact / len(examples)


def train(out_dir: Path, cfg: TrainConfig, validation: list[LogicExample]) -> Path:
    """Train (or resume) into ``out_dir``; returns the folder of the final ``save_pretrained`` model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), cfg.shape)
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
    )
    ckpt_path = out_dir / "checkpoint.pt"
    log_path = out_dir / "train_log.jsonl"
    step, elapsed = 0, 0.0
    if not ckpt_path.exists() and cfg.init_from:
        source = Path(cfg.init_from)
        if source.is_dir():
            weights = type(model).from_pretrained(source, dtype=torch.float32).state_dict()
        else:
            weights = torch.load(source, weights_only=False)["model"]
        model.load_state_dict(weights)
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = state["step"], state["elapsed"]
    started = time.monotonic() - elapsed
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train", dynamic_ncols=True)
    val_acc = float("nan")
    while step < cfg.max_steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        loss = model(**encode_batch(tokenizer, training_batch(step, cfg))).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            val_acc, val_exact = semantic_accuracy(model, tokenizer, validation[: cfg.eval_examples])
            with log_path.open("a") as f:
                record = {"step": step, "loss": loss.item(), "val_correct": val_acc, "val_exact": val_exact,
                          "max_size": curriculum_max_size(step, cfg), "minutes": (time.monotonic() - started) / 60}
                f.write(json.dumps(record) + "\n")
        bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val_acc:.3f}", size=curriculum_max_size(step, cfg))
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                     "elapsed": time.monotonic() - started, "config": asdict(cfg)}
            torch.save(state, ckpt_path.with_suffix(".tmp"))
            ckpt_path.with_suffix(".tmp").replace(ckpt_path)
    bar.close()
    return export_checkpoint(ckpt_path, out_dir / "model")


def export_checkpoint(checkpoint: Path, target: Path, half: bool = False) -> Path:
    """Write the model of a training checkpoint as a ``save_pretrained`` folder with its tokenizer.

    ``half`` stores the weights in float16 (half the size; they load back as float32).
    """
    state = torch.load(checkpoint, weights_only=False)
    cfg_dict = dict(state["config"])
    shape = ModelShape(**cfg_dict.pop("shape"))
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), shape)
    model.load_state_dict(state["model"])
    model.eval()
    model.generation_config.max_new_tokens = 16
    (model.half() if half else model).save_pretrained(target)
    tokenizer.save_pretrained(target)
    record = {**cfg_dict, "shape": asdict(shape), "steps": state["step"], "minutes": state["elapsed"] / 60}
    (target / "training_config.json").write_text(json.dumps(record, indent=2))
    return target
