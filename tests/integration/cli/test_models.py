"""Shipped models by short name: every command accepts ``logic`` from any folder, ``decoderlens models`` lists
what ships, and a local folder of the same name comes first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from decoderlens.logic import shipped_model_path


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "decoderlens", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_models_lists_what_ships(tmp_path: Path) -> None:
    proc = cli(tmp_path, "models", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    models = {m["name"]: m for m in json.loads(proc.stdout)}
    assert Path(models["logic"]["path"]) == shipped_model_path()
    assert (Path(models["logic"]["path"]) / "config.json").is_file()
    table = cli(tmp_path, "models")
    assert table.returncode == 0 and "logic" in table.stdout


def test_the_short_name_works_from_any_folder_and_reads_like_the_path(tmp_path: Path) -> None:
    by_name = cli(tmp_path, "run", "logic", "& a | b ! c", "--format", "json", "--max-new-tokens", "12")
    by_path = cli(tmp_path, "run", str(shipped_model_path()), "& a | b ! c", "--format", "json",
                  "--max-new-tokens", "12")
    assert by_name.returncode == 0 and by_path.returncode == 0, by_name.stderr + by_path.stderr
    assert json.loads(by_name.stdout)["examples"] == json.loads(by_path.stdout)["examples"]
    assert json.loads(by_name.stdout)["model"] == "logic"
    scored = cli(tmp_path, "score", "logic", "& a b", "a 1 b 1 c 0 d 0 e 0", "--layers", "-1", "--format", "json")
    assert scored.returncode == 0, scored.stderr


def test_a_local_folder_of_the_same_name_comes_first(tmp_path: Path) -> None:
    (tmp_path / "logic").mkdir()
    proc = cli(tmp_path, "run", "logic", "& a b")
    assert proc.returncode == 2 and "logic" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


BAD_MODELS_ARGS = [
    ["--format", "xml"], ["--format", ""], ["--format", "JSON "], ["--format"], ["logic"], ["logic", "t5"],
    ["--name", "logic"], ["-n", "2"], ["--out", "x"], ["--output", "x.json"], ["--layers", "all"], ["--fresh"],
    ["--force"], ["--format", "table", "extra"], ["--format=yaml"], ["--format", "csv", "--format", "pdf"],
    ["--verbose"], ["--help-me"], ["-x"], ["--format", "1"],
]


@pytest.mark.parametrize("args", BAD_MODELS_ARGS)
def test_models_refuses_what_it_does_not_take(args: list[str]) -> None:
    from typer.testing import CliRunner

    from decoderlens.cli.app import app

    result = CliRunner().invoke(app, ["models", *args])
    assert result.exit_code == 2, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
