"""The tables of docs/whisper.md from its evaluation folders: per layer, each metric as 'value [low, high]'.

    python docs/scripts/whisper_tables.py runs/base-asr-en runs/base-asr-de ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from decoderlens.evaluation.folder import EvalFolder
from decoderlens.presentation.numbers import interval


def table(folder: Path) -> str:
    summary = EvalFolder(folder).summary()
    assert summary is not None, f"{folder} has no summary.json"
    names = [n for n in summary.metric_names if n != "agreement_with_top"]
    lines = [f"**{folder.name}** ({summary.layers[0].n} clips)", "",
             "| layer | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for entry in summary.layers:
        cells = [interval(e.value, e.low, e.high) if (e := entry.metrics.get(n)) else "" for n in names]
        lines.append(f"| {entry.layer} | " + " | ".join(cells) + " |")
    chance = [f"{n} {info.baseline:.3f} ({info.baseline_label})" for n, info in summary.metrics.items()
              if info.baseline is not None and n in names]
    if chance:
        lines += ["", "Chance level: " + "; ".join(chance) + "."]
    return "\n".join(lines)


def examples(folder: Path, example: str) -> str:
    rows = sorted((r for r in EvalFolder(folder).records() if r.id == example), key=lambda r: r.layer)
    lines = [f"Reference: *{rows[0].reference}*", "", "| layer | readout |", "|---|---|"]
    lines += [f"| {r.layer} | {json.dumps(r.output, ensure_ascii=False)[1:-1] or '(empty)'} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(table(Path(name)), end="\n\n")
    if len(sys.argv) > 1:
        print(examples(Path(sys.argv[1]), "0"))
