"""A checkpoint is written whole or not at all: a full disk keeps the last good one and says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from decoderlens import InputError
from decoderlens.tuned import checkpoints


def test_a_full_disk_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoints.save_checkpoint({"step": 2}, checkpoint)
    good = checkpoint.read_bytes()

    def full_disk(state: object, path: Path) -> None:
        Path(path).write_bytes(b"half a checkp")  # what a full disk leaves behind
        raise RuntimeError("[enforce fail at inline_container.cc] PytorchStreamWriter failed writing file: "
                           "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(InputError, match=r"cannot write .*checkpoint.pt .*\(the last checkpoint is kept\): free "):
        checkpoints.save_checkpoint({"step": 4}, checkpoint)
    assert checkpoint.read_bytes() == good and not checkpoint.with_suffix(".tmp").exists()
    monkeypatch.undo()
    assert torch.load(checkpoint, weights_only=False) == {"step": 2}
