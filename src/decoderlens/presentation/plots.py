"""Paper-ready static figures (matplotlib): metric curves with confidence bands, score heatmaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from decoderlens.errors import InputError
from decoderlens.evaluation.compare import Comparison
from decoderlens.evaluation.folder import EvalFolder, Summary
from decoderlens.presentation.report import build_payload
from decoderlens.results import TraceOutput

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
"""Okabe-Ito colours: distinguishable with the common colour-vision deficiencies."""
FORMATS = ("png", "svg", "pdf")


def style() -> Any:
    """pyplot with the house style (off-screen backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.color": "#e3e7ee", "grid.linewidth": 0.8,
        "legend.frameon": False, "figure.dpi": 150, "savefig.bbox": "tight",
    })
    return plt


def plot_curves(summary: Summary, target: Path) -> Path:
    """One panel per metric: value per encoder layer with its 95% bootstrap band; rates on a [0, 1] axis."""
    plt = style()
    from matplotlib.ticker import MaxNLocator

    names = [n for n in summary.metric_names if any(n in e.metrics for e in summary.layers)]
    if not names:
        raise InputError("the summary has no metrics to plot: run `decoderlens eval` first")
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.6), squeeze=False)
    for index, (name, ax) in enumerate(zip(names, axes[0], strict=True)):
        rows = [e for e in summary.layers if name in e.metrics]
        layers = [e.layer for e in rows]
        color = PALETTE[index % len(PALETTE)]
        ax.fill_between(layers, [e.metrics[name].low for e in rows], [e.metrics[name].high for e in rows],
                        color=color, alpha=0.18, linewidth=0)
        ax.plot(layers, [e.metrics[name].value for e in rows], color=color, marker="o", markersize=3, linewidth=1.6)
        if summary.metrics[name].bounds == [0.0, 1.0]:
            ax.set_ylim(0, 1)
            ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("encoder layer")
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_heatmap(example: dict[str, Any], target: Path) -> Path:
    """Layer x reference token log-probabilities of one example."""
    plt = style()
    import numpy as np

    values = np.array(example["token_logprobs"])
    fig, ax = plt.subplots(figsize=(max(3.0, 0.45 * values.shape[1] + 1.5), max(2.2, 0.28 * values.shape[0] + 1)))
    image = ax.imshow(values, aspect="auto", cmap="viridis", vmax=0.0, origin="lower")
    ax.set_xticks(range(values.shape[1]), example["target_tokens"], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), example["layers"], fontsize=8)
    ax.set_ylabel("encoder layer")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="log-prob")
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_trace(trace: TraceOutput, target: Path) -> Path:
    """A causal trace as a heatmap: encoder layers (rows) x positions (columns) of restored probability."""
    plt = style()
    import numpy as np

    values = np.array([row if isinstance(row, list) else [row] for row in trace.restored])
    columns = trace.tokens if values.shape[1] == len(trace.tokens) else ["all"]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.42 * values.shape[1] + 2), max(2.2, 0.3 * values.shape[0] + 1.2)))
    image = ax.imshow(values, aspect="auto", cmap="Blues", vmin=0.0, vmax=max(trace.clean_prob, float(values.max())),
                      origin="lower")
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), range(values.shape[0]), fontsize=8)
    ax.set_ylabel("encoder layer restored")
    ax.set_title(f"p({trace.answer}) restored; clean {trace.clean_prob:.2g}, corrupted {trace.corrupt_prob:.2g}",
                 fontsize=9)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="probability")
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_grid(summary: Summary, target: Path) -> Path:
    """The data set's mean 2-D lens: encoder layers (rows) x decoder layers (columns) of the reference's log-prob."""
    plt = style()
    import numpy as np

    rows = sorted({c.encoder_layer for c in summary.grid})
    columns = sorted({c.decoder_layer for c in summary.grid})
    value = {(c.encoder_layer, c.decoder_layer): c.logprob.value for c in summary.grid}
    values = np.array([[value[(e, d)] for d in columns] for e in rows])
    fig, ax = plt.subplots(figsize=(max(3.2, 0.5 * len(columns) + 2), max(2.6, 0.32 * len(rows) + 1.2)))
    image = ax.imshow(values, aspect="auto", cmap="viridis", origin="lower")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("decoder layer (last = real output)")
    ax.set_ylabel("encoder layer")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="mean log-prob of the reference")
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_comparison(result: Comparison, target: Path) -> Path:
    """Per metric: both runs per layer, and the paired difference B - A with its interval."""
    plt = style()
    names = list(result.layers[0].metrics) if result.layers else []
    if not names:
        raise InputError("the comparison has no metric to plot")
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 4.6), squeeze=False, sharex=True)
    layers = [lc.layer for lc in result.layers]
    for column, name in enumerate(names):
        diffs = [lc.metrics[name] for lc in result.layers]
        top, bottom = axes[0][column], axes[1][column]
        top.plot(layers, [d.a for d in diffs], color=PALETTE[0], marker="o", markersize=3, label="A")
        top.plot(layers, [d.b for d in diffs], color=PALETTE[1], marker="o", markersize=3, linestyle="--", label="B")
        top.set_title(name)
        bottom.fill_between(layers, [d.ci_low for d in diffs], [d.ci_high for d in diffs], color=PALETTE[2],
                            alpha=0.2, linewidth=0)
        bottom.plot(layers, [d.diff for d in diffs], color=PALETTE[2], marker="o", markersize=3)
        bottom.axhline(0, color="#5b6577", linewidth=0.8)
        bottom.set_xlabel("encoder layer")
    axes[0][0].legend()
    axes[1][0].set_ylabel("B - A (95% CI)")
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target


def write_plots(folder: Path, fmt: str = "png", out: Path | None = None, max_heatmaps: int = 3) -> list[Path]:
    """Metric curves and (when scores were recorded) a few heatmaps of an evaluation folder."""
    if fmt not in FORMATS:
        raise InputError(f"unknown figure format {fmt!r}: use one of {', '.join(FORMATS)}")
    store = EvalFolder(folder)
    records = store.require_records()
    summary = store.summary()
    if summary is None:
        raise InputError(f"{folder} has no summary.json: finish the run (`decoderlens eval ... --out {folder}`)")
    out = out or folder / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = [plot_curves(summary, out / f"metrics.{fmt}")]
    if summary.grid:
        written.append(plot_grid(summary, out / f"grid.{fmt}"))
    payload = build_payload(records, summary, "")
    scored = [ex for ex in payload["examples"] if "token_logprobs" in ex][:max_heatmaps]
    written += [plot_heatmap(ex, out / f"heatmap_{ex['id']}.{fmt}") for ex in scored]
    return written
