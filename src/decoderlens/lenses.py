"""The lens as a value: how an encoder layer's state is handed to the decoder. The raw lens hands it over as it
is (DecoderLens); a tuned lens maps it through that layer's trained translator first. Every analysis takes the
lens to read through as an argument, so nothing toggles shared state."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from decoderlens.errors import InputError
from decoderlens.settings import LensMode
from decoderlens.translators import Translators, model_fingerprint


class Lens(Protocol):
    """What the decoder reads from encoder layer ``layer``: ``transform(layer, states)``; ``name`` is recorded in
    results (``raw``, or ``tuned:<hash>``)."""

    @property
    def name(self) -> str:
        """How results name this lens."""
        ...

    def transform(self, layer: int, states: torch.Tensor) -> torch.Tensor:
        """The states the decoder cross-attends for ``layer`` (batch, time, width)."""
        ...


@dataclass(frozen=True)
class RawLens:
    """DecoderLens as in the paper: the decoder reads each layer's states unchanged."""

    name: str = "raw"

    def transform(self, layer: int, states: torch.Tensor) -> torch.Tensor:
        return states


RAW = RawLens()


@dataclass(frozen=True)
class TunedLens:
    """Reads every layer below the top through its trained affine translator (the top layer is never mapped)."""

    translators: Translators = field(compare=False)
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"tuned:{self.translators.info.get('fingerprint', '?')}")

    def transform(self, layer: int, states: torch.Tensor) -> torch.Tensor:
        return self.translators(layer, states) if layer < self.translators.num_layers else states


def tuned_lens(source: str | Path | Translators, model: Any, encoder: torch.nn.Module, num_layers: int, width: int,
               device: torch.device, force: bool = False) -> TunedLens:
    """A tuned lens from translators (a folder, Hub id or object) made for this model. Translators of another
    shape are refused; of another model of the same shape too, unless ``force`` (then with a warning)."""
    loaded = source if isinstance(source, Translators) else Translators.load(source)
    if loaded.num_layers != num_layers or loaded.d_model != width:
        raise InputError(f"these translators are for an encoder of {loaded.num_layers} layers of width "
                         f"{loaded.d_model}, this one has {num_layers} of width {width}: train translators for this "
                         "model (decoderlens tune)")
    expected = loaded.info.get("model_hash")
    actual = model_fingerprint(model, encoder)
    if expected != actual:
        message = (f"these translators were trained for another model ({loaded.info.get('model')}, hash "
                   f"{expected}; this one is {actual})")
        if not force:
            raise InputError(message + ": train translators for this model, or pass force=True (--force)")
        warnings.warn(message + "; used anyway (force)", stacklevel=3)
    if loaded.info.get("worse_than_raw"):
        warnings.warn(f"these translators read layers {loaded.info['worse_than_raw']} worse than the raw lens on "
                      "held-out data: their training went wrong", stacklevel=3)
    return TunedLens(loaded.to(device))


def lenses_for(mode: LensMode | str, tuned: Lens | None) -> list[Lens]:
    """The lenses a mode reads, first the one whose readouts lead (tuned where both are read)."""
    mode = LensMode(mode)
    if mode is LensMode.raw:
        return [RAW]
    if tuned is None or tuned.name == RAW.name:
        raise InputError(f"lens {mode.value} needs translators: give --translators DIR (from decoderlens tune)")
    return [tuned] if mode is LensMode.tuned else [tuned, RAW]
