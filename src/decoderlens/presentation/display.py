"""How results draw themselves in notebooks (HTML) and terminals (rich); registered with the results layer."""

from __future__ import annotations

from typing import Any

from rich.console import Group

from decoderlens.presentation.report import static_table_html
from decoderlens.presentation.tables import readout_tables, score_tables
from decoderlens.results import register_display


def _readouts_rich(output: Any) -> Group:
    return Group(*readout_tables(output))


def _scores_rich(output: Any) -> Group:
    return Group(*score_tables(output))


register_display("LensOutput", "html", static_table_html)
register_display("LensOutput", "rich", _readouts_rich)
register_display("ScoreOutput", "rich", _scores_rich)
