"""One number format everywhere: estimates with their intervals, shares, no '-0'."""

from __future__ import annotations

import math

import pytest

from decoderlens.presentation.numbers import interval, number, percent


@pytest.mark.parametrize(("value", "low", "high", "text"), [
    (-10.0, -10.4, -9.2, "-10.0 [-10.4, -9.2]"),
    (1.0, 1.0, 1.0, "1.000 [1.000, 1.000]"),
    (0.0667, 0.04, 0.0933, "0.067 [0.040, 0.093]"),
    (-0.00001, -0.2, 0.1, "0.000 [-0.200, 0.100]"),
    (45.31, 40.2, 50.9, "45.3 [40.2, 50.9]"),
    (123.4, 101.0, 150.2, "123 [101, 150]"),
    (2.345, 1.5, 3.25, "2.35 [1.50, 3.25]"),
])
def test_an_estimate_reads_value_then_interval_with_shared_decimals(value: float, low: float, high: float,
                                                                   text: str) -> None:
    assert interval(value, low, high) == text


def test_single_numbers_and_shares() -> None:
    assert number(-0.0) == "0.000" and number(0.5533) == "0.553" and number(float("nan")) == "-"
    assert number(math.inf) == "inf" and number(None) == "-"
    assert percent(0.553) == "55.3%" and percent(-0.0) == "0.0%"
