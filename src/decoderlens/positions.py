"""What each encoder position stands for: an input token (text), a stretch of audio with its times in seconds
(speech), or an image patch (vision). Tracing and attribution label their positions with it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from decoderlens.inputs import load_audio
from decoderlens.model_parts import ModelParts


@dataclass
class SourcePosition:
    """One encoder position: its index, a label, and for speech the seconds it covers."""

    position: int
    label: str
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The position as JSON: ``start``/``end`` only where they are known (speech)."""
        data: dict[str, Any] = {"position": self.position, "label": self.label}
        if self.start is not None:
            data.update(start=self.start, end=self.end)
        return data


def input_seconds(parts: ModelParts, item: Any) -> float:
    """The duration the speech model's input features cover (its fixed window where it pads to one)."""
    extractor = getattr(parts.processor, "feature_extractor", parts.processor)
    rate = int(extractor.sampling_rate)
    if parts.adapter.spec.feature_padding == "max_length" and getattr(extractor, "n_samples", None):
        return float(extractor.n_samples) / rate
    return load_audio(item, rate).size / rate


def source_positions(parts: ModelParts, item: Any, length: int, ids: list[int] | None = None) -> list[SourcePosition]:
    """The ``length`` encoder positions of ``item``: its tokens ``ids`` (text), frames with their seconds (speech)
    or patches (vision; a leading class token where the grid is square after it)."""
    if ids is not None:
        return [SourcePosition(i, str(token)) for i, token in enumerate(parts.tokenizer.convert_ids_to_tokens(ids))]
    if parts.adapter.spec.modality == "speech":
        step = input_seconds(parts, item) / length
        return [SourcePosition(i, f"{i * step:.2f}s", round(i * step, 4), round((i + 1) * step, 4))
                for i in range(length)]
    side = math.isqrt(max(0, length - 1))
    if length > 1 and side * side == length - 1:
        return [SourcePosition(0, "[CLS]"), *(SourcePosition(i + 1, f"patch r{i // side}c{i % side}")
                                              for i in range(length - 1))]
    return [SourcePosition(i, f"patch {i}") for i in range(length)]
