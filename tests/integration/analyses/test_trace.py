"""Causal tracing in the encoder: the mechanism that lets the encoder continue from restored states, checked for
every text and speech family."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from decoderlens import InputError
from decoderlens.results import TraceOutput
from decoderlens.testing import TINY_FAMILIES
from support.models import FAMILIES, generation_options, lens_for, sample_inputs

TRACE_FAMILIES = [f for f in FAMILIES if TINY_FAMILIES[f].modality != "vision"]
ANSWER = "w1 w2 w3"


def _lang(family: str) -> dict[str, str]:
    return {"tgt_lang": generation_options(family)["tgt_lang"]} if generation_options(family) else {}


@pytest.mark.parametrize("family", TRACE_FAMILIES)
def test_restoring_everything_gives_the_clean_run_and_nothing_the_corrupted_one(family: str) -> None:
    lens = lens_for(family)
    item = sample_inputs(family, count=1, seed=4)[0]
    out = lens.trace(item, ANSWER, samples=3, restore_all=True, **_lang(family))
    assert len(out.restored) == lens.num_layers + 1
    for row in out.restored:
        assert len(row) == 1, "restore_all gives one value per layer"
        assert row[0] == pytest.approx(out.clean_prob, rel=1e-4, abs=1e-9), "restoring every position is the clean run"
    assert not math.isclose(out.corrupt_prob, out.clean_prob, rel_tol=1e-3), "the corruption changed nothing"
    if TINY_FAMILIES[family].modality == "text":  # the corrupted run against an independent forward pass
        other = " ".join(["w9"] * len(item.split()))
        swapped = lens.trace(item, ANSWER, corrupt=other, restore_all=True, **_lang(family))
        score = lens.score([other], [ANSWER], layers=-1, **_lang(family))[0].layer(lens.num_layers).logprob
        assert swapped.corrupt_prob == pytest.approx(math.exp(score), rel=1e-4)
        assert swapped.samples == 1


@pytest.mark.parametrize("family", ["bart", "m2m_100", "marian"])
def test_a_restored_state_equals_a_hand_written_run_of_the_blocks(family: str) -> None:
    lens = lens_for(family)
    item = "w3 w4 w5 w6"
    other = "w9 w8 w7 w6"
    out = lens.trace(item, ANSWER, corrupt=other, **_lang(family))
    adapter = lens.adapter
    clean = lens.encode([item])
    corrupted = lens.encode([other])
    from decoderlens.forcing import decoder_inputs, target_labels

    labels = target_labels(lens.tokenizer, lens.model, [ANSWER], _lang(family).get("tgt_lang"))
    for layer in (0, 1, adapter.num_layers - 1):
        for position in (0, 2):
            hidden = corrupted.hidden_states[layer].clone()
            hidden[:, position] = clean.hidden_states[layer][:, position]
            with torch.no_grad():
                for block in list(adapter.blocks)[layer:]:
                    result = block(hidden, attention_mask=None)
                    hidden = result[0] if isinstance(result, tuple) else result
                if adapter.final_norm is not None:
                    hidden = adapter.final_norm(hidden)
                logits = lens.model(encoder_outputs=clean.as_encoder_outputs(hidden),
                                    decoder_input_ids=decoder_inputs(lens.model, labels)).logits
            logprob = torch.log_softmax(logits, -1).gather(-1, labels[..., None]).sum()
            assert out.restored[layer][position] == pytest.approx(float(torch.exp(logprob)), rel=1e-4)


def test_windows_positions_and_bad_spans() -> None:
    lens = lens_for("t5")
    out = lens.trace("w1 w2 w3 w4", ANSWER, corrupt=(1, 3), samples=4, window=2)
    assert np.array(out.restored).shape == (lens.num_layers + 1, 5)  # 4 words and </s>
    assert out.tokens == ["w1", "w2", "w3", "w4", "</s>"] and out.samples == 4 and out.window == 2
    again = lens.trace("w1 w2 w3 w4", ANSWER, corrupt=(1, 3), samples=4, window=2)
    assert again.restored == out.restored  # seeded
    with pytest.raises(InputError, match="outside the input's 5 tokens"):
        lens.trace("w1 w2 w3 w4", ANSWER, corrupt=(3, 9))
    with pytest.raises(InputError, match="same length"):
        lens.trace("w1 w2 w3 w4", ANSWER, corrupt="w1")
    with pytest.raises(InputError, match="images are not supported"):
        lens_for("vision-encoder-decoder").trace(sample_inputs("vision-encoder-decoder", count=1)[0], ANSWER)


def test_speech_spans_are_seconds_and_positions_are_frames() -> None:
    lens = lens_for("whisper")
    wave = sample_inputs("whisper", count=1, seed=1)[0]
    out = lens.trace(wave, ANSWER, corrupt=(0.0, 0.3), samples=2)
    frames = lens.encode([wave]).final_output.shape[1]
    assert np.array(out.restored).shape == (lens.num_layers + 1, frames)
    assert out.tokens[0] == "0.00s" and out.tokens[1].endswith("s")
    assert "seconds 0-0.3" in out.corruption


def test_trace_roundtrip_and_default_answer(tmp_path: Path) -> None:
    lens = lens_for("t5")
    out = lens.trace("w1 w2 w3", samples=2)
    top = lens.generate(["w1 w2 w3"], layers=-1, top_length_cap=None)[0].readouts[0]
    assert out.answer == top.text
    out.save(tmp_path / "t.json")
    assert TraceOutput.load(tmp_path / "t.json") == out
    with pytest.raises(InputError, match=r"TraceOutput.load.*give a file written by .save\(\)"):
        TraceOutput.load(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"examples": []}')
    with pytest.raises(InputError, match="does not hold a TraceOutput"):
        TraceOutput.load(tmp_path / "other.json")


def test_trace_command(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from decoderlens.cli.app import app
    from decoderlens.logic import shipped_model_path

    runner = CliRunner()
    result = runner.invoke(app, ["trace", str(shipped_model_path()), "& a | b ! c", "--corrupt", "0:3", "--samples",
                                 "2", "--format", "json", "--html", str(tmp_path / "t.html"), "--plot",
                                 str(tmp_path / "t.png")])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"model", "input", "answer", "tokens", "clean_prob", "corrupt_prob", "restored"}
    assert len(data["restored"]) == 7 and len(data["restored"][0]) == len(data["tokens"]) == 7
    assert (tmp_path / "t.png").stat().st_size > 3000 and "Restored probability" in (tmp_path / "t.html").read_text()
    every = runner.invoke(app, ["trace", str(shipped_model_path()), "& a b", "--restore-all", "--corrupt-with", "| c d",
                                "--format", "json"])
    assert every.exit_code == 0, every.stderr
    restored = json.loads(every.stdout)["restored"]
    assert len(restored) == 7 and all(len(row) == 1 and isinstance(row[0], float) for row in restored)
    bad = runner.invoke(app, ["trace", str(shipped_model_path()), "& a b", "--corrupt", "x"])
    assert bad.exit_code == 2 and "START:END" in bad.stderr
