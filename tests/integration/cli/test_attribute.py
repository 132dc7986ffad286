"""``decoderlens attribute``: its JSON, figure and page, and a table of bad inputs tried as a new user would (each
ends in exit code 2 and one line that says what to do, never a traceback; nothing computed is lost)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from decoderlens.cli.app import app
from decoderlens.logic import shipped_model_path
from decoderlens.testing import sample_waveforms, tiny_model, tiny_processor
from support.browser import CHROMIUM, needs_browser, open_url
from support.cli import one_line_error, run

MODEL = str(shipped_model_path())
FORMULA = "& a | b ! c"


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Whisper folder, a short clip, a clip over its 30-s window and a file that is no audio."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("whisper")
    tiny_model("whisper").save_pretrained(root / "model")
    tiny_processor("whisper").save_pretrained(root / "model")
    sf.write(root / "clip.wav", sample_waveforms(1, seed=3)[0], 16000)
    sf.write(root / "long.wav", np.zeros(16000 * 31, dtype=np.float32), 16000)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    return root


def test_json_has_the_documented_shape_and_the_figure_and_page_are_written(tmp_path: Path) -> None:
    code, out, err = run("attribute", MODEL, FORMULA, "--layers", "0,6", "--format", "json", "--plot",
                         str(tmp_path / "a.svg"), "--html", str(tmp_path / "a.html"))
    assert code == 0, err
    data = json.loads(out)
    assert data["method"] == "grad" and data["model"] == MODEL
    example = data["examples"][0]
    assert example["input"] == FORMULA
    assert [p["label"] for p in example["source"]] == [*FORMULA.split(), "</s>"]
    assert [la["layer"] for la in example["layers"]] == [0, 6]
    token = example["layers"][1]["tokens"][0]
    assert set(token) >= {"token", "logprob", "attribution"} and len(token["attribution"]) == len(example["source"])
    assert (tmp_path / "a.svg").read_text().startswith("<?xml")
    assert "drawAttribution" in (tmp_path / "a.html").read_text()


def test_speech_json_carries_seconds_and_the_figure_a_waveform(whisper: Path, tmp_path: Path) -> None:
    code, out, err = run("attribute", str(whisper / "model"), str(whisper / "clip.wav"), "--layers", "1",
                         "--max-new-tokens", "3", "--language", "en", "--format", "json", "--plot",
                         str(tmp_path / "a.png"))
    assert code == 0, err
    source = json.loads(out)["examples"][0]["source"]
    window = tiny_processor("whisper").feature_extractor.n_samples / 16000  # the model's whole input window
    assert source[0]["start"] == 0 and source[-1]["end"] == pytest.approx(window, rel=1e-3)
    assert (tmp_path / "a.png").stat().st_size > 1000


ATTRIBUTE_CASES = [
    (["--layers", "9"], "layer 9 does not exist"),
    (["--layers", ""], "is empty"),
    (["--layers", "5:2"], "selects no layer"),
    (["--method", "shap"], "method (--method) must be one of grad, ig, occlusion"),
    (["--method", ""], "method (--method) must be one of"),
    (["--method", "ig", "--steps", "0"], "steps (--steps) must be a whole number of at least 1"),
    (["--steps", "-3"], "steps (--steps) must be a whole number of at least 1"),
    (["--baseline", "noise"], "baseline (--baseline) must be one of zero, mean"),
    (["--occlusion-window", "0"], "occlusion_window (--occlusion-window) must be a whole number of at least 1"),
    (["--target", ""], "--target is empty"),
    (["--target", "   "], "--target is empty"),
    (["--target", " ".join(["a 1"] * 40)], "reads at most 80 positions"),
    (["--max-new-tokens", "500"], "use --max-new-tokens 80 or less"),
    (["--max-new-tokens", "0"], "max_new_tokens (--max-new-tokens) must be a whole number of at least 1"),
    (["--max-rows", "0"], "max_rows (--max-rows) must be a whole number"),
    (["--max-memory", "lots"], "cannot read the memory size"),
    (["--final-norm", "maybe"], "final_norm (--final-norm) must be one of auto, none"),
    (["--tgt-lang", "fr"], "take no target language"),
    (["--language", "en"], "Whisper-style speech models only"),
    (["--device", "tpu"], "unknown device"),
    (["--dtype", "int4"], "dtype (--dtype) must be one of"),
    (["--translators", "./no-such-lens"], "no translators folder"),
    (["--plot", "out.jpg2000"], "write a .png, .svg, .pdf file"),
    (["--html", "out.txt"], "write a .html, .htm file"),
]


@pytest.mark.parametrize(("args", "message"), ATTRIBUTE_CASES)
def test_attribute_bad_inputs(args: list[str], message: str) -> None:
    code, _, err = run("attribute", MODEL, FORMULA, *args)
    one_line_error(code, err, message)


def test_steps_that_are_not_numbers_are_refused_by_the_parser() -> None:
    for value in ("nan", "inf", "2.5"):
        result = CliRunner().invoke(app, ["attribute", MODEL, FORMULA, "--steps", value])
        assert result.exit_code == 2 and "Traceback" not in result.output and "--steps" in result.output


def test_empty_input_and_missing_model(tmp_path: Path) -> None:
    code, _, err = run("attribute", MODEL, "")
    one_line_error(code, err, "empty")
    code, _, err = run("attribute", str(tmp_path / "missing-model"), FORMULA)
    one_line_error(code, err, "no such folder")


@pytest.mark.parametrize(("clip", "message"), [("long.wav", "reads at most"), ("broken.wav", "cannot read"),
                                               ("missing.wav", "")])
def test_audio_that_cannot_be_read(whisper: Path, clip: str, message: str) -> None:
    code, _, err = run("attribute", str(whisper / "model"), str(whisper / clip), "--language", "en")
    one_line_error(code, err, message)


def test_a_figure_that_cannot_be_drawn_never_loses_the_result(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    code, _, err = run("attribute", MODEL, FORMULA, "--layers", "2", "--output", str(target), "--plot",
                       str(blocked / "a.png"))
    assert code == 2 and "Traceback" not in err, err
    assert json.loads(target.read_text())["examples"][0]["layers"], "the result was lost to the figure's failure"


@needs_browser
def test_the_page_shows_where_a_clicked_token_looks(tmp_path: Path) -> None:
    hostile = "& a b"
    page_path = tmp_path / "a.html"
    code, _, err = run("attribute", MODEL, hostile, "--target", "a 1 b 1", "--html", str(page_path))
    assert code == 0, err
    manager, browser, page, errors, requests = open_url(page_path.resolve().as_uri(), wait_for=".attribution")
    try:
        assert errors == [] and requests == [page_path.resolve().as_uri()]
        assert page.locator(".attribution-map").first.locator("rect").count() == 7 * 4  # layers x positions
        rows = page.locator(".attribution-row")
        assert rows.count() == 7
        rows.nth(3).locator("button").nth(1).click()
        focus = page.locator(".attribution-focus")
        assert "Layer 3" in focus.inner_text()
        assert focus.locator("svg text").filter(has_text="layer 3").count() == 1
        assert focus.locator("rect").count() == 7 * 4, "with a target, the token at every layer"
        assert rows.nth(3).locator("button[aria-pressed=true]").count() == 1
    finally:
        browser.close()
        manager.stop()


def test_eval_and_run_pages_show_where_each_layer_looks(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"input": f, "target": "a 1"}) + "\n" for f in ["& a b", "! c", "| a ! b"]))
    out = tmp_path / "eval"
    code, _, err = run("eval", MODEL, str(data), "--out", str(out), "--attribute", "grad", "--layers", "0,3,6",
                       "--bootstrap-resamples", "10")
    assert code == 0, err
    stored = [json.loads(line) for line in (out / "attributions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in stored] == ["0", "1", "2"] and {r["method"] for r in stored} == {"grad"}
    assert [la["layer"] for la in stored[0]["example"]["layers"]] == [0, 3, 6]
    code, _, err = run("report", str(out))
    assert code == 0, err
    page_path = tmp_path / "run.html"
    code, _, err = run("run", MODEL, "& a b", "! c", "--html", str(page_path), "--attribute", "occlusion")
    assert code == 0, err
    code, _, err = run("run", MODEL, "& a b", "--attribute", "grad")
    one_line_error(code, err, "give --html FILE too")
    code, _, err = run("run", MODEL, "& a b", "--attribute", "lime", "--html", str(page_path))
    one_line_error(code, err, "attribute (--attribute) must be one of grad, ig, occlusion")
    code, _, err = run("eval", MODEL, str(data), "--out", str(tmp_path / "bad"), "--attribute", "lime")
    one_line_error(code, err, "attribute (--attribute) must be one of grad, ig, occlusion")
    for page_file, examples in ((out / "report.html", 3), (page_path, 2)):
        if CHROMIUM is None:
            continue
        manager, browser, page, errors, requests = open_url(page_file.resolve().as_uri(), wait_for=".attribution")
        try:
            assert errors == [] and requests == [page_file.resolve().as_uri()]
            assert page.locator("article.example .attribution").count() == examples
            first = page.locator("article.example").first
            first.locator(".attribution-row button").first.click()
            assert "token" in first.locator(".attribution-focus h3").inner_text()
        finally:
            browser.close()
            manager.stop()
