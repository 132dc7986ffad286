"""The method's invariants, for every supported family, on tiny random models whose layers differ."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from decoderlens import DecoderLens, readout
from decoderlens.decoding import Strategy, plan_decoding
from decoderlens.forcing import target_labels
from decoderlens.greedy_loop import plain_greedy
from decoderlens.testing import truncated_encoder
from support.models import generation_options, lens_for, sample_inputs

MAX_NEW = 8


def _cut(sequence: list[int], prompt: list[int], eos: set[int]) -> list[int]:
    """Drop the decoder prompt (if the model returned it) and everything from the first EOS on."""
    if sequence[: len(prompt)] == prompt:
        sequence = sequence[len(prompt):]
    for i, token in enumerate(sequence):
        if token in eos:
            return sequence[:i]
    return sequence


def ordinary_generate(lens: DecoderLens, items: list[Any], family: str, num_beams: int = 1,
                      max_new_tokens_override: int | None = None, **kwargs: Any) -> list[list[int]]:
    """Plain ``model.generate`` on the raw inputs, the way a user would call it.

    Encoders whose front end is padding-sensitive get each input on its own, as DecoderLens reads them.
    """
    if lens.adapter.spec.padding_sensitive and len(items) > 1:
        return [ordinary_generate(lens, [item], family, num_beams, max_new_tokens_override, **kwargs)[0]
                for item in items]
    max_new = max_new_tokens_override or MAX_NEW
    plan = plan_decoding(lens.model, lens.adapter.spec, lens.processor, max_new_tokens=max_new,
                         **generation_options(family))
    batch = lens.parts.prepare(items)
    extra = {"forced_bos_token_id": plan.options["forced_bos_token_id"]} if "forced_bos_token_id" in plan.options \
        else {}
    with torch.no_grad():
        out = lens.model.generate(**batch, max_new_tokens=max_new, do_sample=False, num_beams=num_beams, **extra,
                                  **kwargs)
    sequences = [_cut(seq, plan.prompt, plan.eos_token_ids) for seq in out.tolist()]
    if lens.adapter.spec.speech_prompt:  # Whisper's own generate drops EOS and pads finished rows
        pad = lens.model.config.pad_token_id
        sequences = [_rstrip(seq, pad) for seq in sequences]
    return sequences


def _rstrip(sequence: list[int], value: int) -> list[int]:
    end = len(sequence)
    while end and sequence[end - 1] == value:
        end -= 1
    return sequence[:end]


def readout_ids(lens: DecoderLens, items: list[Any], family: str, layers: Any = "all", **kw: Any) -> list[
        dict[int, list[int]]]:
    kw.setdefault("max_new_tokens", MAX_NEW)
    out = lens.generate(items, layers, **generation_options(family), **kw)
    return [{r.layer: r.token_ids for r in ex.readouts} for ex in out]


@pytest.mark.parametrize("num_beams", [1, 3])
def test_top_layer_reproduces_generate(family: str, num_beams: int) -> None:
    lens = lens_for(family)
    items = sample_inputs(family)
    expected = ordinary_generate(lens, items, family, num_beams=num_beams)
    got = readout_ids(lens, items, family, layers=-1, num_beams=num_beams)
    assert [g[lens.num_layers] for g in got] == expected


def test_layers_read_out_differently(family: str) -> None:
    lens = lens_for(family)
    readouts = readout_ids(lens, sample_inputs(family), family)
    for per_layer in readouts[:1]:
        assert len({tuple(ids) for ids in per_layer.values()}) > 1, "random model too flat to test anything"
    distinct = {tuple(ids) for per_layer in readouts for ids in per_layer.values()}
    assert len(distinct) >= lens.num_layers + 1


@pytest.mark.parametrize("num_beams", [1, 2])
def test_stacked_equals_per_layer_loop(family: str, num_beams: int) -> None:
    lens = lens_for(family)
    items = sample_inputs(family)
    stacked = readout_ids(lens, items, family, num_beams=num_beams)
    chunked = readout_ids(lens, items, family, num_beams=num_beams, max_rows=7)  # several generate calls
    for layer in range(lens.num_layers + 1):
        alone = readout_ids(lens, items, family, layers=[layer], num_beams=num_beams)
        assert [s[layer] for s in stacked] == [a[layer] for a in alone], f"layer {layer}"
    assert chunked == stacked


def test_readout_equals_truncated_encoder(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family)
    readouts = readout_ids(lens, items, family)
    for layer in range(lens.num_layers + 1):
        with truncated_encoder(lens.model, layer):
            assert lens.adapter.num_layers == layer
            cut = ordinary_generate(lens, items, family)
        assert [r[layer] for r in readouts] == cut, f"layer {layer}"


def test_batch_neighbours_and_padding_do_not_matter(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=6, seed=3)
    together = readout_ids(lens, items, family, batch_size=6)
    alone = [readout_ids(lens, [item], family)[0] for item in items]
    assert together == alone
    mixed = readout_ids(lens, items[::-1] + sample_inputs(family, count=2, seed=9), family, batch_size=3)
    assert mixed[: len(items)][::-1] == together


def test_top_layer_scores_equal_forward_pass(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=3)
    targets = ["w1 w2 w3", "w4", "w5 w6 w7 w8 w9"]
    scores = lens.score(items, targets, layers="all", top_k=3, **({"tgt_lang": generation_options(family)[
        "tgt_lang"]} if generation_options(family) else {}))
    labels = target_labels(lens.tokenizer, lens.model, targets, generation_options(family).get("tgt_lang"))
    start = lens.model.generation_config.decoder_start_token_id
    decoder_in = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1]], 1)
    decoder_in[decoder_in == -100] = lens.model.config.pad_token_id
    expected = []
    for b, item in enumerate(items):  # one at a time: an ordinary forward pass of each example
        with torch.no_grad():
            logits = lens.model(**lens.parts.prepare([item]), decoder_input_ids=decoder_in[b : b + 1]).logits
        expected.append(torch.log_softmax(logits.float(), -1)[0])
    for b, example in enumerate(scores):
        top = example.layer(lens.num_layers)
        positions = (labels[b] != -100).nonzero().flatten().tolist()
        assert [t.token_id for t in top.tokens] == labels[b, positions].tolist()
        want = expected[b][positions].gather(-1, labels[b, positions, None]).squeeze(-1)
        assert torch.allclose(torch.tensor([t.logprob for t in top.tokens]), want, atol=1e-3, rtol=1e-4)
        for token in top.tokens:
            assert token.rank >= 0 and token.entropy >= 0 and len(token.top_k) == 3
        assert len({round(ls.logprob, 4) for ls in example.layers}) > 1


def test_round_decoding_drops_finished_rows_without_changing_tokens(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family)
    one_call = readout_ids(lens, items, family, decoding="one-call", max_new_tokens=12)
    rounds = readout_ids(lens, items, family, first_round=2, max_new_tokens=12)
    assert rounds == one_call
    lengths = {len(ids) for per_layer in one_call for ids in per_layer.values()}
    if family == "whisper":  # rows must end at different steps for this test to mean anything
        assert min(lengths) < 12 and max(lengths) == 12


def test_round_decoding_keeps_forced_eos_for_the_last_round() -> None:
    lens = lens_for("bart")
    items = sample_inputs("bart")
    config = lens.model.generation_config
    config.forced_eos_token_id = 1
    try:
        one_call = readout_ids(lens, items, "bart", decoding="one-call", max_new_tokens=9)
        rounds = readout_ids(lens, items, "bart", first_round=2, max_new_tokens=9)
        expected = ordinary_generate(lens, items, "bart", max_new_tokens_override=9)
    finally:
        config.forced_eos_token_id = None
    assert rounds == one_call
    assert [r[lens.num_layers] for r in rounds] == expected


@pytest.mark.parametrize("family", ["t5", "whisper", "mbart"])
def test_top_length_cap_only_cuts_babbling_layers(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readout, "CAP_MARGIN", 2)  # let the cap bind within a short test decode
    lens = lens_for(family)
    items = sample_inputs(family, count=6, seed=5)
    top = lens.num_layers
    free = readout_ids(lens, items, family, max_new_tokens=24, top_length_cap=None)
    capped = readout_ids(lens, items, family, max_new_tokens=24, top_length_cap=1.0)
    alone = [readout_ids(lens, [item], family, max_new_tokens=24, top_length_cap=1.0)[0] for item in items]
    one_layer = readout_ids(lens, items, family, layers=[1], max_new_tokens=24, top_length_cap=1.0)
    cut_somewhere = False
    for uncut, cut, by_itself, layer_one in zip(free, capped, alone, one_layer, strict=True):
        limit = min(24, len(uncut[top]) + 2)
        assert cut[top] == uncut[top]
        assert by_itself == cut, "batch neighbours changed a capped readout"
        assert layer_one[1] == cut[1], "the layer selection changed a capped readout"
        for layer in uncut:
            assert cut[layer] == uncut[layer][:limit]
            cut_somewhere |= len(uncut[layer]) > limit
    assert cut_somewhere, "no layer babbled past the cap: the test would not test anything"


def test_top_length_cap_leaves_beam_search_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readout, "CAP_MARGIN", 0)
    lens = lens_for("t5")
    items = sample_inputs("t5", count=4, seed=5)
    free = readout_ids(lens, items, "t5", max_new_tokens=16, num_beams=2, top_length_cap=None)
    assert readout_ids(lens, items, "t5", max_new_tokens=16, num_beams=2, top_length_cap=0.5) == free


def test_own_loop_is_token_identical_where_it_applies(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family)
    plan = plan_decoding(lens.model, lens.adapter.spec, lens.processor, max_new_tokens=12,
                         **generation_options(family))
    if plan.strategy is not Strategy.own_loop:
        pytest.skip(f"{family}: its generation config or decoder needs generate")
    for cap in (None, 1.0):
        assert readout_ids(lens, items, family, decoding="auto", max_new_tokens=12, top_length_cap=cap) == \
            readout_ids(lens, items, family, decoding="generate", max_new_tokens=12, top_length_cap=cap)


def test_own_loop_applies_to_some_families() -> None:
    lens = lens_for("t5")
    plan = plan_decoding(lens.model, lens.adapter.spec, lens.processor)
    assert plan.strategy is Strategy.own_loop and plain_greedy(lens.model, plan.generate_options()), \
        "the own-loop identity test would skip every family"


@pytest.mark.parametrize("family", ["t5", "bart", "whisper", "mbart"])
@pytest.mark.parametrize("decoding", ["auto", "generate"])
def test_cap_limits_that_arrive_while_decoding_equal_a_decode_of_each_layer_cut_afterwards(
        family: str, decoding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One stack holds the top layer and every lower layer; a lower row gets its limit the step its example's
    top row ends. The reference: each layer decoded on its own without cap, then cut at the limit set by the top
    layer's own length. ``first_round=2`` makes limits arrive in the middle of rounds of ``generate``."""
    monkeypatch.setattr(readout, "CAP_MARGIN", 1)
    lens = lens_for(family)
    items = sample_inputs(family, count=6, seed=5)
    top = lens.num_layers
    capped = readout_ids(lens, items, family, max_new_tokens=20, top_length_cap=1.0, decoding=decoding, first_round=2)
    tops = [r[top] for r in readout_ids(lens, items, family, layers=-1, max_new_tokens=20, top_length_cap=None)]
    assert len({len(t) for t in tops}) > 1, "top rows must end at different steps for this test to mean anything"
    cut_somewhere = False
    for layer in range(top):
        alone = readout_ids(lens, items, family, layers=[layer], max_new_tokens=20, top_length_cap=None,
                            decoding=decoding)
        for example, (row, top_ids) in enumerate(zip(alone, tops, strict=True)):
            limit = min(20, len(top_ids) + 1)
            assert capped[example][layer] == row[layer][:limit], f"layer {layer}, example {example}"
            cut_somewhere |= len(row[layer]) > limit
    assert cut_somewhere, "no lower row was cut: the test would not test anything"
    assert [c[top] for c in capped] == tops


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_cap_holds_when_the_stack_is_split_into_calls(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readout, "CAP_MARGIN", 1)
    lens = lens_for(family)
    items = sample_inputs(family, count=6, seed=5)
    whole = readout_ids(lens, items, family, max_new_tokens=20, top_length_cap=1.0)
    assert readout_ids(lens, items, family, max_new_tokens=20, top_length_cap=1.0, max_rows=4) == whole
    assert readout_ids(lens, items, family, max_new_tokens=20, top_length_cap=1.0, layers="0:2") == \
        [{layer: r[layer] for layer in (0, 1)} for r in whole]


