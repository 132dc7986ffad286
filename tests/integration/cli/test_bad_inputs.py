"""Bad inputs to the analysis commands (trace, grid, compare), tried as a new user would: each ends in exit code 2
and one line that says what to do, never a traceback, and nothing already computed is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from decoderlens import GenerationSettings
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.runner import evaluate
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.logic import shipped_model_path
from decoderlens.testing import sample_texts
from support.cli import one_line_error, run
from support.models import lens_for

MODEL = str(shipped_model_path())
FORMULA = "& a | b ! c"


TRACE_CASES = [
    (["--corrupt", "nan:inf"], "0 <= START < END, both finite numbers"),
    (["--corrupt", "0:nan"], "both finite numbers"),
    (["--corrupt", "-1:3"], "0 <= START < END"),
    (["--corrupt", "5:2"], "0 <= START < END"),
    (["--corrupt", "0:99"], "outside the input's 7 tokens"),
    (["--corrupt", "1:2:3"], "--corrupt takes START:END"),
    (["--corrupt", "a:b"], "--corrupt takes START:END"),
    (["--corrupt", "0:3", "--corrupt-with", "& a b"], "not both"),
    (["--corrupt-with", "& a b c d e f"], "same length"),
    (["--noise-scale", "nan"], "noise_scale (--noise-scale) must be a finite number above 0"),
    (["--noise-scale", "inf"], "must be a finite number above 0"),
    (["--noise-scale", "-1"], "must be a finite number above 0"),
    (["--samples", "0"], "samples (--samples) must be a whole number of at least 1"),
    (["--window", "0"], "window (--window) must be a whole number of at least 1"),
    (["--seed", "-1"], "seed (--seed) must be a whole number of at least 0"),
    (["--max-rows", "0"], "max_rows (--max-rows) must be a whole number of at least 1"),
    (["--plot", "out.jpg2000"], "write a .png, .svg, .pdf file"),
    (["--plot", "out"], "write a .png, .svg, .pdf file"),
    (["--html", "out.txt"], "write a .html, .htm file"),
    (["--answer", ""], "is empty"),
    (["--answer", " ".join(["a 1"] * 40)], "reads at most 80 positions"),
    (["--max-new-tokens", "500"], "use --max-new-tokens 80 or less"),
    (["--language", "en"], "Whisper-style speech models only"),
    (["--tgt-lang", "fr"], "take no target language"),
    (["--device", "tpu"], "unknown device"),
]


@pytest.mark.parametrize(("args", "message"), TRACE_CASES)
def test_trace_bad_inputs(args: list[str], message: str, tmp_path: Path) -> None:
    code, _, err = run("trace", MODEL, FORMULA, *args)
    one_line_error(code, err, message)


def test_a_figure_that_cannot_be_drawn_never_loses_the_trace(tmp_path: Path) -> None:
    target = tmp_path / "trace.json"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    code, _, err = run("trace", MODEL, FORMULA, "--samples", "2", "--output", str(target), "--plot",
                       str(blocked / "t.png"))
    assert code == 2 and "Traceback" not in err, err
    assert json.loads(target.read_text())["answer"], "the result was lost to the figure's failure"


GRID_CASES = [
    (["--layers", "9"], "does not exist"),
    (["--layers", ""], "is empty"),
    (["--layers", "a:b"], "cannot parse"),
    (["--layers", "5:2"], "selects no layer"),
    (["--final-norm", "maybe"], "final_norm (--final-norm) must be one of auto, none"),
    (["--max-new-tokens", "0"], "max_new_tokens (--max-new-tokens) must be a whole number of at least 1"),
    (["--max-new-tokens", "500"], "use --max-new-tokens 80 or less"),
    (["--max-rows", "0"], "max_rows (--max-rows) must be a whole number"),
    (["--batch-size", "0"], "batch_size (--batch-size) must be a whole number"),
    (["--batch-size", "many"], "must be 'auto' or a whole number"),
    (["--max-memory", "lots"], "cannot read the memory size"),
    (["--max-memory", "0"], "must be positive"),
    (["--tgt-lang", "fr"], "take no target language"),
    (["--language", "de"], "Whisper-style speech models only"),
    (["--task", "translate"], "Whisper-style speech models only"),
    (["--dtype", "int4"], "dtype (--dtype) must be one of"),
    (["--device", "gpu"], "unknown device"),
    (["--translators", "./no-such-lens"], "no translators folder"),
    (["--decoding", "fast"], "decoding (--decoding) must be one of auto, generate, one-call"),
    (["--first-round", "0"], "first_round (--first-round) must be a whole number of at least 1"),
    (["--html", "grid.pdf"], "write a .html, .htm file"),
]


@pytest.mark.parametrize(("args", "message"), GRID_CASES)
def test_grid_bad_inputs(args: list[str], message: str) -> None:
    code, _, err = run("grid", MODEL, FORMULA, *args)
    one_line_error(code, err, message)


def test_grid_targets_beyond_the_decoder_and_unmapped_decoders(tmp_path: Path) -> None:
    code, _, err = run("grid", MODEL, FORMULA, " ".join(["a 1"] * 40))
    one_line_error(code, err, "reads at most 80 positions")
    code, _, err = run("grid", MODEL, FORMULA, "")
    one_line_error(code, err, "is empty")
    code, _, err = run("grid", str(tmp_path / "missing-model"), FORMULA)
    one_line_error(code, err, "no such folder")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs over the same data, and one over other data under the same (row-number) ids."""
    root = tmp_path_factory.mktemp("compare")
    folders = {}
    for name, seed in (("a", 1), ("b", 1), ("other", 7)):
        data = root / f"{name}.jsonl"
        data.write_text("".join(json.dumps({"input": t, "target": " ".join(t.split()[:2])}) + "\n"
                                for t in sample_texts(8, seed=seed)))
        settings = EvalSettings(model="tiny-t5", data=DataSource(str(data)), metrics=["accuracy"],
                                generation=GenerationSettings(max_new_tokens=4, num_beams=1 if name != "b" else 2),
                                bootstrap_resamples=100)
        evaluate(settings, root / name, lens=lens_for("t5"), progress=False)
        folders[name] = root / name
    return folders


