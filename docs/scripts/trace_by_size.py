"""Causal traces of the shipped logic model, summarised by formula size (docs/analyses.md).

For held-out formulas of two size groups, every input token is corrupted (noise of 3x the embeddings' standard
deviation, 5 draws) and the clean state of one encoder layer at one position is restored. Per layer, the best
single position's share of the lost probability that comes back, ``(p_restored - p_corrupt) / (p_clean -
p_corrupt)``, is averaged over the formulas of each group.

    python docs/scripts/trace_by_size.py --per-group 20 --out docs/figures/trace_by_size.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from decoderlens import DecoderLens
from decoderlens.logic import shipped_model_path
from decoderlens.logic.demo import held_out_examples
from decoderlens.presentation.plots import PALETTE, style

GROUPS = {"small (size 4-8)": (4, 8), "large (size 25-35)": (25, 35)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-group", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("trace_by_size.png"))
    args = parser.parse_args()
    lens = DecoderLens.from_pretrained(str(shipped_model_path()), device="cpu")
    examples = held_out_examples(2000, target="majority")
    curves = {}
    for name, (low, high) in GROUPS.items():
        chosen = [e for e in examples if low <= e.size <= high][: args.per_group]
        shares = []
        for example in chosen:
            trace = lens.trace(example.formula, samples=args.samples)
            lost = trace.clean_prob - trace.corrupt_prob
            if lost <= 0.05:
                continue  # the corruption did not hurt: nothing to recover
            best = np.array(trace.restored).max(axis=1)
            shares.append((best - trace.corrupt_prob) / lost)
        curves[name] = (np.mean(shares, axis=0), len(shares))
        print(name, f"({len(shares)} formulas):", " ".join(f"{v:.2f}" for v in curves[name][0]))
    plt = style()
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    for index, (name, (curve, count)) in enumerate(curves.items()):
        ax.plot(range(len(curve)), curve, marker="o", markersize=3, color=PALETTE[index], label=f"{name}, n={count}")
    ax.set_xlabel("encoder layer restored (one position)")
    ax.set_ylabel("share of lost probability back")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
