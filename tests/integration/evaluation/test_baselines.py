"""Chance levels: the best constant answer per metric, stated in summaries, tables, figures and comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest

from decoderlens.evaluation.baselines import best_constant
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.folder import EvalFolder, ReadoutRecord
from decoderlens.evaluation.metrics import get_metric
from decoderlens.evaluation.runner import summarize
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.presentation.plots import plot_curves
from decoderlens.presentation.tables import summary_specs


def test_the_best_constant_answer_of_each_kind_of_metric() -> None:
    refs = ["yes", "yes", "no", "yes"]
    accuracy = best_constant(get_metric("accuracy"), refs, [""] * 4)
    assert accuracy is not None and (accuracy.value, accuracy.answer) == (0.75, "yes")
    wer = best_constant(get_metric("wer"), ["the cat sat", "the dog ran", "a cat sat"], [""] * 3)
    assert wer is not None and wer.value < 1.0  # a common reference beats the empty answer (WER 1)
    # the logic task tries every partial assignment: none satisfies both "a" and "! a"; "a 0 b 1" or "a 1 b 1"
    # satisfies the other two
    logic = best_constant(get_metric("logic_correct"), ["a 1", "a 0", "b 1"], ["a", "! a", "b"])
    assert logic is not None and logic.value == pytest.approx(2 / 3) and logic.answer in ("a 0 b 1", "a 1 b 1")


def _folder(tmp_path: Path, raw: bool = False) -> Path:
    records = [ReadoutRecord(f"e{i}", layer, f"q{i}", out, "yes" if i % 4 else "no") for i in range(8)
               for layer, out in enumerate(["no", "yes" if i % 2 else "no", "yes" if i % 4 else "no"])]
    if raw:
        records += [ReadoutRecord(f"e{i}", layer, f"q{i}", "no", "yes" if i % 4 else "no", lens="raw")
                    for i in range(8) for layer in (0, 1)]
    settings = EvalSettings(model="m", data=DataSource("d.jsonl"), metrics=["accuracy"], bootstrap_resamples=50)
    store = EvalFolder(tmp_path)
    store.append(records)
    store.write_summary(summarize(records, settings, num_layers=2))
    return tmp_path


def test_summaries_state_chance_and_both_lenses_are_tabled_and_drawn(tmp_path: Path) -> None:
    summary = EvalFolder(_folder(tmp_path, raw=True)).summary()
    assert summary is not None
    assert summary.metrics["accuracy"].baseline == 0.75 and "yes" in summary.metrics["accuracy"].baseline_label
    (spec,) = summary_specs(summary)
    headers = [h for h, _ in spec.fixed]
    assert headers == ["layer", "lens", "n"]
    lenses = dict(spec.fixed)["lens"]
    assert lenses[:4] == ["raw", "tuned", "raw", "tuned"]  # a layer's raw and tuned rows together
    assert "Chance level: accuracy 0.750" in spec.caption
    cells = dict(spec.columns)["accuracy"]
    assert all(" [" in c and c.endswith("]") for c in cells)  # 'value [low, high]'
    figure = plot_curves(summary, tmp_path / "curves.svg").read_text()
    for label in ("raw lens", "tuned lens", "chance (best constant answer)", "accuracy (share, 0-1)", "encoder layer"):
        assert label in figure, label
