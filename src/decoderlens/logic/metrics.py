"""The logic task's metrics and preset, registered with the evaluation layer (``--preset logic``)."""

from __future__ import annotations

from collections.abc import Sequence

from decoderlens.evaluation.metrics import Metric, Preset, mean_metric, register_metric, register_preset
from decoderlens.logic.formulas import canonical_cubes, check_formula, judge


def _assignments(references: Sequence[str]) -> list[str]:
    """Every partial assignment, as constant answers for the chance level."""
    return [str(assignment) for assignment, _ in canonical_cubes()]


def _correct(name: str) -> Metric:
    return mean_metric(name, lambda p, r, i: judge(i, p, r).correct,
                       "share of outputs whose every completion satisfies the input formula", uses_input=True,
                       check_input=check_formula, constants=_assignments)


@register_metric("logic_correct")
def _logic_correct() -> Metric:
    return _correct("logic_correct")


@register_metric("logic")
def _logic() -> Metric:
    """The earlier name of ``logic_correct``, so that folders written under it still compare."""
    return _correct("logic")


@register_metric("logic_parses")
def _logic_parses() -> Metric:
    return mean_metric("logic_parses", lambda p, r, i: judge(i, p, r).parses,
                       "share of outputs that parse as an assignment", uses_input=True, check_input=check_formula)


register_preset("logic", Preset(("logic_correct", "accuracy", "logic_parses")))
