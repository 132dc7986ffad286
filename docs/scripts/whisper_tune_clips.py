"""Spoken English clips for the tuned lenses of docs/whisper.md: seeded sentences from templates (330 distinct by
default), spoken by espeak-ng into a training folder (the first 300) and a held-out test folder (the rest), each
with a manifest holding the transcript (text) and the language.

    python docs/scripts/whisper_tune_clips.py ../shared/models/real-whisper/make_clips.sh clips/ --train 300 --test 30
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
from pathlib import Path

SUBJECTS = ["The old man", "My sister", "Our teacher", "The little dog", "A young woman", "The farmer", "His friend",
            "The doctor", "Every child", "The driver", "My neighbour", "The new student"]
VERBS = ["found", "painted", "carried", "cleaned", "opened", "bought", "watched", "repaired", "sold", "forgot"]
OBJECTS = ["a red box", "the blue door", "an old chair", "the heavy bag", "a small boat", "the broken clock",
           "a warm coat", "the long letter", "a wooden table", "the yellow car", "a fresh cake"]
ENDINGS = ["in the morning.", "near the river.", "after lunch.", "at the station.", "before the rain.",
           "in the garden.", "last winter.", "on Sunday.", "behind the school.", "with great care."]


def sentences(count: int, seed: int) -> list[str]:
    """``count`` distinct seeded sentences."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen.setdefault(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDINGS)}")
    return list(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("make_clips", type=Path, help="make_clips.sh of the real-whisper folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    chosen = sentences(args.train + args.test, args.seed)
    for name, part in (("train", chosen[: args.train]), ("test", chosen[args.train:])):
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as tsv:
            tsv.write("".join(f"en\t{text}\n" for text in part))
        subprocess.run(["bash", str(args.make_clips), tsv.name, str(args.out / name)], check=True)


if __name__ == "__main__":
    main()
