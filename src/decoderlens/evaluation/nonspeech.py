"""Hallucination: what a speech model's layers say about clips without speech. The clips are made here (silence
and four kinds of noise), read out at every layer, and a readout that produces words counts as a hallucination."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from decoderlens.evaluation.bootstrap import Estimate, bootstrap
from decoderlens.evaluation.folder import MetricInfo, Summary
from decoderlens.evaluation.metrics import get_normalizer
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.fileio import atomic_write_text, json_line
from decoderlens.inputs import audio_rate, audio_window

HALLUCINATION = "hallucination"
KINDS = ("silence", "white noise", "pink noise", "brown noise", "mains hum")
SECONDS = 5.0
DEFAULT_CLIPS = 8
"""Clips without speech that an evaluation of a speech model reads out unless told otherwise."""


def nonspeech_clips(count: int, rate: int, seconds: float = SECONDS, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``count`` seeded clips without speech, the kinds in turn (silence with a faint dither; white, pink and brown
    noise; a 50 Hz hum with its harmonics under noise), each ``seconds`` long at ``rate`` Hz, peak 0.1 or less."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    clips = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        white = rng.standard_normal(n)
        if kind == "silence":
            wave = 1e-4 * white
        elif kind == "white noise":
            wave = white
        elif kind == "pink noise":
            spectrum = np.fft.rfft(white)
            spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
            wave = np.fft.irfft(spectrum, n)
        elif kind == "brown noise":
            wave = np.cumsum(white)
            wave -= np.linspace(wave[0], wave[-1], n)  # no drift
        else:
            wave = sum(np.sin(2 * np.pi * 50 * h * t) / h for h in (1, 2, 3)) + 0.1 * white
        peak = float(np.max(np.abs(wave))) or 1.0
        level = 1e-4 if kind == "silence" else 0.1 * (0.3 + 0.7 * rng.random())
        clips.append((f"{kind} {index}", (level * wave / peak if kind != "silence" else wave).astype(np.float32)))
    return clips


def clip_count(settings: EvalSettings, modality: str) -> int:
    """Clips to make: as asked, else the default for speech models and none for others."""
    if modality != "speech":
        return 0
    return DEFAULT_CLIPS if settings.nonspeech is None else settings.nonspeech


def measure_hallucination(lens: Any, settings: EvalSettings, summary: Summary, out: Any) -> None:
    """Read out the clips without speech at every layer of the summary (through the run's main lens), add the
    share of readouts that produce words per layer to ``summary`` as the metric ``hallucination``, and write what
    each layer said to ``out`` (``nonspeech.jsonl``)."""
    count = clip_count(settings, lens.adapter.spec.modality)
    if not count:
        return
    rate = audio_rate(lens.processor)
    window = audio_window(lens.processor)
    seconds = min(SECONDS, window / rate) if window else SECONDS  # within what the model reads at once
    clips = nonspeech_clips(count, rate, seconds)
    generation = replace(settings.generation, token_scores=False)
    output = lens.generate([wave for _, wave in clips], generation=generation, runtime=settings.runtime,
                           lens=lens.lenses(settings.lens_mode)[0])
    normalize = get_normalizer(summary.normalize)
    rows = [{"clip": name, "layer": r.layer, "output": r.text}
            for (name, _), example in zip(clips, output, strict=True) for r in example.readouts]
    atomic_write_text(out, "".join(json_line(row) for row in rows))
    estimates: dict[int, Estimate] = {}
    for layer in output.layers:
        words = np.array([[float(bool(normalize(example.layer(layer).text).split())), 1.0] for example in output])
        estimates[layer] = bootstrap(words, lambda s: float(s[0] / s[1]), settings.bootstrap_resamples)
    summary.metrics[HALLUCINATION] = MetricInfo(
        f"share of readouts that produce words on {count} clips without speech (silence and noise, "
        f"{seconds:g} s each)", f"nonspeech:{count}x{seconds:g}s", higher_is_better=False, bounds=[0.0, 1.0])
    for entry in summary.layers:
        if entry.layer in estimates:
            entry.metrics[HALLUCINATION] = estimates[entry.layer]