def test_automatic_batches_equal_one_input_at_a_time(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=7, seed=8)
    automatic = readout_ids(lens, items, family)  # default: as many inputs per batch as the rows allow
    assert automatic == [readout_ids(lens, [item], family, batch_size=1)[0] for item in items]
    assert readout_ids(lens, items, family, max_rows=len(items)) == automatic  # batches of about one input per layer


def test_rules_that_read_the_source_apply_to_every_layer() -> None:
    """``encoder_no_repeat_ngram_size`` needs the encoder's input ids, which ``generate`` does not see when it gets
    encoder states; the engine passes them, so the top layer still equals ordinary ``generate``."""
    lens = lens_for("bart")
    items = ["w7 w8 w7 w8 w7 w8 w7 w8", *sample_inputs("bart", count=4, seed=2)]
    config = lens.model.generation_config
    free = readout_ids(lens, items, "bart", max_new_tokens=8)
    config.encoder_no_repeat_ngram_size = 1
    try:
        ruled = readout_ids(lens, items, "bart", max_new_tokens=8)
        expected = ordinary_generate(lens, items, "bart")
        rounds = readout_ids(lens, items, "bart", max_new_tokens=8, first_round=2)
    finally:
        config.encoder_no_repeat_ngram_size = 0
    assert [r[lens.num_layers] for r in ruled] == expected
    assert rounds == ruled
    sources = [set(item.split()) for item in items]
    from decoderlens.testing import word_tokenizer

    vocab = word_tokenizer().get_vocab()
    for per_layer, words in zip(ruled, sources, strict=True):
        banned = {vocab[w] for w in words}
        assert all(not banned & set(ids) for ids in per_layer.values()), "a source token was repeated"
    assert ruled != free, "the rule changed nothing: the test would not test anything"
