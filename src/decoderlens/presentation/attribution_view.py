"""How an attribution is shown: terminal and notebook tables, the pages' interactive view (click a readout token to
see where it looks), and a static figure (layer x source position, with a waveform strip for audio)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from decoderlens.attribution.output import AttributionOutput, ExampleAttribution, LayerAttribution
from decoderlens.presentation.numbers import fixed, number
from decoderlens.presentation.style import pyplot
from decoderlens.presentation.tables import TableSpec

FULL_COLUMNS = 16
"""Sources up to this many positions get one column each in tables; longer ones list their top positions."""
TOP_POSITIONS = 3
"""Positions a table lists per token for long sources."""
PAGE_COLUMNS = 400
"""Sources longer than this (audio frames) are drawn in the pages as this many bins, each the sum of its
positions' scores."""
PANEL_TOKENS = 24
"""Tokens a figure draws per layer (a looping low layer may read out hundreds; the JSON holds them all)."""
METHOD_NAMES = {"grad": "gradient x input", "ig": "integrated gradients", "occlusion": "occlusion"}


def normalised(values: list[float]) -> list[float]:
    """Scores divided by their largest magnitude (all zero stays zero)."""
    top = max((abs(v) for v in values), default=0.0)
    return [v / top if top else 0.0 for v in values]


def panel_scaled(rows: list[list[float]]) -> list[list[float]]:
    """Rows divided by the largest magnitude among them all, so that a panel's weak rows stay pale."""
    top = max((abs(v) for row in rows for v in row), default=0.0)
    return [[v / top if top else 0.0 for v in row] for row in rows]


def readable(token: str) -> str:
    """A token as a figure labels it: without the tokenizer's word-start marks."""
    return token.replace("\u0120", " ").replace("\u2581", " ").replace("\u010a", "\\n").strip() or repr(token)


def _span(example: ExampleAttribution, position: int) -> str:
    source = example.source[position]
    return f"{source.start:.2f}-{source.end:.2f}s" if source.start is not None else source.label


def attribution_specs(output: AttributionOutput) -> list[TableSpec]:
    """Per example: a row per layer (all its tokens) and per token, with either a column per source position
    (shaded by magnitude, per row) or the top positions of long sources."""
    specs = []
    for example in output:
        rows: list[tuple[str, str, str, list[float]]] = []
        for layer in example.layers:
            rows.append((str(layer.layer), f"(all) {layer.text or '<empty>'}", "", layer.totals()))
            rows += [(str(layer.layer), token.token, fixed(token.logprob, 2), token.attribution)
                     for token in layer.tokens]
        title = f"{example.input}  ·  {METHOD_NAMES[output.method]}"
        fixed_columns = [("layer", [r[0] for r in rows]), ("token", [r[1] for r in rows]),
                         ("log-prob", [r[2] for r in rows])]
        caption = (f"{METHOD_NAMES[output.method]}: how much the state at each source position raises the token's "
                   "log-probability at its layer")
        if len(example.source) <= FULL_COLUMNS:
            shares = [[abs(v) for v in normalised(r[3])] if r[3] else [0.0] * len(example.source) for r in rows]
            columns = [(p.label, [number(r[3][i]) if r[3] else "" for r in rows])
                       for i, p in enumerate(example.source)]
            specs.append(TableSpec(title, fixed_columns, columns, caption + " (shade: share of the row's "
                                   "largest magnitude)", [[s[i] for s in shares] for i in range(len(example.source))]))
        else:
            tops = [", ".join(f"{_span(example, i)} {number(r[3][i])}"
                              for i in np.argsort([-v for v in r[3]], kind="stable")[:TOP_POSITIONS]) if r[3] else ""
                    for r in rows]
            specs.append(TableSpec(title, fixed_columns, [("top positions", tops)],
                                   caption + f" ({TOP_POSITIONS} highest of {len(example.source)} positions)"))
    return specs


def _binned(values: list[float], bins: int) -> list[float]:
    """``values`` summed into ``bins`` consecutive groups (unchanged when there are no more values than bins)."""
    if len(values) <= bins:
        return values
    edges = np.linspace(0, len(values), bins + 1).round().astype(int)
    array = np.asarray(values, dtype=float)
    return [float(array[a:b].sum()) for a, b in itertools.pairwise(edges)]