def test_runs_over_the_same_data_compare(runs: dict[str, Path]) -> None:
    code, out, err = run("compare", str(runs["a"]), str(runs["b"]), "--format", "json", "--bootstrap-resamples", "100")
    assert code == 0, err
    assert json.loads(out)["examples"] == 8


def _compare_case(runs: dict[str, Path], tmp_path: Path, case: str) -> list[str]:
    a, b = str(runs["a"]), str(runs["b"])
    if case == "missing-folder":
        return [a, str(tmp_path / "nope")]
    if case == "empty-folder":
        (tmp_path / "empty").mkdir()
        return [a, str(tmp_path / "empty")]
    if case == "a-file":
        (tmp_path / "f.txt").write_text("x")
        return [a, str(tmp_path / "f.txt")]
    if case == "out-is-a-file":
        (tmp_path / "taken").write_text("x")
        return [a, b, "--out", str(tmp_path / "taken")]
    if case in ("garbage-summary", "torn-summary", "no-summary", "garbage-readouts", "summary-is-a-list",
                "summary-of-another-version", "record-without-layer", "readouts-not-utf8"):
        copy = tmp_path / "copy"
        shutil.copytree(runs["b"], copy)
        if case == "garbage-summary":
            (copy / "summary.json").write_text("{oops")
        elif case == "torn-summary":
            (copy / "summary.json").write_text((copy / "summary.json").read_text()[:40])
        elif case == "no-summary":
            (copy / "summary.json").unlink()
        elif case == "summary-is-a-list":
            (copy / "summary.json").write_text("[]")
        elif case == "summary-of-another-version":
            data = json.loads((copy / "summary.json").read_text())
            (copy / "summary.json").write_text(json.dumps({k: v for k, v in data.items() if k != "layers"}))
        elif case == "record-without-layer":
            (copy / "readouts.jsonl").write_text(json.dumps({"id": "0", "input": "x", "output": "y"}) + "\n")
        elif case == "readouts-not-utf8":
            (copy / "readouts.jsonl").write_bytes(b'{"id": "\xff\xfe"}\n')
        else:
            (copy / "readouts.jsonl").write_text("not json at all\n")
        return [a, str(copy)]
    if case == "other-data":
        return [a, str(runs["other"])]
    return [a, b]


