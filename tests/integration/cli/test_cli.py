"""The command line, run in a real subprocess on a tiny model saved to disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from decoderlens import DecoderLens
from decoderlens.testing import tiny_model, tiny_processor


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-bart")
    tiny_model("bart").save_pretrained(path)
    tiny_processor("bart").save_pretrained(path)
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decoderlens", *args], capture_output=True, text=True,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}, timeout=300)


def test_run_json_shape(model_dir: Path) -> None:
    proc = cli("run", str(model_dir), "w1 w2 w3", "w4 w5", "--format", "json", "--max-new-tokens", "5")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["num_encoder_layers"] == 3 and len(data["examples"]) == 2
    assert [r["layer"] for r in data["examples"][0]["readouts"]] == [0, 1, 2, 3]
    assert data["examples"][0]["input"] == "w1 w2 w3"
    expected = DecoderLens.from_pretrained(str(model_dir), device="cpu").generate(["w1 w2 w3", "w4 w5"],
                                                                                 max_new_tokens=5)
    assert data["examples"] == json.loads(expected.to_json())["examples"], "the command differs from the library"


def test_run_table_csv_and_layers(model_dir: Path, tmp_path: Path) -> None:
    proc = cli("run", str(model_dir), "w1 w2", "--layers", "0,-1")
    assert proc.returncode == 0 and "layer" in proc.stdout and "3 (final)" in proc.stdout
    out = tmp_path / "r.csv"
    proc = cli("run", str(model_dir), "w1 w2", "--format", "csv", "--output", str(out), "--layers", "1:3")
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("example,input,layer,text") and len(lines) == 3


def test_score_command(model_dir: Path) -> None:
    proc = cli("score", str(model_dir), "w1 w2", "w3 w4", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["examples"][0]["layers"]) == 4
    expected = DecoderLens.from_pretrained(str(model_dir), device="cpu").score(["w1 w2"], ["w3 w4"])
    assert data == json.loads(expected.to_json()), "the command differs from the library"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--layers", "9"], "does not exist"), (["--image", "x.png"], "need a vision"),
     (["--tgt-lang", "de"], "no target")],
)
def test_cli_errors_are_one_line(model_dir: Path, args: list[str], message: str) -> None:
    proc = cli("run", str(model_dir), "w1", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_model_folder(tmp_path: Path) -> None:
    proc = cli("run", str(tmp_path / "nope"), "hello")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: no such folder: {tmp_path / 'nope'}"


@pytest.mark.parametrize(("args", "message"), [
    (["tune", "m", "d.jsonl", "--out", "x", "--batch-size", "4"],
     "--batch-size was renamed: did you mean --step-batch?"),
    (["demo", "--force"], "--force was renamed: did you mean --fresh?"),
    (["plot", "folder", "--format=pdf"], "--format was renamed: did you mean --figure-format?"),
    (["compare", "a", "b", "--resamples", "10"], "--resamples was renamed: did you mean --bootstrap-resamples?"),
    (["eval", "m", "d.jsonl", "--task", "logic"], "did you mean --preset logic?"),
])
def test_renamed_options_name_their_new_spelling(args: list[str], message: str) -> None:
    proc = cli(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_logic_data_train_and_export_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    proc = cli("logic", "data", data, "--train-size", "20", "--eval-size", "5", "--target", "majority")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "data" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["target"].split()) == 10 for r in rows)
    proc = cli("logic", "train", str(tmp_path / "run"), "--max-steps", "2", "--d-model", "16", "--warmup-steps", "1",
               "--micro-batches", "1", "--target", "minimal", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "run" / "model" / "training_config.json").read_text())
    assert (config["target"], config["micro_batches"], config["warmup_steps"], config["steps"]) == ("minimal", 1, 1, 2)
    proc = cli("logic", "train", str(tmp_path / "bad"), "--target", "shortest")
    assert proc.returncode != 0 and "shortest" in proc.stderr
    checkpoint = str(tmp_path / "run" / "checkpoint.pt")
    proc = cli("logic", "export", checkpoint, str(tmp_path / "model"), "--card-examples", "0")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "model" / "model.safetensors").is_file()
