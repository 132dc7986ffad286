"""Per-layer attribution: every family reads each layer's own readout, batching changes nothing, the scores equal a
hand-written gradient through the model's own forward, integrated gradients are complete, occlusion is the drop
it names, and faithfulness checks run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from decoderlens import AttributionOutput, InputError, LayerSelectionError
from decoderlens.attribution.faithfulness import example_faithfulness, rank_correlation, summary_rows
from decoderlens.attribution.run import build_rows
from decoderlens.batching import encode
from decoderlens.forcing import decoder_inputs
from decoderlens.logic.demo import held_out_examples
from decoderlens.settings import AttributionSettings, GenerationSettings, RuntimeSettings, TraceSettings
from decoderlens.testing import TINY_FAMILIES, sample_waveforms
from support.models import FAMILIES, generation_options, lens_for, sample_inputs

MAX_NEW = 5


def _close(a: list[float], b: list[float]) -> None:
    """Equal up to float32 rounding, which a backward pass through random tiny models amplifies: within 0.2% of
    the row's largest magnitude (a wrong position, token or layer is off by its whole size)."""
    scale = max([1e-6, *map(abs, a), *map(abs, b)])
    assert np.allclose(a, b, rtol=0, atol=2e-3 * scale), (a, b)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_layer_attributes_its_own_readout(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=2, seed=3)
    options = {**generation_options(family), "max_new_tokens": MAX_NEW}
    out = lens.attribute(items, **options)
    readouts = lens.generate(items, **options)
    for example, read in zip(out, readouts, strict=True):
        assert [la.layer for la in example.layers] == list(range(lens.num_layers + 1))
        for la in example.layers:
            assert [t.token_id for t in la.tokens] == read.layer(la.layer).token_ids
            assert la.text == read.layer(la.layer).text
            assert all(len(t.attribution) == len(example.source) for t in la.tokens)
            assert all(math.isfinite(v) for t in la.tokens for v in t.attribution)
    assert any(v != 0 for ex in out for la in ex.layers for t in la.tokens for v in t.attribution)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_layers_equal_one_input_and_one_layer_at_a_time(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=3, seed=5)
    options = {**generation_options(family), "max_new_tokens": MAX_NEW}
    together = lens.attribute(items, **options)
    for index in (0, 2):  # padding and batch neighbours change nothing
        for layer in (0, lens.num_layers):
            alone = lens.attribute([items[index]], layers=[layer], **options)[0]
            assert alone.source == together[index].source
            for a, b in zip(alone.layer(layer).tokens, together[index].layer(layer).tokens, strict=True):
                assert a.token_id == b.token_id
                _close(a.attribution, b.attribution)


def _hand_gradient(lens: Any, item: Any, family: str) -> tuple[list[int], np.ndarray]:
    """The top layer's gradient x input written out: the model's own forward on its encoder output, one backward
    pass per readout token."""
    options = {**generation_options(family), "max_new_tokens": MAX_NEW}
    readout = lens.generate([item], layers=-1, **options)[0].readouts[0]
    plan = lens.plan(GenerationSettings(max_new_tokens=MAX_NEW, **generation_options(family)))
    labels = torch.tensor([plan.prompt[1:] + readout.token_ids + sorted(plan.eos_token_ids)[:1]])
    batch = lens.parts.prepared([item])
    with torch.no_grad():
        states = lens.model.get_encoder()(**lens.adapter.encoder_inputs(batch)).last_hidden_state
    states = states.detach().requires_grad_(True)
    mask = lens.adapter.decoder_mask(batch)
    extra = {} if mask is None else {"attention_mask": mask}
    logits = lens.model(encoder_outputs=(states,), decoder_input_ids=decoder_inputs(lens.model, labels), **extra).logits
    logprobs = torch.log_softmax(logits.float(), -1)[0]
    rows = []
    for k, token in enumerate(readout.token_ids):
        (grad,) = torch.autograd.grad(logprobs[len(plan.prompt) - 1 + k, token], states, retain_graph=True)
        rows.append((grad * states).sum(-1)[0].detach().numpy())
    return readout.token_ids, np.array(rows)


