"""Per-layer analysis of logic readouts: parse rate, semantic correctness, exact match, by formula size."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from decoderlens.logic.data import LogicExample
from decoderlens.logic.formulas import FULL_MASK, NUM_ASSIGNMENTS, Judgement, canonical_cubes, judge, truth_mask
from decoderlens.results import LensOutput

SIZE_BUCKETS: tuple[tuple[int, int], ...] = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 25), (26, 30), (31, 35))


def size_bucket(size: int) -> str:
    """Label of the size bucket ``size`` falls in, e.g. ``"6-10"``."""
    for low, high in SIZE_BUCKETS:
        if low <= size <= high:
            return f"{low}-{high}"
    return f">{SIZE_BUCKETS[-1][1]}"


@dataclass
class Rates:
    """Of ``count`` outputs judged, the shares that parse as an assignment, are semantically correct (every
    completion satisfies the formula), and equal the generator's target exactly."""

    count: int = 0
    parses: float = 0.0
    correct: float = 0.0
    exact: float = 0.0

    @classmethod
    def of(cls, judgements: list[Judgement]) -> Rates:
        n = len(judgements)
        if not n:
            return cls()
        return cls(n, sum(j.parses for j in judgements) / n, sum(j.correct for j in judgements) / n,
                   sum(j.exact for j in judgements) / n)


@dataclass
class LogicAnalysis:
    """The per-layer tables of the logic experiment."""

    layers: list[int]
    overall: dict[int, Rates]
    by_size: dict[int, dict[str, Rates]]
    by_depth: dict[int, dict[int, Rates]]
    first_solved_by_size: dict[str, float | None]
    """Mean first layer from which an example is solved and stays solved, per size bucket."""
    baselines: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def baselines(examples: list[LogicExample]) -> dict[str, float]:
    """Trivial answers: the single best constant assignment for this set, and a uniformly random full one."""
    masks = [truth_mask(e.formula) for e in examples]
    best_name, best = "", -1.0
    for assignment, cube in canonical_cubes():
        share = sum(cube & ~m & FULL_MASK == 0 for m in masks) / len(masks)
        if share > best:
            best_name, best = str(assignment), share
    random_full = sum(bin(m).count("1") for m in masks) / (NUM_ASSIGNMENTS * len(masks))
    return {"best_constant": best, "random_full_assignment": random_full, "best_constant_answer": best_name}  # type: ignore[dict-item]


def analyze(examples: list[LogicExample], output: LensOutput) -> LogicAnalysis:
    """Judge every readout and aggregate per layer, per size bucket and per depth."""
    per_layer: dict[int, list[Judgement]] = defaultdict(list)
    per_size: dict[int, dict[str, list[Judgement]]] = defaultdict(lambda: defaultdict(list))
    per_depth: dict[int, dict[int, list[Judgement]]] = defaultdict(lambda: defaultdict(list))
    first_solved: dict[str, list[int | None]] = defaultdict(list)
    for example, readouts in zip(examples, output, strict=True):
        solved_from: int | None = None
        streak = True  # walking down from the top: still correct at every layer so far
        for readout in sorted(readouts.readouts, key=lambda r: r.layer, reverse=True):
            verdict = judge(example.formula, readout.text, example.target)
            per_layer[readout.layer].append(verdict)
            per_size[readout.layer][size_bucket(example.size)].append(verdict)
            per_depth[readout.layer][example.depth].append(verdict)
            streak = streak and verdict.correct
            if streak:
                solved_from = readout.layer
        first_solved[size_bucket(example.size)].append(solved_from)
    layers = sorted(per_layer)
    first_means: dict[str, float | None] = {}
    for bucket, values in first_solved.items():
        solved = [v for v in values if v is not None]
        first_means[bucket] = sum(solved) / len(solved) if solved else None
    return LogicAnalysis(
        layers=layers,
        overall={layer: Rates.of(per_layer[layer]) for layer in layers},
        by_size={layer: {b: Rates.of(j) for b, j in sorted(per_size[layer].items(), key=lambda kv: int(
            kv[0].split("-")[0].lstrip(">")))} for layer in layers},
        by_depth={layer: {d: Rates.of(j) for d, j in sorted(per_depth[layer].items())} for layer in layers},
        first_solved_by_size=dict(sorted(first_means.items(), key=lambda kv: int(kv[0].split("-")[0].lstrip(">")))),
        baselines=baselines(examples),
    )
