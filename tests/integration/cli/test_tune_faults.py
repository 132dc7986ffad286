"""Damaged or foreign files and numbers that are not numbers, given to ``tune`` and to ``--translators``: one line
each (exit 2), naming the file or option and what to do; nothing is silently resumed, overwritten or lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from decoderlens.cli.app import app
from decoderlens.logic import shipped_model_path
from decoderlens.testing import tiny_model, tiny_processor
from support.models import formulas_file

MODEL = str(shipped_model_path())
FAST = ["--steps", "4", "--step-batch", "8", "--validation", "8", "--max-new-tokens", "12", "--input-field",
        "formula", "--checkpoint-every", "2"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return formulas_file(tmp_path_factory.mktemp("tune"), 40, seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    out = tmp_path_factory.mktemp("lens") / "lens"
    code, err = run("tune", MODEL, str(data), "--out", str(out), *FAST)
    assert code == 0, err
    return out


def _copy(trained: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(trained, target)
    return target


def _read(lens: Path) -> tuple[int, str]:
    return run("run", MODEL, "& a b", "--translators", str(lens), "--max-new-tokens", "4")


def test_good_translators_read(trained: Path) -> None:
    code, err = _read(trained)
    assert code == 0, err


@pytest.mark.parametrize(("damage", "message"), [
    ("truncate-weights", "is damaged or not a safetensors file"),
    ("empty-weights", "is damaged or not a safetensors file"),
    ("garbage-config", "is not a translators config"),
    ("config-without-width", "is not a translators config"),
    ("config-of-another-width", "do not match its config.json"),
    ("weights-of-another-rank", "do not match its config.json"),
    ("nan-weights", "holds NaN or infinite weights"),
    ("no-weights", "holds no translators"),
    ("config-of-another-depth", "encoder of 7 layers"),
    ("foreign-model-hash", "trained for another model"),
])
def test_damaged_translators_are_refused_in_one_line(trained: Path, tmp_path: Path, damage: str,
                                                     message: str) -> None:
    lens = _copy(trained, tmp_path)
    weights, config = lens / "translators.safetensors", lens / "config.json"
    info = json.loads(config.read_text())
    if damage == "truncate-weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "empty-weights":
        weights.write_bytes(b"")
    elif damage == "garbage-config":
        config.write_text("{not json")
    elif damage == "config-without-width":
        config.write_text(json.dumps({k: v for k, v in info.items() if k != "d_model"}))
    elif damage == "config-of-another-width":
        config.write_text(json.dumps({**info, "d_model": info["d_model"] * 2}))
    elif damage == "weights-of-another-rank":
        config.write_text(json.dumps({**info, "rank": 4}))
    elif damage == "nan-weights":
        state = load_file(str(weights))
        state["bias"][0, 0] = float("nan")
        save_file(state, str(weights))
    elif damage == "no-weights":
        weights.unlink()
    elif damage == "config-of-another-depth":
        state = load_file(str(weights))
        save_file({k: torch.cat([v, v[:1]]) for k, v in state.items()}, str(weights))
        config.write_text(json.dumps({**info, "num_encoder_layers": 7}))
    elif damage == "foreign-model-hash":
        config.write_text(json.dumps({**info, "model_hash": "0123456789abcdef"}))
    code, err = _read(lens)
    assert code == 2 and message in err and "Traceback" not in err, err


@pytest.mark.parametrize("name", ["does/not/exist/here", "./missing-lens", "~/missing-lens", "/no/such/folder"])
def test_a_translators_path_that_does_not_exist_is_said_at_once(name: str) -> None:
    code, err = _read(Path(name))
    assert code == 2 and "no translators folder" in err and "Traceback" not in err, err


def test_a_damaged_checkpoint_is_refused_and_a_foreign_one_is_not_resumed(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "lens"
    (out).mkdir()
    (out / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    code, err = run("tune", MODEL, str(data), "--out", str(out), *FAST)
    assert code == 2 and "is damaged or not a tune checkpoint" in err, err
    torch.save({"step": 2}, out / "checkpoint.pt")
    code, err = run("tune", MODEL, str(data), "--out", str(out), *FAST)
    assert code == 2 and "is not a checkpoint of decoderlens tune" in err, err
    # a real checkpoint of this model with these settings, but of other data: never resumed silently
    from decoderlens import DecoderLens, GenerationSettings, RuntimeSettings
    from decoderlens.evaluation.data import DataSource
    from decoderlens.tuned.checkpoints import save_checkpoint
    from decoderlens.tuned.settings import TuneSettings
    from decoderlens.tuned.training import Tuner

    other = formulas_file(tmp_path, 40, seed=99, prefix="g-")
    tuner = Tuner(DecoderLens.from_pretrained(MODEL, device="cpu"), DataSource(str(other), input_field="formula"),
                  TuneSettings(steps=4, step_batch=8, validation=8, checkpoint_every=2),
                  GenerationSettings(max_new_tokens=12), RuntimeSettings())
    optimizer = torch.optim.SGD(list(tuner.translators.parameters()), lr=0.1)
    save_checkpoint({"translators": tuner.translators.state_dict(), "optimizer": optimizer.state_dict(),
                     "step": 2, "identity": tuner.identity()}, out / "checkpoint.pt")
    code, err = run("tune", MODEL, str(data), "--out", str(out), *FAST)
    assert code == 2 and "belongs to a run with another data" in err, err
    code, err = run("tune", MODEL, str(other), "--out", str(out), *FAST)  # its own data: resumed and finished
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["steps"] == 4


def test_tune_out_onto_another_models_translators_is_refused(trained: Path, data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    tiny_model("t5").save_pretrained(folder)
    tiny_processor("t5").save_pretrained(folder)
    lens = _copy(trained, tmp_path)
    before = (lens / "translators.safetensors").read_bytes()
    code, err = run("tune", str(folder), str(data), "--out", str(lens), *FAST)
    assert code == 2 and "holds translators of another model" in err, err
    assert (lens / "translators.safetensors").read_bytes() == before, "another model's translators were overwritten"


@pytest.mark.parametrize(("args", "message"), [
    (["--lr", "nan"], "lr (--lr) must be a positive number"),
    (["--lr", "inf"], "lr (--lr) must be a positive number"),
    (["--lr", "0"], "lr (--lr) must be a positive number"),
    (["--lr", "-1"], "lr (--lr) must be a positive number"),
    (["--steps", "0"], "steps (--steps) must be a whole number of at least 1"),
    (["--step-batch", "0"], "step_batch (--step-batch) must be a whole number of at least 1"),
    (["--rank", "0"], "rank (--rank) must be a whole number of at least 1"),
    (["--rank", "4096"], "rank (--rank) 4096 is above the encoder's width 64"),
    (["--validation", "0"], "validation (--validation) must be a whole number of at least 1"),
    (["--validation", "40"], "too few to hold out 40"),
    (["--objective", "mse"], "objective (--objective) must be one of auto, kl, reference, lstsq"),
    (["--init", "random"], "init (--init) must be one of zero, lstsq"),
    (["--checkpoint-every", "0"], "checkpoint_every (--checkpoint-every) must be a whole number of at least 1"),
    (["--batch-size", "4"], "--batch-size was renamed: did you mean --step-batch?"),
    (["--limit", "0"], "limit (--limit) must be a whole number of at least 1"),
    (["--template", "no placeholder"], "{input}"),
])
def test_tune_options_are_checked(data: Path, tmp_path: Path, args: list[str], message: str) -> None:
    full = [*FAST, *args]
    code, err = run("tune", MODEL, str(data), "--out", str(tmp_path / "x"), *full)
    if args[0] == "--batch-size":  # checked by the entry point, before the command parses its options
        from decoderlens.cli.app import renamed_option

        code, err = 2, renamed_option(["tune", *full]) or ""
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "x" / "translators.safetensors").exists()


def test_a_learning_rate_that_ruins_the_lens_says_so_and_marks_it(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ruined"
    code, err = run("tune", MODEL, str(data), "--out", str(out), *FAST, "--lr", "1e30")
    if code == 2:  # the loss went non-finite: stopped with the fix
        assert "training diverged" in err and "lower --lr" in err, err
        return
    assert code == 0, err
    assert "worse than the raw lens" in err, err
    assert json.loads((out / "config.json").read_text())["worse_than_raw"]
    read_code, read_err = _read(out)
    assert read_code == 0 and "worse than the raw lens" in read_err
