"""The HTML report in a real headless Chromium, static figures, and notebook/terminal display."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decoderlens import GenerationSettings
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.folder import EvalFolder, ReadoutRecord
from decoderlens.evaluation.runner import evaluate, summarize
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.presentation.plots import write_plots
from decoderlens.presentation.report import static_table_html, token_emergence, write_lens_output_html, write_report
from decoderlens.testing import sample_texts
from support.browser import needs_browser, open_page
from support.models import lens_for


@pytest.fixture(scope="module")
def eval_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval")
    texts = sample_texts(23, seed=11)
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"e{i}", "input": t, "target": " ".join(t.split()[:3])}) + "\n"
                            for i, t in enumerate(texts)))
    settings = EvalSettings(model="tiny-t5", data=DataSource(str(data)), metrics=["accuracy", "token_f1"],
                            generation=GenerationSettings(max_new_tokens=6, token_scores=True), score=True, grid=True,
                            bootstrap_resamples=100)
    evaluate(settings, folder / "out", lens=lens_for("t5"), progress=False)
    write_report(folder / "out")
    return folder / "out"


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    long_text = "lorem-ipsum-" * 600
    outputs = {0: "</script><script>window.injected = 1</script>", 1: "مرحبا بالعالم <!-- not a comment",
               2: "שלום עולם 🎉 ünïcödé \u2028 & <![CDATA[", 3: long_text}
    records = [ReadoutRecord(f"x{e}", layer, "<b>bold?</b> & مرحبا <!--", out, "שלום")
               for e in range(3) for layer, out in outputs.items()]
    store = EvalFolder(folder)
    store.append(records)
    settings = EvalSettings(model="hostile", data=DataSource("none.jsonl"), metrics=["accuracy"],
                            bootstrap_resamples=50)
    store.write_summary(summarize(records, settings, num_layers=3))
    write_report(folder)
    return folder


@needs_browser
def test_report_loads_offline_and_filters(eval_folder: Path, tmp_path: Path) -> None:
    manager, browser, page, errors, requests = open_page(eval_folder / "report.html")
    try:
        assert errors == []
        assert requests == [(eval_folder / "report.html").resolve().as_uri()]  # nothing but the file itself
        assert page.locator("article.example").count() == 10  # paginated
        assert page.locator("#count").inner_text() == "23 of 23 examples"
        first = page.locator("article.example").first
        assert first.locator("table.grid tr").count() == 1 + 4  # header + layers 0..3
        assert page.locator("#curves .panel").count() == 4  # accuracy, token_f1, agreement, logprob
        assert first.locator(".heat table:not(.heatmap) tr").count() == 1 + 4
        assert page.locator("#grid table.heatmap tr").count() == 1 + 4  # the data set's 2-D lens
        assert first.locator("table.heatmap").count() == 1  # and the example's
        page.click("#next")
        page.click("#next")
        assert page.locator("article.example").count() == 3 and "page 3 of 3" in page.inner_text("#page-info")
        word = first_input_word(eval_folder)
        page.fill("#search", word)
        shown = int(page.inner_text("#count").split()[0])
        assert 0 < shown < 23
        page.fill("#search", "")
        options = page.locator("#condition option").all_inner_texts()
        assert any("top right but layer 0 wrong (accuracy)" in o for o in options)
        page.select_option("#condition", "accuracy|0")
        expected = count_top_right_layer_wrong(eval_folder, "accuracy", 0)
        assert int(page.inner_text("#count").split()[0]) == expected
        page.select_option("#layer-filter", "1")
        if expected:
            assert page.locator("article.example").first.locator("table.grid tr").count() == 1 + 2
        assert page.locator("#curves line.chance").count() >= 1  # chance level drawn where a metric has one
        assert page.locator("#curves .panel .legend span").count() >= 2  # every panel names its lines
        assert "(share, 0-1)" in page.locator("#curves").inner_text()  # y axes say their unit
        modes = page.locator("#colouring option").evaluate_all("options => options.map(o => o.value)")
        assert modes == ["agreement", "probability", "entropy", "rank"]
        page.select_option("#condition", "all")
        page.select_option("#layer-filter", "all")
        page.select_option("#colouring", "probability")
        shaded = page.locator("article.example .tok.shade")
        assert shaded.count() > 0 and shaded.first.get_attribute("title").startswith("p = ")
        page.select_option("#colouring", "rank")
        assert "ranked" in page.locator("article.example .tok.shade").first.get_attribute("title")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=False)
        assert_not_blank(shot)
        assert errors == []
    finally:
        browser.close()
        manager.stop()


def first_input_word(folder: Path) -> str:
    record = json.loads((folder / "readouts.jsonl").read_text().splitlines()[0])
    return str(record["input"].split()[0])


def count_top_right_layer_wrong(folder: Path, metric: str, layer: int) -> int:
    records = [json.loads(x) for x in (folder / "readouts.jsonl").read_text().splitlines()]
    right = {(r["id"], r["layer"]): r["output"].strip() == r["reference"].strip() for r in records}
    top = max(r["layer"] for r in records)
    return sum(1 for (i, lay), ok in right.items() if lay == top and ok and not right[(i, layer)])


def assert_not_blank(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50


@needs_browser
def test_unicode_rtl_long_and_script_text_stay_intact(hostile_folder: Path) -> None:
    manager, browser, page, errors, _ = open_page(hostile_folder / "report.html", width=1000)
    try:
        assert errors == []
        assert page.evaluate("window.injected") is None
        body = page.inner_text("body")
        assert "</script><script>window.injected = 1</script>" in body
        assert "مرحبا بالعالم <!-- not a comment" in body and "🎉 ünïcödé" in body and "<![CDATA[" in body
        assert "<b>bold?</b> & مرحبا <!--" in body
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, "a long output broke the layout"
        assert page.locator("[dir=auto]").count() > 0
    finally:
        browser.close()
        manager.stop()


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_static_figures(eval_folder: Path, tmp_path: Path, fmt: str) -> None:
    paths = write_plots(eval_folder, fmt, tmp_path)
    names = sorted(p.name for p in paths)
    assert f"metrics.{fmt}" in names and f"grid.{fmt}" in names and len(paths) == 5  # curves, 2-D lens, 3 heatmaps
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 3000
        if fmt == "svg":
            assert b"<svg" in data and b"encoder layer" in data
        if fmt == "pdf":
            assert data.startswith(b"%PDF")
    if fmt == "png":
        assert_not_blank(tmp_path / "metrics.png")


def test_token_emergence() -> None:
    assert token_emergence(["x y", "a b c", "a q c", "a b c"]) == [
        {"token": "a", "from": 1}, {"token": "b", "from": 3}, {"token": "c", "from": 1}]


def test_notebook_and_terminal_display(tmp_path: Path) -> None:
    from rich.console import Console

    out = lens_for("bart").generate(["w1 w2", "w3"], max_new_tokens=3)
    html_text = out._repr_html_()
    assert html_text.count("<tr>") == 1 + 2 * 4 and "<script" not in html_text
    assert "&lt;" in static_table_html(type(out)(out.model, 3, [type(out[0])("<x>", out[0].readouts)]))
    console = Console(record=True, width=100)
    console.print(out)
    text = console.export_text()
    assert "w1 w2" in text and "(final)" in text
    page = write_lens_output_html(out, tmp_path / "run.html")
    assert "w1 w2" in page.read_text()


@needs_browser
def test_axes_captions_and_counts(eval_folder: Path, tmp_path: Path) -> None:
    manager, browser, page, errors, _ = open_page(eval_folder / "report.html")
    try:
        panels = page.locator("#curves .panel")
        names = panels.locator("h3").all_inner_texts()
        accuracy = panels.nth(names.index("accuracy"))
        ticks = accuracy.locator("svg text").all_text_contents()
        assert {"0.00", "0.25", "0.50", "0.75", "1.00"} <= set(ticks)  # a rate: the whole [0, 1] axis
        assert "share of outputs equal to the reference" in accuracy.inner_text()  # a caption in words
        logprob = panels.nth(names.index("logprob"))
        values = [float(t) for t in logprob.locator("svg text[text-anchor=end]").all_text_contents()]
        steps = {round(b - a, 6) for a, b in zip(sorted(values), sorted(values)[1:], strict=False)}
        step = steps.pop()
        assert not steps and any(abs(step / 10**k - m) < 1e-9 for k in range(-3, 4) for m in (1, 2, 2.5, 5))
        assert errors == []
    finally:
        browser.close()
        manager.stop()
    single = tmp_path / "one"
    store = EvalFolder(single)
    store.append([ReadoutRecord("only", layer, "w1", "w1", "w1") for layer in range(4)])
    settings = EvalSettings(model=str(tmp_path / "models" / "my-model"), data=DataSource("x.jsonl"),
                            metrics=["accuracy"], bootstrap_resamples=10)
    store.write_summary(summarize(store.records(), settings, num_layers=3))
    write_report(single)
    manager, browser, page, errors, _ = open_page(single / "report.html")
    try:
        assert page.inner_text("#count") == "1 of 1 example"
        assert page.inner_text("#subtitle").startswith("1 example,")
        assert page.inner_text("#title") == "DecoderLens: my-model"  # the model's name, not its path
        assert errors == []
    finally:
        browser.close()
        manager.stop()


def test_display_names() -> None:
    from decoderlens.presentation.report import display_name

    assert display_name("google/flan-t5-base") == "google/flan-t5-base"
    assert display_name("/abs/path/to/runs/logic4/model") == "logic4/model"
    assert display_name("./models/tiny") == "tiny"
