"""Paper-ready static figures (matplotlib): metric curves with confidence bands, score heatmaps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from decoderlens.errors import InputError
from decoderlens.evaluation.compare import Comparison
from decoderlens.evaluation.folder import EvalFolder, MetricInfo, Summary
from decoderlens.presentation.numbers import number
from decoderlens.presentation.report import build_payload, display_name
from decoderlens.presentation.style import CHANCE_COLOR, LENS_NAMES, axis_label, lens_key, pyplot, series_color
from decoderlens.results import TraceOutput

FORMATS = ("png", "svg", "pdf")
PANELS_PER_ROW = 4
"""Metric panels side by side before a figure wraps to a new row (readable at a paper's column width)."""


def metric_axis(ax: Any, info: MetricInfo | None, name: str, values: list[float]) -> None:
    """Label a metric's y axis with its unit and show its whole range: rates on [0, 1], scores from 0."""
    bounds = info.bounds if info else None
    ax.set_ylabel(axis_label(name, bounds, info.higher_is_better if info else True))
    if bounds == [0.0, 1.0]:
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    elif bounds is not None or (info is not None and not info.higher_is_better):
        finite = [v for v in values if math.isfinite(v)]
        ax.set_ylim(0, max(1e-9, max(finite, default=1.0)) * 1.08)


def chance_line(ax: Any, info: MetricInfo | None) -> None:
    """The metric's chance level (best constant answer) as a grey dashed line, where it has one."""
    if info is not None and info.baseline is not None:
        ax.axhline(info.baseline, color=CHANCE_COLOR, linestyle=(0, (4, 3)), linewidth=1.2,
                   label="chance (best constant answer)")


def figure_legend(fig: Any, axes: Any, rows: int = 1) -> None:
    """One legend for the whole figure, below the panels (``rows`` of them), naming every line once."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=min(4, len(seen)),
                   bbox_to_anchor=(0.5, -0.02))
        fig.tight_layout(rect=(0, 0.1 / rows, 1, 1))


def plot_curves(summary: Summary, target: Path) -> Path:
    """One panel per metric: value per encoder layer with its 95% bootstrap band for each lens (raw and tuned with
    ``--lens both``), the chance level where the metric has one, and one legend below."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    names = [n for n in summary.metric_names if any(n in e.metrics for e in summary.layers)]
    if not names:
        raise InputError("the summary has no metrics to plot: run `decoderlens eval` first")
    curves = [(key or lens_key(summary.settings), entries) for key, entries in summary.lens_curves]
    columns = min(PANELS_PER_ROW, len(names))
    panel_rows = math.ceil(len(names) / columns)
    fig, grid = plt.subplots(panel_rows, columns, figsize=(3.4 * columns, 3.0 * panel_rows), squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for name, ax in zip(names, axes, strict=False):
        info = summary.metrics.get(name)
        values: list[float] = []
        for key, entries in curves:
            rows = [e for e in entries if name in e.metrics]
            layers = [e.layer for e in rows]
            color = series_color(key)
            ax.fill_between(layers, [e.metrics[name].low for e in rows], [e.metrics[name].high for e in rows],
                            color=color, alpha=0.18, linewidth=0)
            ax.plot(layers, [e.metrics[name].value for e in rows], color=color, marker="o", markersize=3,
                    linewidth=1.6, linestyle="-" if key == "raw" else "--", label=f"{LENS_NAMES[key]} (95% CI band)")
            values += [e.metrics[name].high for e in rows]
        chance_line(ax, info)
        metric_axis(ax, info, name, values + ([info.baseline] if info and info.baseline is not None else []))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel(f"encoder layer (0 = embeddings, {summary.num_encoder_layers} = output)")
    fig.tight_layout()
    figure_legend(fig, axes[: len(names)], panel_rows)
    fig.savefig(target)
    plt.close(fig)
    return target


def heatmap_figure(values: Any, columns: list[Any], rows: list[Any], target: Path, *, xlabel: str, ylabel: str,
                   scale: str, cmap: str = "viridis", title: str | None = None, **limits: float) -> Path:
    """A matrix as a heatmap figure: ``rows`` bottom to top, ``columns`` left to right, a labelled colour bar."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(3.0, 0.45 * len(columns) + 1.8), max(2.2, 0.3 * len(rows) + 1.2)))
    image = ax.imshow(values, aspect="auto", cmap=cmap, origin="lower", **limits)
    ax.set_xticks(range(len(columns)), [str(c) for c in columns], rotation=60 if len(columns) > 8 else 0,
                  ha="right" if len(columns) > 8 else "center", fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label=scale)
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_heatmap(example: dict[str, Any], target: Path) -> Path:
    """Layer x reference token log-probabilities of one example."""
    rows = [(layer, values) for layer, values in zip(example["layers"], example["token_logprobs"], strict=True)
            if values is not None]
    return heatmap_figure([values for _, values in rows], example["target_tokens"], [layer for layer, _ in rows],
                          target, xlabel="reference token", ylabel="encoder layer",
                          scale="log-prob of the reference token", vmax=0.0)


def plot_trace(trace: TraceOutput, target: Path) -> Path:
    """A causal trace: encoder layers (rows) x positions (columns) of restored probability."""
    values = trace.restored
    columns = trace.tokens if len(values[0]) == len(trace.tokens) else ["all"]
    top = max(trace.clean_prob, max(max(row) for row in values))
    return heatmap_figure(values, columns, list(range(len(values))), target, xlabel="position restored",
                          ylabel="encoder layer restored", scale="probability", cmap="Blues", vmin=0.0, vmax=top,
                          title=f"p({trace.answer}): clean {number(trace.clean_prob)}, corrupted "
                                f"{number(trace.corrupt_prob)}")


def plot_grid(summary: Summary, target: Path) -> Path:
    """The data set's mean 2-D lens: encoder layers (rows) x decoder layers (columns) of the reference's log-prob."""
    rows = sorted({c.encoder_layer for c in summary.grid})
    columns = sorted({c.decoder_layer for c in summary.grid})
    value = {(c.encoder_layer, c.decoder_layer): c.logprob.value for c in summary.grid}
    return heatmap_figure([[value[(e, d)] for d in columns] for e in rows], columns, rows, target,
                          xlabel="decoder layer (last = real output)", ylabel="encoder layer",
                          scale="mean log-prob of the reference")


def plot_comparison(result: Comparison, target: Path, info: dict[str, MetricInfo] | None = None) -> Path:
    """Per metric: both runs per layer (named by their folders, with the chance level), and below the paired
    difference B - A with its interval."""
    plt = pyplot()
    names = list(result.layers[0].metrics) if result.layers else []
    if not names:
        raise InputError("the comparison has no metric to plot")
    info = info or {}
    label = {"a": f"A: {display_name(result.a)}", "b": f"B: {display_name(result.b)}"}
    fig, axes = plt.subplots(2, len(names), figsize=(3.4 * len(names), 5.4), squeeze=False, sharex=True)
    layers = [lc.layer for lc in result.layers]
    for column, name in enumerate(names):
        diffs = [lc.metrics[name] for lc in result.layers]
        top, bottom = axes[0][column], axes[1][column]
        for key, style_ in (("a", "-"), ("b", "--")):
            top.plot(layers, [getattr(d, key) for d in diffs], color=series_color(key), marker="o", markersize=3,
                     linestyle=style_, label=label[key])
        chance_line(top, info.get(name))
        metric_axis(top, info.get(name), name, [max(d.a, d.b) for d in diffs])
        top.set_title(name)
        bottom.fill_between(layers, [d.ci_low for d in diffs], [d.ci_high for d in diffs],
                            color=series_color("difference"), alpha=0.15, linewidth=0)
        bottom.plot(layers, [d.diff for d in diffs], color=series_color("difference"), marker="o", markersize=3,
                    label="B - A (95% paired CI band)")
        bottom.axhline(0, color=CHANCE_COLOR, linewidth=0.8)
        bottom.set_ylabel(f"B - A ({name})")
        bottom.set_xlabel("encoder layer")
    fig.tight_layout()
    figure_legend(fig, [*axes[0], *axes[1]])
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
