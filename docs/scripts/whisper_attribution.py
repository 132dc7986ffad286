"""Which seconds of a clip each layer's words come from, on real Whisper (docs/attribution.md).

Two sentences are spoken by espeak-ng with a pause between them, so that each word's true stretch of audio is
known to the sentence. Every layer's readout is attributed to the encoder's frames (gradient x input, the
default); the script prints, per layer, the share of the attribution's magnitude that falls on each sentence, on
the pause and on the rest of the 30-s window, and for each readout word that belongs to one sentence whether its
strongest frame lies in that sentence; then the time the clip takes at the defaults (all layers, grad) and with
each method on the top layer alone, and a figure.

    python docs/scripts/whisper_attribution.py ~/.cache/real-whisper/whisper-base \
        --out docs/figures/attribution_whisper.png
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from decoderlens import DecoderLens
from decoderlens.presentation.attribution_view import plot_attribution

FIRST, SECOND, PAUSE = "The house is small.", "Our neighbours have a black cat.", 1.0
RATE = 16000


def spoken(text: str, folder: Path, name: str) -> np.ndarray:
    """``text`` spoken by espeak-ng at 16 kHz mono."""
    raw, wav = folder / f"{name}-raw.wav", folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(wav)], check=True)
    return sf.read(wav, dtype="float32")[0]


def words(text: str) -> set[str]:
    """The words of ``text`` that can only be one word (three letters or more: not "a", "is")."""
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--out", type=Path, default=Path("attribution_whisper.png"))
    parser.add_argument("--methods", default="grad,ig,occlusion")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    first, second = spoken(FIRST, folder, "first"), spoken(SECOND, folder, "second")
    clip = np.concatenate([first, np.zeros(int(PAUSE * RATE), np.float32), second])
    path = folder / "clip.wav"
    sf.write(path, clip, RATE)
    spans = {"sentence 1": (0.0, first.size / RATE),
             "pause": (first.size / RATE, first.size / RATE + PAUSE),
             "sentence 2": (first.size / RATE + PAUSE, clip.size / RATE)}
    print(f"clip: {clip.size / RATE:.2f} s; " + ", ".join(f"{k} {a:.2f}-{b:.2f} s" for k, (a, b) in spans.items()))
    lens = DecoderLens.from_pretrained(args.model)
    start = time.perf_counter()
    out = lens.attribute(str(path), language="en")
    seconds = time.perf_counter() - start
    example = out[0]
    starts = np.array([p.start for p in example.source])
    print("\n| layer | readout | sentence 1 | pause | sentence 2 | rest of the window | words in their sentence |")
    print("|---|---|---|---|---|---|---|")
    for layer in example.layers:
        if not layer.tokens:
            print(f"| {layer.layer} | (empty) | | | | | |")
            continue
        magnitude = np.abs(np.array([t.attribution for t in layer.tokens])).sum(0)
        total = magnitude.sum() or 1.0
        shares = {k: magnitude[(starts >= a) & (starts < b)].sum() / total for k, (a, b) in spans.items()}
        rest = 1.0 - sum(shares.values())
        placed = []
        for token in layer.tokens:
            word = token.token.replace("Ġ", "").lower().strip(" .,")
            home = [k for k, text in (("sentence 1", FIRST), ("sentence 2", SECOND)) if word in words(text)]
            if len(home) == 1 and word:
                peak = starts[int(np.argmax(np.abs(token.attribution)))]
                lo, hi = spans[home[0]]
                placed.append(lo <= peak < hi)
        found = f"{sum(placed)}/{len(placed)}" if placed else "-"
        print(f"| {layer.layer} | {layer.text[:60]} | {shares['sentence 1']:.3f} | {shares['pause']:.3f} | "
              f"{shares['sentence 2']:.3f} | {rest:.3f} | {found} |")
    plot_attribution(out, args.out, audio=(clip, RATE))
    print(f"\nwrote {args.out}")
    tokens = sum(len(layer.tokens) for layer in example.layers)
    print("\n| method | layers | readout tokens | seconds for the clip |\n|---|---|---|---|")
    print(f"| grad | all {len(example.layers)} | {tokens} | {seconds:.1f} |")
    for method in args.methods.split(","):
        start = time.perf_counter()
        top = lens.attribute(str(path), language="en", method=method, layers=-1)
        print(f"| {method} | top | {len(top[0].layers[0].tokens)} | {time.perf_counter() - start:.1f} |")


if __name__ == "__main__":
    main()
