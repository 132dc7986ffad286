"""Encoder states kept across training steps: every example is encoded once, its layer states kept in memory
as they are within a budget, spilled to disk in float16 beyond it, and encoded again only where neither has
room."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from decoderlens.adapter import EncodedBatch
from decoderlens.batching import encode
from decoderlens.budget import available_bytes
from decoderlens.model_parts import ModelParts

MEMORY_SHARE = 0.5
"""Share of the automatic memory budget (a share of what is free) the kept states may take."""
DISK_SHARE = 0.5
"""Share of the free disk space the spilled states may take."""


@dataclass
class CacheStats:
    """What the cache did: examples encoded (and how long that took), read back, kept where."""

    encoded: int = 0
    encoding_seconds: float = 0.0
    reused: int = 0
    in_memory: int = 0
    on_disk: int = 0
    bytes_in_memory: int = 0
    bytes_on_disk: int = 0

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float16 where it fits that range, else as it is (some encoders' states overflow float16)."""
    if not tensor.is_floating_point() or tensor.dtype == torch.float16:
        return tensor
    half = tensor.to(torch.float16)
    return half if bool(torch.isfinite(half).all()) else tensor


def _row(encoded: EncodedBatch, index: int) -> dict[str, torch.Tensor]:
    """One example of an encoded batch as named CPU tensors of its own."""
    named = {f"hidden_{i}": state[index: index + 1] for i, state in enumerate(encoded.hidden_states)}
    named["final"] = encoded.final_output[index: index + 1]
    if encoded.attention_mask is not None:
        named["mask"] = encoded.attention_mask[index: index + 1]
    if encoded.input_ids is not None:
        named["input_ids"] = encoded.input_ids[index: index + 1]
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in named.items()}


def _size(named: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in named.values())


@dataclass
class StateCache:
    """Per example key, its encoder states; ``encoded(keys, items)`` gives a batch in the order asked."""

    parts: ModelParts
    truncation: bool = False
    max_memory: int | str | None = None
    """The runtime's memory budget for one encoder batch (as ``encode`` takes it)."""
    memory_budget: int | None = None
    """Bytes the states may take in memory (default: half the automatic budget of the CPU, where they are kept)."""
    disk_budget: int | None = None
    """Bytes the states may take on disk (default: half the free space of the temporary folder)."""
    stats: CacheStats = field(default_factory=CacheStats)
    _memory: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    _derived: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)
    _disk: dict[str, Path] = field(default_factory=dict)
    _folder: tempfile.TemporaryDirectory[str] | None = None
    _form: tuple[torch.dtype, type[Any]] | None = None
    """The states' dtype and the encoder's output class, from the first batch encoded."""

    def __post_init__(self) -> None:
        if self.memory_budget is None:
            share = available_bytes("cpu")
            self.memory_budget = int(MEMORY_SHARE * share) if share is not None else 0

    def encoded(self, keys: list[str], items: list[Any], keep: bool = True) -> EncodedBatch:
        """The encoder states of ``items`` (known by ``keys``): kept ones read back, the others encoded in one
        batch and, with ``keep`` (they will be asked for again), kept where there is room."""
        missing = [i for i, key in enumerate(keys) if key not in self._memory and key not in self._disk]
        fresh: dict[str, dict[str, torch.Tensor]] = {}
        if missing:
            started = time.monotonic()
            batch = encode(self.parts, [items[i] for i in missing], self.truncation, self.max_memory)
            self.stats.encoding_seconds += time.monotonic() - started
            self.stats.encoded += len(missing)
            self._form = self._form or (batch.final_output.dtype, batch.output_type)
            if len(missing) == len(keys):  # all new: the encoder's own states, not copies read back
                for row, key in enumerate(keys):
                    if keep:
                        self._keep(key, _row(batch, row))
                return batch
            for row, i in enumerate(missing):
                fresh[keys[i]] = _row(batch, row)
                if keep:
                    self._keep(keys[i], fresh[keys[i]])
        self.stats.reused += len(keys) - len(missing)
        rows = [fresh.get(key) or self._read(key) for key in keys]
        return self._batch(rows)

    def remember(self, key: str, name: str, tensor: torch.Tensor) -> None:
        """Keep ``tensor``, something computed from example ``key``'s states that will be asked for again (a
        teacher's log-probabilities), in memory where the budget has room for it."""
        size = tensor.numel() * tensor.element_size()
        if self.stats.bytes_in_memory + size <= (self.memory_budget or 0):
            self._derived[key, name] = tensor.detach().to("cpu", copy=True)
            self.stats.bytes_in_memory += size

    def recall(self, key: str, name: str) -> torch.Tensor | None:
        """What ``remember`` kept under ``key`` and ``name`` (``None``: nothing)."""
        return self._derived.get((key, name))

    def _keep(self, key: str, named: dict[str, torch.Tensor]) -> None:
        size = _size(named)
        if self.stats.bytes_in_memory + size <= (self.memory_budget or 0):
            self._memory[key] = named
            self.stats.in_memory += 1
            self.stats.bytes_in_memory += size
            return
        folder = self._spill_folder()
        compact = {name: _compact(tensor) for name, tensor in named.items()}
        if folder is None or self.stats.bytes_on_disk + _size(compact) > (self.disk_budget or 0):
            return  # no room anywhere: this example is encoded again when it comes back
        path = folder / f"{len(self._disk)}.safetensors"
        try:
            save_file(compact, str(path))
        except OSError:
            path.unlink(missing_ok=True)
            self.disk_budget = 0  # the disk is full after all: keep nothing more there
            return
        self._disk[key] = path
        self.stats.on_disk += 1
        self.stats.bytes_on_disk += _size(compact)

    def _spill_folder(self) -> Path | None:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="decoderlens-states-")
            if self.disk_budget is None:
                self.disk_budget = int(DISK_SHARE * shutil.disk_usage(self._folder.name).free)
        return Path(self._folder.name) if self.disk_budget else None

    def _read(self, key: str) -> dict[str, torch.Tensor]:
        return self._memory[key] if key in self._memory else load_file(str(self._disk[key]))

    def _batch(self, rows: list[dict[str, torch.Tensor]]) -> EncodedBatch:
        """Rows back into one encoded batch in the model's dtype, on its device, padded in time as ``encode``
        pads inputs encoded one at a time."""
        assert self._form is not None, "states are read back only after some were encoded"
        (dtype, output_type), device = self._form, self.parts.device

        def back(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)

        def single(named: dict[str, torch.Tensor]) -> EncodedBatch:
            count = sum(name.startswith("hidden_") for name in named)
            return EncodedBatch([back(named[f"hidden_{i}"]) for i in range(count)], back(named["final"]),
                                back(named["mask"]) if "mask" in named else None, output_type,
                                back(named["input_ids"]) if "input_ids" in named else None)

        return self.parts.adapter.merge([single(named) for named in rows])

    def close(self) -> None:
        """Forget the kept states and delete the spilled ones."""
        self._memory.clear()
        self._derived.clear()
        self._disk.clear()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
