"""Seeded, resumable training of the logic model on freshly generated formulas, with a size curriculum
and an auxiliary truth-table loss on the encoder output."""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from decoderlens.logic.checkpoints import export_checkpoint, save_snapshot
from decoderlens.logic.config import TrainConfig
from decoderlens.logic.data import MAX_SIZE, LogicExample, generate_examples
from decoderlens.logic.formulas import (
    NUM_ASSIGNMENTS,
    FormulaError,
    is_satisfying,
    parse_assignment,
    subformula_masks,
    truth_mask,
)
from decoderlens.logic.model import build_model, build_tokenizer


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
    """A deterministic batch for ``step``, sizes uniform up to the curriculum's limit, sorted by size."""
    rng = random.Random(cfg.seed * 1_000_003 + step)
    examples = generate_examples(cfg.batch_size, seed=rng.getrandbits(32), max_size=curriculum_max_size(step, cfg),
                                 target=cfg.target, size_bias=cfg.size_bias)
    return sorted(examples, key=lambda e: e.size)


def encode_batch(
    tokenizer: PreTrainedTokenizerBase, examples: list[LogicExample]
) -> dict[str, torch.Tensor]:
    """Tokenise formulas and targets; padded label positions are ignored by the loss."""
    enc = tokenizer([e.formula for e in examples], padding=True, return_tensors="pt")
    labels = tokenizer([e.target for e in examples], padding=True, return_tensors="pt").input_ids
    labels[labels == tokenizer.pad_token_id] = -100
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "labels": labels}


def truth_table_targets(examples: list[LogicExample], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example and input position: the subformula's truth table as 32 bits, and which positions have one."""
    bits = torch.zeros(len(examples), width, NUM_ASSIGNMENTS)
    valid = torch.zeros(len(examples), width, dtype=torch.bool)
    shifts = torch.arange(NUM_ASSIGNMENTS)
    for row, example in enumerate(examples):
        masks = torch.tensor(subformula_masks(example.formula))
        bits[row, : len(masks)] = ((masks[:, None] >> shifts) & 1).float()
        valid[row, : len(masks)] = True
    return bits, valid


def batch_loss(model: Any, probe: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
               examples: list[LogicExample], aux_weight: float) -> torch.Tensor:
    """Cross-entropy on the target plus the weighted truth-table loss of the encoder-output probe."""
    batch = encode_batch(tokenizer, examples)
    out = model(**batch)
    if not aux_weight:
        return out.loss  # type: ignore[no-any-return]
    bits, valid = truth_table_targets(examples, batch["input_ids"].shape[1])
    logits = probe(out.encoder_last_hidden_state)
    aux = torch.nn.functional.binary_cross_entropy_with_logits(logits[valid], bits[valid])
    return out.loss + aux_weight * aux  # type: ignore[no-any-return]


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
    probe = torch.nn.Linear(cfg.shape.d_model, NUM_ASSIGNMENTS)
    model.train()
    optimizer = torch.optim.AdamW(
        [*model.parameters(), *probe.parameters()], lr=cfg.learning_rate, betas=(0.9, 0.98),
        weight_decay=cfg.weight_decay,
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
        if "probe" in state:
            probe.load_state_dict(state["probe"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = state["step"], state["elapsed"]
    started = time.monotonic() - elapsed
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train", dynamic_ncols=True)
    val_acc = float("nan")
    slices = max(1, min(cfg.micro_batches, cfg.batch_size))
    while step < cfg.max_steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        examples = training_batch(step, cfg)
        total = 0.0
        for part in range(slices):
            chunk = examples[part * len(examples) // slices : (part + 1) * len(examples) // slices]
            loss = batch_loss(model, probe, tokenizer, chunk, cfg.aux_weight) * len(chunk) / len(examples)
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_([*model.parameters(), *probe.parameters()], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            val_acc, val_exact = semantic_accuracy(model, tokenizer, validation[: cfg.eval_examples])
            with log_path.open("a") as f:
                record = {"step": step, "loss": total, "val_correct": val_acc, "val_exact": val_exact,
                          "max_size": curriculum_max_size(step, cfg), "minutes": (time.monotonic() - started) / 60}
                f.write(json.dumps(record) + "\n")
        bar.set_postfix(loss=f"{total:.3f}", val=f"{val_acc:.3f}", size=curriculum_max_size(step, cfg))
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            state = {"model": model.state_dict(), "probe": probe.state_dict(), "optimizer": optimizer.state_dict(),
                     "step": step, "elapsed": time.monotonic() - started, "config": asdict(cfg)}
            torch.save(state, ckpt_path.with_suffix(".tmp"))
            ckpt_path.with_suffix(".tmp").replace(ckpt_path)
            save_snapshot(out_dir / "snapshots", step, state["model"], cfg.snapshots)
    bar.close()
    return export_checkpoint(ckpt_path, out_dir / "model")
