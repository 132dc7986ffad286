"""Two runs side by side: paired differences, their intervals, and the command's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decoderlens import InputError
from decoderlens.cli.app import app
from decoderlens.evaluation.compare import compare, first_layer_reaching
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.folder import EvalFolder, ReadoutRecord
from decoderlens.evaluation.runner import summarize
from decoderlens.evaluation.settings import EvalSettings


def make_run(folder: Path, outputs: dict[str, list[str]], reference: str = "yes", logprob: float | None = None,
             model: str = "m") -> Path:
    """A finished evaluation folder: ``outputs[id][layer]`` for layers 0..L."""
    records = [ReadoutRecord(key, layer, f"question {key}", text, reference,
                             None if logprob is None else logprob * (layer + 1))
               for key, texts in outputs.items() for layer, text in enumerate(texts)]
    store = EvalFolder(folder)
    store.append(records)
    settings = EvalSettings(model=model, data=DataSource("d.jsonl"), metrics=["accuracy", "chrf"],
                            score=logprob is not None, bootstrap_resamples=50)
    store.write_summary(summarize(records, settings, num_layers=len(next(iter(outputs.values()))) - 1))
    return folder


def test_a_run_against_itself_differs_by_exactly_zero(tmp_path: Path) -> None:
    run = make_run(tmp_path / "a", {f"e{i}": ["no", "yes" if i % 2 else "no", "yes"] for i in range(10)},
                   logprob=-1.5)
    result = compare(run, run, resamples=200)
    assert result.examples == 10 and not result.warnings
    assert {"accuracy", "chrf", "agreement_with_top", "logprob"} <= set(result.layers[0].metrics)
    for layer in result.layers:
        for diff in layer.metrics.values():
            assert (diff.diff, diff.ci_low, diff.ci_high) == (0.0, 0.0, 0.0)
            assert diff.a == diff.b
    assert result.disagreements == []


def test_a_hand_made_pair_gives_the_hand_computed_difference(tmp_path: Path) -> None:
    # A is right at layer 1 for e0, e1 (2 of 4); B for e0, e1, e2 (3 of 4): B - A = +0.25 at layer 1
    a = make_run(tmp_path / "a", {"e0": ["no", "yes"], "e1": ["no", "yes"], "e2": ["no", "no"], "e3": ["no", "no"]})
    b = make_run(tmp_path / "b", {"e0": ["yes", "yes"], "e1": ["no", "yes"], "e2": ["no", "yes"],
                                  "e3": ["no", "no"]})
    result = compare(a, b, resamples=500)
    top = result.layers[1].metrics["accuracy"]
    assert (top.a, top.b, top.diff) == (0.5, 0.75, 0.25)
    assert top.ci_low <= 0.25 <= top.ci_high and top.ci_low >= 0.0  # B is never worse on any example
    bottom = result.layers[0].metrics["accuracy"]
    assert (bottom.a, bottom.b, bottom.diff) == (0.0, 0.25, 0.25)
    # every reference is "yes": answering "yes" always is right every time, so chance is 1.0 and no layer of
    # either run closes any of the gap from chance to its top layer
    assert result.baselines["accuracy"] == 1.0
    assert result.first_layer_reaching["b"]["accuracy"] == {"50%": None, "90%": None}
    assert [d.id for d in result.disagreements] == ["e0", "e2"]
    assert result.disagreements[0].rows[0] == (0, "no", "yes")


def test_partial_overlap_warns_and_no_overlap_is_refused(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", {"e0": ["no", "yes"], "e1": ["yes", "yes"], "e2": ["no", "no"]})
    b = make_run(tmp_path / "b", {"e1": ["yes", "yes"], "e2": ["no", "no"], "e9": ["no", "yes"]})
    result = compare(a, b)
    assert result.examples == 2 and "share 2 of their 3 and 3 examples" in result.warnings[0]
    c = make_run(tmp_path / "c", {"x0": ["no", "yes"]})
    with pytest.raises(InputError, match="no example in common"):
        compare(a, c)


def test_first_layer_reaching_a_share() -> None:
    assert first_layer_reaching({0: 0.1, 1: 0.5, 2: 0.95, 3: 1.0}, 0.5, True) == 1
    assert first_layer_reaching({0: 0.1, 1: 0.5, 2: 0.95, 3: 1.0}, 0.9, True) == 2
    assert first_layer_reaching({0: 1.0, 1: 0.6, 2: 0.3}, 0.5, False) == 1  # an error rate: at most 0.3 / 0.5


def test_first_layer_reaching_counts_from_chance() -> None:
    # chance 0.5 (a balanced yes/no task): layer 0 at chance closes none of the gap; 0.75 closes half of it
    values = {0: 0.55, 1: 0.7, 2: 0.75, 3: 0.95, 4: 1.0}
    assert first_layer_reaching(values, 0.5, True) == 0  # without chance, layer 0 already has half the top
    assert first_layer_reaching(values, 0.5, True, baseline=0.5) == 2
    assert first_layer_reaching(values, 0.9, True, baseline=0.5) == 3
    # an error rate with chance 1.0 (the empty answer): half the gap to 0.2 is 0.6
    assert first_layer_reaching({0: 1.0, 1: 0.7, 2: 0.55, 3: 0.2}, 0.5, False, baseline=1.0) == 2


def test_compare_command_writes_json_and_page(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", {"e0": ["no", "yes"], "e1": ["no", "yes"], "e2": ["no", "no"]}, model="runs/a")
    b = make_run(tmp_path / "b", {"e0": ["yes", "yes"], "e1": ["no", "yes"], "e2": ["no", "yes"]}, model="runs/b")
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--format", "json", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) >= {"a", "b", "examples", "layers"}
    assert set(printed["layers"][1]["metrics"]["accuracy"]) == {"a", "b", "diff", "ci_low", "ci_high"}
    assert json.loads((tmp_path / "c" / "compare.json").read_text()) == printed
    page = (tmp_path / "c" / "compare.html").read_text()
    assert "Difference B" in page and "First layer closing" in page
    table = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert table.exit_code == 0 and "B - A per layer" in table.stdout
    missing = CliRunner().invoke(app, ["compare", str(a), str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "has no readouts.jsonl" in missing.stderr


def test_compare_page_in_a_browser(tmp_path: Path) -> None:
    from support.browser import CHROMIUM, open_page

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    a = make_run(tmp_path / "a", {"e0": ["no", "yes"], "e1": ["no", "yes"], "e2": ["no", "no"]})
    b = make_run(tmp_path / "b", {"e0": ["yes", "yes"], "e1": ["no", "yes"], "e2": ["no", "yes"]})
    CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "c")])
    manager, browser, page, errors, requests = open_page(tmp_path / "c" / "compare.html")
    try:
        assert errors == [] and len(requests) == 1
        assert page.locator("#curves .panel").count() >= 2 and page.locator("#diffs .panel").count() >= 2
        assert page.locator("article.example").count() == 2
        assert "A · 0" in page.inner_text("#examples") and "B · 1" in page.inner_text("#examples")
        # every panel is a chart with its own legend naming both runs; no legend takes a cell of its own
        assert page.locator("#curves > .legend").count() == 0
        legend = page.locator("#curves .panel").first.locator(".legend").inner_text()
        assert "A: a" in legend and "B: b" in legend and "chance" in legend
        assert page.locator("#curves .panel").first.locator("line.chance").count() == 1
        assert "B − A (accuracy)" in page.locator("#diffs").inner_text()  # the differences' y axis says what it is
    finally:
        browser.close()
        manager.stop()
