"""Checkpoints of a training run: written whole or not at all, resumed only by the very run that wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from decoderlens.errors import InputError


def save_checkpoint(state: dict[str, Any], checkpoint: Path) -> None:
    """Write a checkpoint whole or not at all: a full disk keeps the last good one and says so in one line."""
    scratch = checkpoint.with_suffix(".tmp")
    try:
        torch.save(state, scratch)
        scratch.replace(checkpoint)
    except (OSError, RuntimeError) as err:
        scratch.unlink(missing_ok=True)
        kept = " (the last checkpoint is kept)" if checkpoint.exists() else ""
        raise InputError(f"cannot write {checkpoint} ({err}){kept}: free some disk space and run the same command "
                         "again to resume") from None


def resume(checkpoint: Path, identity: dict[str, Any], model: torch.nn.Module,
           optimizer: torch.optim.Optimizer) -> int:
    """Load a checkpoint of this very run (``identity``: its settings, model and data) into ``model`` and
    ``optimizer``; returns its step."""
    try:
        state = torch.load(checkpoint, weights_only=False)
        saved = state.get("identity") if isinstance(state, dict) else None
    except Exception as err:  # torch raises many kinds for truncated or foreign files
        raise InputError(f"{checkpoint} is damaged or not a tune checkpoint ({type(err).__name__}): delete it to "
                         "start over") from None
    if not isinstance(saved, dict):
        raise InputError(f"{checkpoint} is not a checkpoint of decoderlens tune: delete it to start over")
    changed = [name for name in identity if saved.get(name) != identity[name]]
    if changed:
        raise InputError(f"{checkpoint} belongs to a run with another {' and '.join(changed)}: use another --out "
                         "folder, or delete it to start over")
    try:
        model.load_state_dict(state["translators"])
        optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise InputError(f"{checkpoint} is damaged ({type(err).__name__}): delete it to start over") from None
