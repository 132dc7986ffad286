"""Data-parallel evaluation (2 CPU processes over gloo, accelerate state) equals a single-process run exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from decoderlens.testing import sample_texts, tiny_model, tiny_processor


def _saved_model(tmp_path: Path, family: str) -> Path:
    """A tiny model of ``family`` saved with its processor, as a user's folder."""
    model_dir = tmp_path / "model"
    tiny_model(family).save_pretrained(model_dir)
    tiny_processor(family).save_pretrained(model_dir)
    return model_dir


def _offline_env() -> dict[str, str]:
    """The environment of a child process: offline, one thread, not inside another launch."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return env


@pytest.mark.slow
def test_two_process_eval_equals_single_process(tmp_path: Path) -> None:
    model_dir = _saved_model(tmp_path, "bart")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "input": t, "target": t.split()[0]}) + "\n"
                            for i, t in enumerate(sample_texts(11, seed=6))))
    args = ["-m", "decoderlens", "eval", str(model_dir), str(data), "--max-new-tokens", "5", "--device", "cpu",
            "--metric", "accuracy", "--metric", "chrf"]
    env = _offline_env()
    single = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "single")], capture_output=True,
                            text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29731",
              *args, "--out", str(tmp_path / "multi")]
    multi = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=600)
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert "process 0 of 2" in multi.stderr and "process 1 of 2" in multi.stderr
    for name in ("summary.json", "summary.csv", "run.json"):
        assert (tmp_path / "multi" / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name
    single_rows, multi_rows = ([json.loads(line) for line in (tmp_path / run / "readouts.jsonl").read_text()
                                .splitlines()] for run in ("single", "multi"))
    assert len(single_rows) == len(multi_rows)
    for one, other in zip(single_rows, multi_rows, strict=True):
        scores = ("logprobs", "entropies")  # float32 sums over other batch shapes: equal to rounding, not to the bit
        assert {k: v for k, v in one.items() if k not in scores} == {k: v for k, v in other.items() if k not in scores}
        for key in scores:
            assert one.get(key, []) == pytest.approx(other.get(key, []), abs=1e-3), key
    assert not list((tmp_path / "multi").glob("readouts.rank*"))  # shards were merged and removed


@pytest.mark.slow
def test_two_process_tuning_keeps_one_set_of_translators(tmp_path: Path) -> None:
    model_dir = _saved_model(tmp_path, "t5")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"input": t}) + "\n" for t in sample_texts(40, seed=8)))
    env = _offline_env()
    args = ["-m", "decoderlens", "tune", str(model_dir), str(data), "--steps", "4", "--step-batch", "8",
            "--validation", "8", "--max-new-tokens", "4"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29733",
              *args, "--out", str(tmp_path / "lens")]
    multi = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=600)
    assert multi.returncode == 0, multi.stderr[-3000:]
    config = json.loads((tmp_path / "lens" / "config.json").read_text())
    assert config["steps"] == 4 and len(config["val_kl_tuned"]) == 3
    assert not (tmp_path / "lens" / "checkpoint.pt").exists()
    single = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "single")], capture_output=True, text=True,
                            env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    # Each process averages its half of a step's batch and the halves' gradients are averaged: the same steps as
    # one process up to how tokens split between the halves, so the two learn nearly the same maps
    from safetensors.torch import load_file

    one = load_file(str(tmp_path / "single" / "translators.safetensors"))
    two = load_file(str(tmp_path / "lens" / "translators.safetensors"))
    import torch

    a = torch.cat([one[k].flatten() for k in sorted(one)])
    b = torch.cat([two[k].flatten() for k in sorted(two)])
    assert float(a.norm()) > 0, "one process learned nothing: the comparison would say nothing"
    assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) > 0.9
    assert float((a - b).norm() / a.norm()) < 0.5