def attribution_view(example: ExampleAttribution, method: str, target: str = "readout") -> dict[str, Any]:
    """One example as the pages draw it (``Lens.drawAttribution``): source labels (binned for long audio), and
    per layer its tokens with their scores (rounded to 4 significant digits)."""
    bins = min(len(example.source), PAGE_COLUMNS)
    timed = example.source and example.source[0].start is not None
    if len(example.source) > bins:
        edges = np.linspace(0, len(example.source), bins + 1).round().astype(int)
        labels = [f"{example.source[a].start:.2f}-{example.source[b - 1].end:.2f}s" for a, b in
                  itertools.pairwise(edges)]
    else:
        labels = [_span(example, i) for i in range(len(example.source))]

    def compact(values: list[float]) -> list[float]:
        return [float(f"{v:.4g}") for v in _binned(values, bins)]

    def layer_view(layer: LayerAttribution) -> dict[str, Any]:
        return {"layer": layer.layer, "text": layer.text, "total": compact(layer.totals()),
                "tokens": [{"token": t.token, "logprob": round(t.logprob, 4), "scores": compact(t.attribution)}
                           for t in layer.tokens]}

    return {"input": example.input, "method": METHOD_NAMES[method], "target": target,
            "source": labels, "seconds": [example.source[0].start, example.source[-1].end] if timed else None,
            "binned": len(example.source) > bins, "layers": [layer_view(layer) for layer in example.layers]}


def attribution_sections(output: AttributionOutput) -> list[dict[str, Any]]:
    """One page section per example, with its interactive attribution view."""
    caption = (f"{METHOD_NAMES[output.method]} of each layer's "
               f"{'readout' if output.target == 'readout' else 'target'} tokens over the source positions of the "
               "states that layer hands the decoder. Blue raises the token's log-probability, vermillion lowers it; "
               "each row is scaled to its own largest magnitude. Click a token to see where it looks.")
    return [{"title": example.input, "caption": caption,
             "attribution": attribution_view(example, output.method, output.target)}
            for example in output]


def plot_attribution(output: AttributionOutput, target: Path, example: int = 0,
                     audio: tuple[np.ndarray, int] | None = None) -> Path:
    """Example ``example``: layer x source position for all tokens (each row scaled to its largest magnitude),
    then per layer its tokens x positions, or with a target, per target token layer x position (each panel
    scaled to its largest magnitude); for audio, the waveform above on the same time axis."""
    plt = pyplot()
    chosen = output.examples[example]
    layers = chosen.layers
    source = chosen.source
    timed = bool(source) and source[0].start is not None
    extent = (source[0].start, source[-1].end) if timed else (-0.5, len(source) - 0.5)
    panels: list[tuple[str, list[list[float]], list[str]]] = [
        ("all tokens (each row scaled to its largest magnitude)",
         [normalised(la.totals()) or [0.0] * len(source) for la in layers], [str(la.layer) for la in layers])]
    if output.target == "target" and layers:  # the same tokens at every layer: one layer x position panel each
        panels += [(f"token {k}: {readable(token.token)}", panel_scaled([la.tokens[k].attribution for la in layers]),
                    [str(la.layer) for la in layers]) for k, token in enumerate(layers[0].tokens[:PANEL_TOKENS])]
    else:
        for la in layers:
            shown = la.tokens[:PANEL_TOKENS]
            more = f" (first {PANEL_TOKENS} of {len(la.tokens)} tokens)" if len(la.tokens) > PANEL_TOKENS else ""
            if shown:
                panels.append((f"layer {la.layer}: {la.text}"[:80] + more,
                               panel_scaled([t.attribution for t in shown]), [readable(t.token) for t in shown]))
    heights = ([1.2] if audio is not None else []) + [max(1.0, 0.22 * len(p[1]) + 0.6) for p in panels]
    width = max(6.0, min(16.0, 0.35 * len(source) + 2.5)) if not timed else 11.0
    fig, axes = plt.subplots(len(heights), 1, figsize=(width, sum(heights) + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    axes = [row[0] for row in axes]
    note = ""
    if audio is not None:
        wave, rate = audio
        axes[0].plot(np.arange(wave.size) / rate, wave, color="#5b6577", linewidth=0.4)
        axes[0].set_ylabel("audio")
        axes[0].set_yticks([])
        window = float(extent[1] or 0.0)
        until = min(window, wave.size / rate + 0.5)
        axes[0].set_xlim(extent[0], until)
        if until < window:
            note = f" (the clip: 0-{until:.1f} s of the model's {window:.0f}-s window; all frames are in the JSON)"
        axes = axes[1:]
    image = None
    for ax, (title, values, rows) in zip(axes, panels, strict=True):
        image = ax.imshow(np.asarray(values, dtype=float), aspect="auto", cmap="RdBu", vmin=-1, vmax=1,
                          origin="upper", extent=(*extent, len(rows) - 0.5, -0.5), interpolation="nearest")
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        ax.set_title(title, fontsize=8, loc="left")
        ax.grid(False)
    axes[0].set_ylabel("encoder layer", fontsize=8)
    last = axes[-1]
    if timed:
        last.set_xlabel("time (s)")
    else:
        last.set_xticks(range(len(source)), [p.label for p in source], rotation=60 if len(source) > 8 else 0,
                        ha="right" if len(source) > 8 else "center", fontsize=7)
        last.set_xlabel("source position")
    fig.suptitle(f"{METHOD_NAMES[output.method]}: {chosen.input}"[:110] + note, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="share of the largest magnitude (blue raises the token, "
                                                       "red lowers it)")
    fig.savefig(target)
    plt.close(fig)
    return target