@pytest.mark.parametrize("family", ["bart", "t5", "whisper", "vision-encoder-decoder"])
def test_top_layer_gradient_equals_a_hand_written_backward_pass(family: str) -> None:
    lens = lens_for(family)
    item = sample_inputs(family, count=1, seed=7)[0]
    tokens, expected = _hand_gradient(lens, item, family)
    got = lens.attribute([item], layers=-1, max_new_tokens=MAX_NEW, **generation_options(family))[0].layers[0]
    assert [t.token_id for t in got.tokens] == tokens
    for row, token in zip(expected, got.tokens, strict=True):
        _close(token.attribution, row[: len(token.attribution)].tolist())


def test_integrated_gradients_are_complete_and_converge(logic_lens: Any) -> None:
    formula = held_out_examples(3)[2].formula
    gaps = {}
    for steps in (2, 64):
        out = logic_lens.attribute(formula, layers=[1, 3], method="ig", steps=steps, baseline="mean")
        tokens = [t for la in out[0].layers for t in la.tokens]
        assert all(t.completeness_gap is not None for t in tokens)
        gaps[steps] = max(abs(t.completeness_gap) for t in tokens)  # type: ignore[arg-type]
    assert gaps[64] < 0.05, gaps
    assert gaps[64] < gaps[2], "more steps must close the completeness gap"


def test_occlusion_is_the_drop_when_a_window_is_replaced(logic_lens: Any) -> None:
    formula = held_out_examples(2)[1].formula
    out = logic_lens.attribute(formula, layers=[2], method="occlusion", occlusion_window=2)[0]
    scored = out.layers[0]
    parts = logic_lens.parts
    generation, runtime = GenerationSettings(layers=[2]), RuntimeSettings()
    rows, _ = build_rows(parts, encode(parts, [formula]), [None], [2], parts.plan(generation, runtime), generation,
                         runtime, logic_lens.lens)
    from decoderlens.attribution.gradients import logprobs_at

    clean = logprobs_at(parts.model, rows, rows.states, 8)
    occluded = rows.states.clone()
    occluded[:, 2:4] = 0
    dropped = clean - logprobs_at(parts.model, rows, occluded, 8)
    wanted = rows.wanted[0].nonzero().flatten().tolist()
    for token, position in zip(scored.tokens, wanted, strict=True):
        assert token.attribution[2] == pytest.approx(float(dropped[0, position]), rel=1e-4, abs=1e-6)
        assert token.attribution[2] == token.attribution[3], "a window's positions share its drop"


def test_target_mode_scores_the_same_tokens_at_every_layer(logic_lens: Any) -> None:
    example = held_out_examples(1)[0]
    out = logic_lens.attribute(example.formula, target=example.target)
    assert out.target == "target"
    token_lists = {tuple(t.token for t in la.tokens) for la in out[0].layers}
    assert len(token_lists) == 1 and "".join(next(iter(token_lists))).replace(" ", "") == \
        example.target.replace(" ", "")
    score = logic_lens.score(example.formula, example.target)[0]
    for la in out[0].layers:
        expected = [t.logprob for t in score.layer(la.layer).tokens][: len(la.tokens)]
        assert [t.logprob for t in la.tokens] == pytest.approx(expected, abs=1e-5)


def test_tuned_lens_is_attributed_through_its_translators(tmp_path: Path) -> None:
    from decoderlens.lenses import TunedLens
    from decoderlens.translators import Translators

    lens = lens_for("bart")
    width = lens.adapter.encoder_width
    translators = Translators(lens.num_layers, width)
    with torch.no_grad():
        translators.weight[0] += torch.eye(width)  # layer 0 read as twice its states
    tuned = TunedLens(translators)
    raw = lens.attribute("w3 w4 w5", layers=[0, lens.num_layers], max_new_tokens=MAX_NEW)[0]
    through = lens.attribute("w3 w4 w5", layers=[0, lens.num_layers], max_new_tokens=MAX_NEW, lens=tuned)[0]
    assert through.layer(lens.num_layers) == raw.layer(lens.num_layers), "the top layer is never translated"
    assert through.layer(0) != raw.layer(0)


