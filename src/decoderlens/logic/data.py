"""Seeded generator of satisfiable propositional formulas with satisfying assignments as targets
(by default the minimal partial assignment)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from decoderlens.logic.formulas import (
    BINARY,
    FULL_MASK,
    VARIABLES,
    canonical_cubes,
    formula_depth,
    majority_assignment,
    truth_mask,
)

MAX_SIZE = 35
UNARY_PROBABILITY = 0.2


@dataclass(frozen=True)
class LogicExample:
    """One formula with the generator's target and bookkeeping for analysis."""

    id: str
    formula: str
    target: str
    size: int
    depth: int


def random_formula(size: int, rng: random.Random) -> list[str]:
    """A random formula with exactly ``size`` symbols, in Polish notation."""
    if size == 1:
        return [rng.choice(VARIABLES)]
    if size == 2 or rng.random() < UNARY_PROBABILITY:
        return ["!", *random_formula(size - 1, rng)]
    left = rng.randint(1, size - 2)
    return [rng.choice(BINARY), *random_formula(left, rng), *random_formula(size - 1 - left, rng)]


def minimal_targets(masks: np.ndarray) -> list[str]:
    """Vectorised minimal satisfying partial assignment for many truth masks at once."""
    cubes = canonical_cubes()
    cube_masks = np.array([m for _, m in cubes], dtype=np.int64)
    implies = (cube_masks[None, :] & (~masks[:, None] & FULL_MASK)) == 0
    first = implies.argmax(axis=1)
    return [str(cubes[i][0]) for i in first]


def majority_targets(masks: np.ndarray) -> list[str]:
    """Full assignments chosen variable by variable towards more satisfying completions (see
    ``majority_assignment``)."""
    return [str(majority_assignment(int(mask))) for mask in masks]


TARGET_KINDS: dict[str, Callable[[np.ndarray], list[str]]] = {
    "minimal": minimal_targets,
    "majority": majority_targets,
}
"""The assignment written as an example's target: the minimal satisfying partial assignment (fewest
variables, then variable order), or the full ``majority`` one. Any satisfying assignment is correct."""


def generate_examples(
    count: int, seed: int, max_size: int = MAX_SIZE, min_size: int = 1, prefix: str = "", target: str = "minimal",
    size_bias: float = 0.0,
) -> list[LogicExample]:
    """``count`` satisfiable, non-tautological formulas with sizes in ``[min_size, max_size]``, each with a
    target of kind ``target`` (a key of ``TARGET_KINDS``; the formulas do not depend on it).

    Sizes are uniform when ``size_bias`` is 0; otherwise size ``s`` is drawn with weight ``s ** size_bias``
    (training can dwell on the large formulas that a model solves last).
    """
    if target not in TARGET_KINDS:
        raise ValueError(f"unknown target kind {target!r}; choose one of {', '.join(TARGET_KINDS)}")
    rng = random.Random(seed)
    sizes = list(range(min_size, max_size + 1))
    weights = [s**size_bias for s in sizes] if size_bias else None
    formulas: list[str] = []
    masks: list[int] = []
    while len(formulas) < count:
        size = rng.choices(sizes, weights)[0] if weights else rng.randint(min_size, max_size)
        while True:
            tokens = random_formula(size, rng)
            mask = truth_mask(tokens)
            if 0 < mask < FULL_MASK:
                break
        formulas.append(" ".join(tokens))
        masks.append(mask)
    targets = TARGET_KINDS[target](np.array(masks, dtype=np.int64))
    return [
        LogicExample(f"{prefix}{i}", f, t, len(f.split()), formula_depth(f))
        for i, (f, t) in enumerate(zip(formulas, targets, strict=True))
    ]


SPLITS: dict[str, tuple[int, int]] = {"train": (0, 100_000), "validation": (1, 2_000), "test": (2, 2_000)}


def write_jsonl(examples: list[LogicExample], path: Path) -> None:
    """Write examples as JSON lines (fields: id, formula, target, size, depth)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(asdict(ex)) + "\n")


def read_jsonl(path: Path) -> Iterator[LogicExample]:
    """Read examples written by ``write_jsonl``."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield LogicExample(**json.loads(line))


def write_splits(out_dir: Path, seed: int = 0, sizes: dict[str, int] | None = None,
                 target: str = "minimal") -> dict[str, Path]:
    """Write train/validation/test JSONL files; each split has its own derived seed, so they differ."""
    paths = {}
    for name, (offset, default_count) in SPLITS.items():
        count = (sizes or {}).get(name, default_count)
        examples = generate_examples(count, seed=seed * 1000 + offset, prefix=f"{name}-", target=target)
        paths[name] = out_dir / f"{name}.jsonl"
        write_jsonl(examples, paths[name])
    return paths
