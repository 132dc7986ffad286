"""Turning user inputs (text, audio files or arrays, images) into the tensors an encoder reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from decoderlens.architectures import ArchitectureSpec
from decoderlens.errors import InputError
from decoderlens.formats import AUDIO_SUFFIXES, IMAGE_SUFFIXES

UNBOUNDED_LENGTH = 1_000_000


def get_tokenizer(processor: Any) -> Any:
    """The tokenizer inside a processor (or the processor itself when it is a tokenizer)."""
    return getattr(processor, "tokenizer", processor)


def describe(item: Any, index: int | str) -> str:
    """A short label for an input, used in results (the text itself, a file path, or a placeholder)."""
    if isinstance(item, str):
        return item
    if isinstance(item, Path):
        return str(item)
    return f"<{type(item).__name__} #{index}>"


def load_audio(source: str | Path | np.ndarray | tuple[np.ndarray, int], sampling_rate: int) -> np.ndarray:
    """Read an audio file, an array at ``sampling_rate``, or an ``(array, rate)`` pair, as mono float32."""
    if isinstance(source, tuple):
        wave, rate = np.asarray(source[0], dtype=np.float32), int(source[1])
        if rate != sampling_rate:
            import soxr

            wave = np.asarray(soxr.resample(wave, rate, sampling_rate), dtype=np.float32)
        source = wave
    if isinstance(source, np.ndarray):
        wave = source.astype(np.float32)
        if wave.ndim != 1:
            raise InputError(f"an audio array must be 1-D mono samples at {sampling_rate} Hz, got shape {wave.shape}")
        return wave
    import soundfile as sf

    path = Path(source)
    if not path.is_file():
        raise InputError(f"audio file {str(path)!r} does not exist")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises its own LibsndfileError and RuntimeError kinds
        raise InputError(
            f"cannot read audio file {str(path)!r} ({err}); give a valid wav/flac/mp3/ogg file"
        ) from None
    if data.shape[0] == 0:
        raise InputError(f"audio file {str(path)!r} contains no samples")
    wave = data.mean(axis=1)
    if rate != sampling_rate:
        import soxr

        wave = soxr.resample(wave, rate, sampling_rate)
    return np.asarray(wave, dtype=np.float32)


def audio_rate(processor: Any) -> int:
    """The sampling rate a speech model's feature extractor reads (Hz)."""
    return int(getattr(processor, "feature_extractor", processor).sampling_rate)


def audio_window(processor: Any) -> int | None:
    """The most samples a speech model reads at once (Whisper: 30 s), where its feature extractor says."""
    limit = getattr(getattr(processor, "feature_extractor", processor), "n_samples", None)
    return int(limit) if limit else None


def load_image(source: Any) -> Any:
    """Open an image file as RGB (PIL images and arrays pass through)."""
    if not isinstance(source, (str, Path)):
        return source
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            return image.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read image {str(source)!r} ({err}); give a valid PNG/JPEG file") from None


def max_input_length(tokenizer: Any, config: Any) -> int:
    """The longest token sequence the encoder accepts (tokenizer and position-embedding limits)."""
    limits = [int(getattr(tokenizer, "model_max_length", UNBOUNDED_LENGTH) or UNBOUNDED_LENGTH)]
    for name in ("max_position_embeddings", "max_encoder_position_embeddings", "n_positions"):
        value = getattr(config, name, None) or getattr(getattr(config, "encoder", None), name, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
            break
    return min(limits)


@dataclass
class InputPreparer:
    """Builds encoder input tensors for one model, checking that inputs suit its modality."""

    spec: ArchitectureSpec
    processor: Any
    config: Any

    def __call__(self, items: Sequence[Any], truncation: bool = False) -> dict[str, torch.Tensor]:
        if not items:
            raise InputError("no inputs given: pass at least one input")
        modality = self.spec.modality
        for index, item in enumerate(items):
            self._check_kind(item, index)
        if modality == "text":
            return self._text(items, truncation)
        if modality == "speech":
            return self._speech(items)
        return self._vision(items)

    def _check_kind(self, item: Any, index: int) -> None:
        modality = self.spec.modality
        suffix = Path(item).suffix.lower() if isinstance(item, (str, Path)) else ""
        if modality == "text":
            if not isinstance(item, str):
                raise InputError(
                    f"input #{index} is a {type(item).__name__}, but {self.spec.model_type} reads text: pass "
                    "strings (audio and images need a speech or vision encoder-decoder model)"
                )
            if not item.strip():
                raise InputError(f"input #{index} is empty: give non-empty text")
        elif modality == "speech" and not isinstance(item, (np.ndarray, tuple)) and suffix not in AUDIO_SUFFIXES:
            raise InputError(
                f"input #{index} ({describe(item, index)!r}) is not audio: {self.spec.model_type} is a speech "
                f"model; pass audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) or 1-D arrays"
            )
        elif modality == "vision" and isinstance(item, str) and suffix not in IMAGE_SUFFIXES:
            raise InputError(
                f"input #{index} ({item!r}) is not an image file: {self.spec.model_type} reads images; pass "
                "image files or PIL images"
            )

    def _text(self, texts: Sequence[str], truncation: bool) -> dict[str, torch.Tensor]:
        tokenizer = get_tokenizer(self.processor)
        limit = max_input_length(tokenizer, self.config)
        if not truncation:
            lengths = [len(ids) for ids in tokenizer(list(texts)).input_ids]
            for index, length in enumerate(lengths):
                if length > limit:
                    raise InputError(
                        f"input #{index} is {length} tokens long, but the model accepts at most {limit}: "
                        "shorten it or enable truncation (truncation=True, --truncate)"
                    )
        limits = {"truncation": True, "max_length": limit} if truncation else {}
        batch = tokenizer(list(texts), padding=True, return_tensors="pt", **limits)
        return dict(batch)

    def _speech(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        extractor = getattr(self.processor, "feature_extractor", self.processor)
        rate = audio_rate(self.processor)
        waves = [load_audio(item, rate) for item in items]
        limit = audio_window(self.processor)
        for index, wave in enumerate(waves):
            if wave.size == 0:
                raise InputError(f"input #{index} has no audio samples")
            if limit and wave.size > limit:
                raise InputError(
                    f"input #{index} is {wave.size / rate:.1f} s long, but the model reads at most "
                    f"{limit / rate:.0f} s: cut the audio into shorter segments"
                )
        return dict(extractor(waves, sampling_rate=rate, return_tensors="pt", return_attention_mask=True,
                              padding=self.spec.feature_padding))

    def _vision(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        image_processor = getattr(self.processor, "image_processor", self.processor)
        images = [load_image(item) for item in items]
        return {"pixel_values": image_processor(images=images, return_tensors="pt")["pixel_values"]}


def as_items(inputs: Sequence[Any] | str) -> list[Any]:
    """The inputs of one call as a list (one text alone is a list of one); none at all is refused."""
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    if not items:
        raise InputError("no inputs given: pass at least one input")
    return items


def as_targets(items: list[Any], targets: Sequence[str] | str) -> list[str]:
    """One target per input (one text alone is a list of one), or ``InputError``."""
    target_list = [targets] if isinstance(targets, str) else list(targets)
    if len(target_list) != len(items):
        raise InputError(f"got {len(items)} inputs but {len(target_list)} targets: give one target per input")
    return target_list
