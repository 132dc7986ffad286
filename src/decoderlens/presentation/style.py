"""One look for every figure and page: the colour of each lens and run, the chance line, axis labels with units.

The pages get these through their data (``page_style``), so that a figure and a page of the same run agree."""

from __future__ import annotations

from typing import Any

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
"""Okabe-Ito colours: distinguishable with the common colour-vision deficiencies."""
SERIES_COLORS = {"raw": "#0072B2", "tuned": "#D55E00", "a": "#009E73", "b": "#CC79A7", "difference": "#000000"}
"""The raw lens is blue and the tuned lens vermillion in every figure and page; compared runs A and B are green
and purple, so that they are never mistaken for a lens."""
CHANCE_COLOR = "#6b7280"
"""The chance level (best constant answer): a grey dashed line."""
LENS_NAMES = {"raw": "raw lens", "tuned": "tuned lens"}


def series_color(key: str, index: int = 0) -> str:
    """The colour of series ``key`` (``raw``, ``tuned``, ``a``, ``b``); others take the palette in order."""
    return SERIES_COLORS.get(key, PALETTE[index % len(PALETTE)])


def lens_key(settings: dict[str, Any]) -> str:
    """``raw`` or ``tuned``: the lens a single-lens run was read through (its ``lens`` setting)."""
    return "tuned" if str(settings.get("lens", "raw")).startswith("tuned") else "raw"


def axis_label(name: str, bounds: list[float] | tuple[float, float] | None, higher_is_better: bool = True) -> str:
    """A metric's y-axis label with its unit: ``logic_correct (share, 0-1)``, ``bleu (score, 0-100)``, ``wer (rate,
    lower is better)``, ``empty (share, lower is better)``, ``logprob (nats)``."""
    if name == "logprob":
        return "mean log-prob of the reference (nats)"
    if bounds is not None and list(bounds) == [0.0, 1.0]:
        return f"{name} (share{', lower is better' if not higher_is_better else ', 0-1'})"
    if not higher_is_better:
        return f"{name} (rate, lower is better)"
    if bounds is not None and list(bounds) == [0.0, 100.0]:
        return f"{name} (score, 0-100)"
    return name


def page_style() -> dict[str, Any]:
    """What the pages' script draws with: the palette, the series colours and the chance colour."""
    return {"palette": PALETTE, "series": SERIES_COLORS, "chance": CHANCE_COLOR}


def pyplot() -> Any:
    """pyplot with the house style (off-screen backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 9, "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.color": "#e3e7ee", "grid.linewidth": 0.8,
        "legend.frameon": False, "legend.fontsize": 9, "figure.dpi": 150, "savefig.bbox": "tight",
        "svg.fonttype": "none",  # text stays text in SVG: searchable, editable, read by screen readers
    })
    return plt
