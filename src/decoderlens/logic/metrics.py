"""The logic task's metrics and preset, registered with the evaluation layer (``--preset logic``)."""

from __future__ import annotations

from decoderlens.evaluation.metrics import Metric, Preset, mean_metric, register_metric, register_preset
from decoderlens.logic.formulas import check_formula, judge


@register_metric("logic")
def _logic() -> Metric:
    return mean_metric("logic", lambda p, r, i: judge(i, p, r).correct,
                       "share of outputs whose every completion satisfies the input formula", uses_input=True,
                       check_input=check_formula)


@register_metric("logic_parses")
def _logic_parses() -> Metric:
    return mean_metric("logic_parses", lambda p, r, i: judge(i, p, r).parses,
                       "share of outputs that parse as an assignment", uses_input=True, check_input=check_formula)


register_preset("logic", Preset(("logic", "accuracy", "logic_parses")))
