"""Layer selection parsing and result serialisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from decoderlens import LensOutput, ScoreOutput, select_layers
from support.models import lens_for


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("all", [0, 1, 2, 3, 4, 5, 6]), (None, [0, 1, 2, 3, 4, 5, 6]), ("0,3,-1", [0, 3, 6]), ("2:6", [2, 3, 4, 5]),
     ("-2:", [5, 6]), (":2,6", [0, 1, 6]), (4, [4]), ([6, 0, 6], [0, 6])],
)
def test_select_layers(spec: object, expected: list[int]) -> None:
    assert select_layers(spec, 6) == expected  # type: ignore[arg-type]


def test_lens_output_roundtrip_and_pandas(tmp_path: Path) -> None:
    out = lens_for("t5").generate(["w1 w2 w3", "w4"], "0,-1", max_new_tokens=4)
    assert len(out) == 2 and out.layers == [0, 3]
    path = tmp_path / "run.json"
    out.save(path)
    again = LensOutput.load(path)
    assert again == out
    frame = out.to_pandas()
    assert list(frame.columns[:4]) == ["example", "input", "layer", "text"] and len(frame) == 4
    data = out.to_dict()
    assert set(data) >= {"model", "num_encoder_layers", "examples"}
    assert set(data["examples"][0]["readouts"][0]) >= {"layer", "text", "token_ids"}
    assert out[0].layer(3).token_ids == data["examples"][0]["readouts"][1]["token_ids"]


def test_score_output_roundtrip(tmp_path: Path) -> None:
    scores = lens_for("bart").score(["w1 w2"], ["w3 w4"], layers="all", top_k=2)
    path = tmp_path / "scores.json"
    scores.save(path)
    assert ScoreOutput.load(path) == scores
    frame = scores.to_pandas()
    assert {"layer", "position", "logprob", "rank", "entropy"} <= set(frame.columns)
    assert len(frame) == 4 * len(scores[0].layers[0].tokens)
