"""Training checkpoints: snapshots of the weights, their average, and export as a Hugging Face model folder."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from decoderlens.logic.config import ModelShape
from decoderlens.logic.model import build_model, build_tokenizer


def save_snapshot(folder: Path, step: int, weights: dict[str, torch.Tensor], keep: int) -> None:
    """Save ``weights`` as ``folder/step-N.pt`` and delete all but the newest ``keep`` snapshots."""
    if keep <= 0:
        return
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": weights, "step": step}, folder / f"step-{step:07d}.pt")
    for old in sorted(folder.glob("step-*.pt"))[:-keep]:
        old.unlink()


def averaged_weights(snapshot_dir: Path, last: int) -> tuple[dict[str, torch.Tensor], list[int]]:
    """The mean of the newest ``last`` snapshots' weights, and their steps."""
    paths = sorted(snapshot_dir.glob("step-*.pt"))[-last:]
    if len(paths) < last:
        raise ValueError(f"{snapshot_dir} holds {len(paths)} snapshots, fewer than the {last} to average; "
                         "train with more snapshots kept or average fewer")
    snapshots = [torch.load(path, weights_only=False) for path in paths]
    weights = {key: sum(s["model"][key].float() for s in snapshots) / last for key in snapshots[-1]["model"]}
    return weights, [int(s["step"]) for s in snapshots]


def export_checkpoint(checkpoint: Path, target: Path, half: bool = False, average_last: int = 1) -> Path:
    """Write the model of a training checkpoint as a ``save_pretrained`` folder with its tokenizer.

    ``half`` stores the weights in float16 (half the size; they load back as float32). ``average_last``
    above 1 exports the mean weights of the newest that many snapshots in the run's ``snapshots/``.
    """
    state = torch.load(checkpoint, weights_only=False)
    averaged: list[int] = []
    if average_last > 1:
        state["model"], averaged = averaged_weights(checkpoint.parent / "snapshots", average_last)
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
    if averaged:
        record["averaged_steps"] = averaged
    (target / "training_config.json").write_text(json.dumps(record, indent=2))
    return target