def test_speech_positions_are_frames_with_seconds() -> None:
    lens = lens_for("whisper")
    out = lens.attribute(sample_waveforms(1, 2), layers=[0, 1], max_new_tokens=3)
    source = out[0].source
    assert source[0].start == 0 and all(p.end is not None and p.end > p.start for p in source)  # type: ignore
    data = out.to_dict()["examples"][0]["source"]
    assert set(data[0]) == {"position", "label", "start", "end"}
    text = lens_for("bart").attribute("w3 w4", layers=[0], max_new_tokens=2).to_dict()["examples"][0]["source"]
    assert set(text[0]) == {"position", "label"}, "text positions carry no seconds"


def test_vision_positions_are_patches() -> None:
    out = lens_for("vision-encoder-decoder").attribute(sample_inputs("vision-encoder-decoder", 1), layers=[1],
                                                       max_new_tokens=2)
    labels = [p.label for p in out[0].source]
    assert labels[0] == "[CLS]" and labels[1] == "patch r0c0" and len(labels) == 17


def test_result_round_trips_and_tabulates(tmp_path: Path, logic_lens: Any) -> None:
    out = logic_lens.attribute(["& a b", "! c"], layers=[0, 6], method="ig", steps=4)
    path = tmp_path / "a.json"
    out.save(path)
    assert AttributionOutput.load(path) == out
    frame = out.to_pandas()
    assert set(frame.columns) >= {"example", "layer", "token", "position", "label", "attribution"}
    assert len(frame) == sum(len(la.tokens) * len(ex.source) for ex in out for la in ex.layers)
    assert "integrated gradients" in str(out) and "&amp; a b" in out._repr_html_()  # type: ignore[operator]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layers": [99]}, "layer 99 does not exist"),
    ({"method": "shap"}, "method (--method) must be one of grad, ig, occlusion"),
    ({"method": "ig", "steps": 0}, "steps (--steps) must be a whole number of at least 1"),
    ({"baseline": "noise"}, "baseline (--baseline) must be one of zero, mean"),
    ({"occlusion_window": 0}, "occlusion_window (--occlusion-window) must be"),
    ({"target": "a 1 " * 60}, "reads at most"),
    ({"target": " "}, "is empty"),
    ({"colour": 1}, "unknown setting"),
])
def test_bad_calls_say_what_to_do(logic_lens: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((InputError, LayerSelectionError), match=None) as caught:
        logic_lens.attribute("& a b", **kwargs)
    assert message in str(caught.value)


def test_faithfulness_checks_run_and_summarise(logic_lens: Any) -> None:
    assert rank_correlation(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx(1.0)
    assert rank_correlation(np.array([1.0, 2, 2, 4]), np.array([4.0, 3, 3, 1])) == pytest.approx(-1.0)
    assert math.isnan(rank_correlation(np.array([1.0, 1, 1]), np.array([1.0, 2, 3])))
    parts = logic_lens.parts
    generation, runtime = GenerationSettings(), RuntimeSettings()
    layers = [0, 6]
    records = []
    for example in held_out_examples(3):
        rows, _ = build_rows(parts, encode(parts, [example.formula]), [None], layers,
                             parts.plan(generation, runtime), generation, runtime, logic_lens.lens)
        records += example_faithfulness(parts, example.formula, rows, layers,
                                        {"grad": AttributionSettings(), "occlusion": AttributionSettings("occlusion")},
                                        generation, runtime, TraceSettings(samples=2), 64, max_k=3, draws=2)
    assert len(records) == 3 * 2 * 2
    summary = summary_rows(records, resamples=50)
    assert {(r["method"], r["layer"]) for r in summary} == {(m, la) for m in ("grad", "occlusion") for la in layers}
    for row in summary:
        assert row["deletion_wins"].low <= row["deletion_wins"].value <= row["deletion_wins"].high
        assert 0 <= row["deletion_wins"].value <= 1
    with pytest.raises(InputError, match="text model"):
        lens = lens_for("whisper")
        wav = sample_waveforms(1, 0)[0]
        rows, _ = build_rows(lens.parts, encode(lens.parts, [wav]), [None], [0], lens.plan(), GenerationSettings(),
                             runtime, lens.lens)
        example_faithfulness(lens.parts, wav, rows, [0], {"grad": AttributionSettings()}, GenerationSettings(),
                             runtime, TraceSettings(samples=1), 8)


def test_families_are_all_covered() -> None:
    assert {TINY_FAMILIES[f].modality for f in FAMILIES} == {"text", "speech", "vision"}
