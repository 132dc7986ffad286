"""Markdown tables of a logic analysis, for the docs and the model card."""

from __future__ import annotations

from typing import Any


def overall_table(analysis: dict[str, Any]) -> str:
    """Per-layer parse / correct / exact-match rates."""
    lines = ["| encoder layer read | parses | semantically correct | exact match |", "|---|---|---|---|"]
    for layer, r in analysis["overall"].items():
        lines.append(f"| {layer} | {r['parses']:.1%} | {r['correct']:.1%} | {r['exact']:.1%} |")
    return "\n".join(lines)


def size_table(analysis: dict[str, Any]) -> str:
    """Semantic correctness per layer (rows) and formula-size bucket (columns)."""
    by_size = analysis["by_size"]
    buckets = list(next(iter(by_size.values())).keys())
    lines = ["| layer | " + " | ".join(f"size {b}" for b in buckets) + " |", "|---" * (len(buckets) + 1) + "|"]
    for layer, per_bucket in by_size.items():
        cells = [f"{per_bucket[b]['correct']:.0%}" if b in per_bucket else "" for b in buckets]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    counts = [str(next(iter(by_size.values()))[b]["count"]) for b in buckets]
    lines.append("| n | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def first_solved_line(analysis: dict[str, Any]) -> str:
    """Mean first layer from which examples are solved for good, per size bucket."""
    parts = [f"{b}: {v:.2f}" if v is not None else f"{b}: never" for b, v in analysis["first_solved_by_size"].items()]
    return ", ".join(parts)
