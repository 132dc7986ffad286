"""Memory budgets, row splitting and multi-device loading: they change how work is cut, never results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from decoderlens import DecoderLens, batching, decoding, readout
from decoderlens.budget import RowCost, parse_size
from decoderlens.errors import DecoderLensError, InputError
from decoderlens.testing import tiny_model, tiny_processor
from support.models import lens_for, sample_inputs


def test_parse_size_reads_units_and_refuses_nonsense() -> None:
    assert parse_size("8GiB") == 8 * 2**30
    assert parse_size("500 MB") == 500 * 10**6
    assert parse_size("1.5kib") == 1536
    assert parse_size(1234) == 1234
    for bad in ("lots", "8 parsecs", "-1GB", "0"):
        with pytest.raises(InputError, match="memory"):
            parse_size(bad)


def _decoding_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(rows, source length) of every decoding call from now on."""
    seen: list[tuple[int, int]] = []
    original = readout.decode_rows

    def counting(model: Any, plan: Any, stack: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((len(stack), stack.states.shape[1]))
        return original(model, plan, stack, *args, **kwargs)

    monkeypatch.setattr(readout, "decode_rows", counting)
    return seen


@pytest.mark.parametrize("family", ["t5", "bart", "whisper"])
def test_memory_budget_splits_rows_without_changing_readouts(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=5)
    free = lens.generate(items, max_new_tokens=8, batch_size=5)
    encoded = lens.encode(items[:1])
    _, length, width = encoded.final_output.shape
    plan_prompt = len(decoding.plan_decoding(lens.model, lens.adapter.spec, lens.processor).prompt)
    one_row = RowCost(lens.model).decoding(length, width, 8, plan_prompt)
    calls = _decoding_calls(monkeypatch)
    tight = lens.generate(items, max_new_tokens=8, batch_size=5, max_memory=3 * one_row + 1)
    assert tight.to_json() == free.to_json()
    assert calls and max(rows for rows, _ in calls) <= 3, f"calls of {calls} rows against a budget of 3"


def test_memory_budget_applies_to_scoring() -> None:
    lens = lens_for("bart")
    items = sample_inputs("bart", count=4)
    targets = ["a b c", "d", "e f", "g h i j"]
    free = lens.score(items, targets, batch_size=4)
    tight = lens.score(items, targets, batch_size=4, max_memory="400KiB")
    for a, b in zip(tight, free, strict=True):  # smaller matmuls round differently in the last digits
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert [t.token_id for t in la.tokens] == [t.token_id for t in lb.tokens]
            assert [t.logprob for t in la.tokens] == pytest.approx([t.logprob for t in lb.tokens], rel=1e-4, abs=1e-4)
            assert [t.top_k[0][0] for t in la.tokens] == [t.top_k[0][0] for t in lb.tokens]


def test_a_budget_below_one_row_is_refused_clearly() -> None:
    lens = lens_for("t5")
    with pytest.raises(InputError, match="raise max_memory"):
        lens.generate(sample_inputs("t5", count=2), max_memory=100)


@pytest.mark.parametrize("device_map", ["auto", "cpu"])
def test_device_map_loading_reads_out_the_same(tmp_path: Path, device_map: str) -> None:
    tiny_model("t5").save_pretrained(tmp_path)
    tiny_processor("t5").save_pretrained(tmp_path)
    items = sample_inputs("t5", count=3)
    plain = DecoderLens.from_pretrained(str(tmp_path), device="cpu").generate(items, max_new_tokens=6)
    mapped = DecoderLens.from_pretrained(str(tmp_path), device_map=device_map)
    assert mapped.generate(items, max_new_tokens=6).to_json() == plain.to_json()


def test_without_a_budget_calls_fit_the_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    lens = lens_for("t5")
    items = sample_inputs("t5", count=5)
    free = lens.generate(items, max_new_tokens=8)
    encoded = lens.encode(items[:1])
    _, length, width = encoded.final_output.shape
    one_row = RowCost(lens.model).decoding(length, width, 8, 1)
    budget = 3 * one_row + 1
    monkeypatch.setattr(batching, "available_bytes", lambda device: budget)
    calls = _decoding_calls(monkeypatch)
    assert lens.generate(items, max_new_tokens=8).to_json() == free.to_json()
    cost = RowCost(lens.model)
    assert calls and all(rows * cost.decoding(source, width, 8, 1) <= budget for rows, source in calls), calls
    assert len(calls) > 2
    monkeypatch.setattr(batching, "available_bytes", lambda device: 1)  # never refused: one row at a time
    assert lens.generate(items, max_new_tokens=8).to_json() == free.to_json()


def _encoder_calls(lens: DecoderLens, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    original = lens.adapter.encode

    def counting(batch: Any) -> Any:
        seen.append(next(iter(batch.values())).shape[0])
        return original(batch)

    monkeypatch.setattr(lens.adapter, "encode", counting)
    return seen


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_the_encoder_runs_in_pieces_under_a_budget_with_the_same_states(family: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    lens = lens_for(family)
    items = sample_inputs(family, count=5, seed=2)
    whole = lens.encode(items)
    per_input = batching.input_bytes(lens.encode(items[:1]))
    seen = _encoder_calls(lens, monkeypatch)
    pieces = lens.encode(items, max_memory=2 * per_input)
    assert len(seen) > 2 and max(seen) <= 2, f"the encoder ran on {seen} inputs at a time"
    for a, b in zip(whole.hidden_states, pieces.hidden_states, strict=True):
        # float32 states of different batch shapes differ by rounding that grows with their magnitude and depth
        # (other matrix-multiply blockings), whatever the thread count: bound it relative to the states' scale
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max()))


@pytest.mark.parametrize("family", ["t5", "whisper"])
def test_auto_batches_are_cut_to_fit_the_budget_with_the_same_readouts(family: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An auto-sized batch whose kept encoder states would not fit the budget's encoder share is cut into
    batches that do (measured on its longest input), and readouts do not change."""
    from decoderlens.budget import ENCODER_SHARE
    from decoderlens.scheduling import input_length

    lens = lens_for(family)
    items = sample_inputs(family, count=6, seed=3)
    alone = lens.generate(items, max_new_tokens=5, batch_size=1)
    per_input = batching.input_bytes(lens.encode([max(items, key=input_length)]))
    batches: list[int] = []
    original = readout.readout_batch

    def counting(parts: Any, encoded: Any, *args: Any, **kwargs: Any) -> Any:
        batches.append(encoded.batch_size)
        return original(parts, encoded, *args, **kwargs)

    monkeypatch.setattr(readout, "readout_batch", counting)
    cut = lens.generate(items, max_new_tokens=5, max_memory=int(2 * per_input / ENCODER_SHARE) + 1)
    assert batches == [2, 2, 2], f"batches of {batches} inputs"
    assert [[r.token_ids for r in ex.readouts] for ex in cut] == [[r.token_ids for r in ex.readouts] for ex in alone]
    batches.clear()
    lens.generate(items, max_new_tokens=5)  # the automatic budget: far above what six tiny inputs need
    assert batches == [len(items)], f"batches of {batches} inputs"


@pytest.mark.parametrize("family", ["t5", "bart", "whisper"])
def test_read_all_encodes_once_and_equals_separate_calls(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from decoderlens.settings import GenerationSettings, RuntimeSettings

    lens = lens_for(family)
    items = sample_inputs(family, count=4, seed=6)
    targets = ["w1 w2", "w3", "w4 w5 w6", "w7"]
    readouts = lens.generate(items, max_new_tokens=6, batch_size=4)
    scores = lens.score(items, targets, batch_size=4)
    seen = _encoder_calls(lens, monkeypatch)
    both = lens.read_all(items, targets, generation=GenerationSettings(max_new_tokens=6),
                         runtime=RuntimeSettings(batch_size=4))
    assert sum(seen) == len(items), f"read_all encoded {seen} inputs for {len(items)}"
    assert both.readouts.to_json() == readouts.to_json()
    assert both.scores is not None
    for a, b in zip(both.scores, scores, strict=True):
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert [t.token_id for t in la.tokens] == [t.token_id for t in lb.tokens]
            assert [t.logprob for t in la.tokens] == pytest.approx([t.logprob for t in lb.tokens], rel=1e-5, abs=1e-5)


def test_row_costs_read_each_models_own_decoder(family: str) -> None:
    # transformers v5's get_text_config(decoder=True) builds default configs for some families; the budget must
    # count the decoder the model has (its layers and vocabulary), not a default one
    from decoderlens.decoder_head import DecoderHead

    model = lens_for(family).model
    cost = RowCost(model)
    try:
        blocks = DecoderHead(model).num_layers
    except DecoderLensError:  # a decoder the 2-D lens does not map: its config is the only account of it
        blocks = cost.layers
    assert cost.layers == blocks, family
    assert cost.vocab == model.get_output_embeddings().weight.shape[0], family