COMPARE_CASES = [
    ("missing-folder", [], "has no readouts.jsonl"),
    ("empty-folder", [], "has no readouts.jsonl"),
    ("a-file", [], "has no readouts.jsonl"),
    ("garbage-summary", [], "summary.json"),
    ("torn-summary", [], "summary.json"),
    ("no-summary", [], "summary.json"),
    ("garbage-readouts", [], "readouts.jsonl"),
    ("other-data", [], "hold different examples under the same ids"),
    ("summary-is-a-list", [], "summary.json"),
    ("summary-of-another-version", [], "summary.json"),
    ("record-without-layer", [], "readouts.jsonl"),
    ("readouts-not-utf8", [], "readouts.jsonl"),
    ("out-is-a-file", [], "taken"),
    ("same", ["--bootstrap-resamples", "99"], "must be at least 100"),
    ("same", ["--bootstrap-resamples", "0"], "must be at least 100"),
    ("same", ["--bootstrap-resamples", "-5"], "must be at least 100"),
    ("same", ["--bootstrap-resamples", "10"], "must be at least 100"),
    ("same", ["--plot", "x.bmp"], "write a .png, .svg, .pdf file"),
    ("same", ["--plot", "x"], "write a .png, .svg, .pdf file"),
    ("same", ["--resamples", "100"], "--resamples was renamed"),
]


@pytest.mark.parametrize(("case", "args", "message"), COMPARE_CASES)
def test_compare_bad_inputs(runs: dict[str, Path], tmp_path: Path, case: str, args: list[str], message: str) -> None:
    folders = _compare_case(runs, tmp_path, case)
    if args[:1] == ["--resamples"]:  # checked by the entry point, before the command parses its options
        from decoderlens.cli.app import renamed_option

        code, err = 2, "error: " + (renamed_option(["compare", *folders, *args]) or "")
    else:
        code, _, err = run("compare", *folders, *args)
    one_line_error(code, err, message)


def test_a_comparison_that_cannot_be_drawn_keeps_its_files(runs: dict[str, Path], tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    code, out, err = run("compare", str(runs["a"]), str(runs["b"]), "--out", str(tmp_path / "c"), "--plot",
                         str(blocked / "c.png"), "--format", "json")
    assert code == 2 and "Traceback" not in err, err
    assert json.loads((tmp_path / "c" / "compare.json").read_text())["examples"] == 8
    assert json.loads(out)["examples"] == 8, "the printed result was lost to the figure's failure"


SPEECH_OPTION_CASES = [
    (["run", MODEL, FORMULA, "--detect-language"], "names no languages"),
    (["run", MODEL, FORMULA, "--detect-language", "--html", "x.html"], "--html draws readouts"),
    (["eval", MODEL, "d.jsonl", "--nonspeech", "-1"], "nonspeech (--nonspeech) must be a whole number of at least 0"),
    (["eval", MODEL, "d.jsonl", "--nonspeech", "1000"], "at most 256 clips"),
    (["eval", MODEL, "d.jsonl", "--nonspeech", "x"], "Invalid value for '--nonspeech'"),
    (["eval", MODEL, "d.jsonl", "--input-field", "formula", "--language-field", "lang"],
     "missing field 'lang' (--language-field)"),
]


@pytest.mark.parametrize(("args", "message"), SPEECH_OPTION_CASES)
def test_speech_options_refuse_bad_values(args: list[str], message: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_text('{"formula": "& a b", "target": "a 1 b 1"}\n')
    code, _, err = run(*args)
    if message.startswith("Invalid value"):  # the parser's own refusal of a non-number
        assert code == 2 and message in err and "Traceback" not in err
        return
    one_line_error(code, err, message)
