"""How numbers read everywhere (terminal tables, pages, figures): one rule for decimals, one form for an estimate
with its interval, ``-10.0 [-10.4, -9.2]``. The pages' script (``lens.js``) follows the same rule."""

from __future__ import annotations

import math

SIGNIFICANT = 3
"""Significant digits of the largest number shown together (above 1); the others get the same decimals."""


def decimals(*values: float) -> int:
    """Decimals that show the largest of ``values`` with ``SIGNIFICANT`` digits (0 to 2), or 3 decimals where
    none is above 1 (rates and shares: ``0.067 [0.040, 0.093]``, ``1.000``)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    largest = max(finite, default=0.0)
    if largest <= 1:
        return SIGNIFICANT
    return max(0, SIGNIFICANT - 1 - math.floor(math.log10(largest)))


def fixed(value: float | None, places: int) -> str:
    """``value`` with ``places`` decimals; never ``-0``; ``-`` for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{places}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def number(value: float | None) -> str:
    """One number by the house rule: ``0.553``, ``45.3``, ``-10.0``, ``123``."""
    return fixed(value, decimals(value if value is not None else 0.0))


def interval(value: float, low: float, high: float) -> str:
    """An estimate with its interval, all with the same decimals: ``-10.0 [-10.4, -9.2]``."""
    places = decimals(value, low, high)
    return f"{fixed(value, places)} [{fixed(low, places)}, {fixed(high, places)}]"


def percent(share: float) -> str:
    """A share as a percentage with one decimal: ``55.3%``."""
    return f"{fixed(100 * share, 1)}%"
