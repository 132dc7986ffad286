"""What a new user trips on in the first hour: every bad input gets one clear line (exit 2), never a traceback,
and never costs results already computed. Commands run in-process through typer's runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decoderlens.cli.app import app
from decoderlens.testing import sample_texts, sample_waveforms, tiny_model, tiny_processor, word_tokenizer

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny-bart"
    tiny_model("bart").save_pretrained(path)
    tiny_processor("bart").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.jsonl"
    path.write_text("".join(json.dumps({"id": f"e{i}", "input": t, "target": t.split()[0]}) + "\n"
                            for i, t in enumerate(sample_texts(6, seed=2))))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_missing_local_folders_are_named_at_once(model_dir: Path, tmp_path: Path) -> None:
    for name in ("./no-such-model", "/no/such/folder", str(model_dir.parent / "x" / "y")):
        code, _, err = invoke("run", name, "w1")
        assert code == 2 and f"no such folder: {name}" in err
    code, _, err = invoke("run", str(model_dir.parent / "tiny-brat"), "w1")  # a typo of a local folder
    assert code == 2 and "no such folder" in err and "did you mean" in err and "tiny-bart" in err


def test_broken_model_folders(model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = invoke("run", str(empty), "w1")
    assert code == 2 and "has no config.json" in err
    damaged = tmp_path / "damaged"
    shutil.copytree(model_dir, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, _, err = invoke("run", str(damaged), "w1")
    assert code == 2 and "damaged or incomplete" in err
    bare = tmp_path / "no-tokenizer"
    tiny_model("bart").save_pretrained(bare)
    code, _, err = invoke("run", str(bare), "w1")
    assert code == 2 and "has no tokenizer files" in err
    foreign = tmp_path / "foreign-tokenizer"
    tiny_model("bart").save_pretrained(foreign)
    big = word_tokenizer()
    big.add_tokens([f"extra{i}" for i in range(100)])
    big.save_pretrained(foreign)
    code, _, err = invoke("run", str(foreign), "w1")
    assert code == 2 and "belongs to another model" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--num-beams", "0"], "num_beams (--num-beams) must be a whole number of at least 1, got 0"),
     (["--max-new-tokens", "-1"], "max_new_tokens (--max-new-tokens) must be a whole number of at least 1, got -1"),
     (["--batch-size", "0"], "batch_size (--batch-size) must be a whole number of at least 1, got 0"),
     (["--batch-size", "many"], "batch_size (--batch-size) must be 'auto' or a whole number"),
     (["--final-norm", "maybe"], "final_norm (--final-norm) must be one of auto, none, got 'maybe'"),
     (["--layers", ""], "layer selection '' is empty"),
     (["--layers", "9"], "layer 9 does not exist"),
     (["--device", "tpu"], "unknown device 'tpu'"),
     (["--dtype", "float8"], "dtype (--dtype) must be one of"),
     (["--max-memory", "lots"], "cannot read the memory size 'lots'"),
     (["--tgt-lang", "de"], "take no target language"),
     (["--image", "x.png"], "need a vision")],
)
def test_run_options_are_checked(model_dir: Path, args: list[str], message: str) -> None:
    code, _, err = invoke("run", str(model_dir), "w1", *args)
    assert code == 2 and message in err


def test_audio_files_after_one_flag_are_refused(tmp_path: Path) -> None:
    import soundfile as sf

    model = tmp_path / "whisper"
    tiny_model("whisper").save_pretrained(model)
    tiny_processor("whisper").save_pretrained(model)
    clips = []
    for i, wave in enumerate(sample_waveforms(3, seed=1)):
        clips.append(tmp_path / f"c{i}.wav")
        sf.write(clips[-1], wave, 16000)
    code, _, err = invoke("run", str(model), "--audio", str(clips[0]), str(clips[1]), str(clips[2]))
    assert code == 2 and "--audio" in err and "order" in err
    code, out, err = invoke("run", str(model), "--audio", str(clips[0]), "--audio", str(clips[1]), "--format", "json",
                            "--max-new-tokens", "3", "--language", "en")
    assert code == 0, err
    assert [e["input"] for e in json.loads(out)["examples"]] == [str(clips[0]), str(clips[1])]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--normalize", "bogus"], "unknown normalisation 'bogus'"),
     (["--template", "no placeholder"], "has no {input} placeholder"),
     (["--template", "{question} {input}"], "unknown placeholders ['question']"),
     (["--template", "{input"], "does not parse"),
     (["--metric", "nope"], "unknown metric 'nope'"),
     (["--preset", "poetry"], "unknown preset 'poetry'"),
     (["--layers", ""], "layer selection '' is empty"),
     (["--layers", "7"], "layer 7 does not exist"),
     (["--on-error", "ignore"], "on_error (--on-error) must be one of skip, fail"),
     (["--input-field", "nothere"], "every row was skipped"),
     (["--limit", "0"], "limit (--limit) must be a whole number of at least 1")],
)
def test_eval_options_are_checked_before_anything_is_written(model_dir: Path, data_file: Path, tmp_path: Path,
                                                             args: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, _, err = invoke("eval", str(model_dir), str(data_file), "--out", str(out), *args)
    assert code == 2 and message in err
    assert not (out / "run.json").exists()


def test_a_failed_field_guess_leaves_no_settings_behind(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "odd.jsonl"
    data.write_text('{"prompt": "w1 w2", "gold": "w1"}\n{"prompt": "w3", "gold": "w3"}\n')
    out = tmp_path / "out"
    code, _, err = invoke("eval", str(model_dir), str(data), "--out", str(out))
    assert code == 2 and "--input-field" in err and not out.exists()
    code, _, err = invoke("eval", str(model_dir), str(data), "--out", str(out), "--input-field", "prompt",
                          "--target-field", "gold", "--max-new-tokens", "3")
    assert code == 0, err


def test_bad_rows_are_skipped_and_reported(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(b'{"input": "w1 w2", "target": "w1"}\n{"input": "w\xff\xfe", "target": "w2"}\n'
                     b'{"input": "w3", "target": "w3"}\n')
    code, _, err = invoke("eval", str(model_dir), str(data), "--out", str(tmp_path / "o"), "--max-new-tokens", "3")
    assert code == 0, err
    assert "line 2: not valid UTF-8" in err
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["layers"][0]["n"] == 2
    table = tmp_path / "mixed.csv"
    table.write_bytes(b"input,target\nw1 w2,w1\nw\xff,w2\nw3,w3,extra\nw4,w4\n")
    code, _, err = invoke("eval", str(model_dir), str(table), "--out", str(tmp_path / "c"), "--max-new-tokens", "3")
    assert code == 0, err
    assert "line 3: not valid UTF-8" in err and "line 4: has more fields than the header" in err


def test_malformed_formulas_under_the_logic_preset(tmp_path: Path) -> None:
    from decoderlens.logic import shipped_model_path

    data = tmp_path / "formulas.jsonl"
    data.write_text('{"id": "ok", "formula": "& a b", "target": "a 1 b 1 c 0 d 0 e 0"}\n'
                    '{"id": "bad", "formula": "& a", "target": "a 1"}\n'
                    '{"id": "junk", "formula": "hello world", "target": "a 1"}\n')
    out = tmp_path / "out"
    code, _, err = invoke("eval", str(shipped_model_path()), str(data), "--preset", "logic", "--out", str(out))
    assert code == 0, err
    assert "example bad: not a formula" in err and "example junk: not a formula" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layers"][-1]["n"] == 1 and len(summary["skipped"]) == 2


def test_every_row_skipped_exits_non_zero(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "empty-inputs.jsonl"
    data.write_text('{"input": "", "target": "w1"}\n{"input": "  ", "target": "w2"}\n')
    code, _, err = invoke("eval", str(model_dir), str(data), "--out", str(tmp_path / "o"))
    assert code == 2 and "every row was skipped" in err and "empty input" in err


def test_audio_folder_with_one_text_column(tmp_path: Path) -> None:
    import soundfile as sf

    from decoderlens.evaluation.data import DataSource, load_rows

    folder = tmp_path / "clips"
    folder.mkdir()
    for i, wave in enumerate(sample_waveforms(2, seed=4)):
        sf.write(folder / f"c{i}.wav", wave, 16000)
    (folder / "metadata.csv").write_text("file_name,text\nc0.wav,w1 w2\nc1.wav,w3\n")
    for source in (DataSource(str(folder)), DataSource(str(folder), target_field="text")):
        loaded = load_rows(source)
        assert [Path(r.input).name for r in loaded.rows] == ["c0.wav", "c1.wav"], source
        assert [r.reference for r in loaded.rows] == ["w1 w2", "w3"] and not loaded.problems


def test_one_writer_per_folder(model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    import os
    import socket

    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(f"{socket.gethostname()} {os.getppid()}\n")  # a live process holds it
    code, _, err = invoke("eval", str(model_dir), str(data_file), "--out", str(out), "--max-new-tokens", "3")
    assert code == 2 and "being written by another decoderlens eval" in err
    (out / ".lock").write_text(f"{socket.gethostname()} 999999999\n")  # its process is gone: taken over
    code, _, err = invoke("eval", str(model_dir), str(data_file), "--out", str(out), "--max-new-tokens", "3")
    assert code == 0, err
    assert not (out / ".lock").exists()


def test_terminal_tables_fit_80_columns(model_dir: Path, data_file: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from decoderlens.engine import DecoderLens
    from decoderlens.presentation.tables import score_tables

    lens = DecoderLens.from_pretrained(str(model_dir), device="cpu")
    scores = lens.score(["w1 w2"], ["w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12"])
    console = Console(width=80, record=True)
    for table in score_tables(scores, 80):
        console.print(table)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert all(f"w{i}" in text for i in range(1, 13))
    code, out, err = invoke("eval", str(model_dir), str(data_file), "--out", str(tmp_path / "o"), "--metric",
                            "accuracy", "--metric", "chrf", "--metric", "token_f1", "--metric", "exact_match",
                            "--max-new-tokens", "3", "--score")
    assert code == 0, err
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80


def test_json_has_token_ids_on_one_line(model_dir: Path) -> None:
    code, out, _ = invoke("run", str(model_dir), "w1 w2 w3", "--format", "json", "--max-new-tokens", "4")
    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    ids = [line for line in lines if line.startswith('"token_ids"')]
    assert len(ids) == 4 and all(line.endswith("],") or line.endswith("]") for line in ids)
    data = json.loads(out)
    assert all(isinstance(t, int) for r in data["examples"][0]["readouts"] for t in r["token_ids"])


def test_help_and_version_do_not_load_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from decoderlens.cli.app import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "eval" in proc.stdout and "run" in proc.stdout
    version = subprocess.run([sys.executable, "-m", "decoderlens", "--version"], capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("decoderlens ")


def test_sigterm_stops_like_ctrl_c_and_the_run_resumes(model_dir: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "input": t, "target": t.split()[0]}) + "\n"
                            for i, t in enumerate(sample_texts(300, seed=3))))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "decoderlens", "eval", str(model_dir), str(data), "--out", str(out), "--chunk-size",
           "1", "--max-new-tokens", "6", "--metric", "accuracy"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "readouts.jsonl").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err and "Traceback" not in err
    assert not (out / "summary.json").exists() and not (out / ".lock").exists()
    done = len((out / "readouts.jsonl").read_text().splitlines())
    assert 0 < done < 300 * 4
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["layers"][0]["n"] == 300
