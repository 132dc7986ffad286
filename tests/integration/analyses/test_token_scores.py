"""How sure each layer is of its readout: per-token log-probabilities and entropies, checked against scoring the
readout itself, and how every result type shows itself in notebooks and prints."""

from __future__ import annotations

import pytest

from decoderlens import DecoderLens
from decoderlens.evaluation.folder import ReadoutRecord
from support.models import generation_options, lens_for, sample_inputs

FORMULAS = ["& a | b ! c", "xor a b", "! & c d"]


def test_token_scores_equal_scoring_the_readout_itself(logic_lens: DecoderLens) -> None:
    out = logic_lens.generate(FORMULAS, token_scores=True)
    plain = logic_lens.generate(FORMULAS)
    for example, same in zip(out, plain, strict=True):
        assert [r.token_ids for r in example.readouts] == [r.token_ids for r in same.readouts]  # tokens unchanged
        assert all(not r.logprobs and not r.entropies for r in same.readouts)  # off by default in Python
        for readout in example.readouts:
            assert len(readout.logprobs) == len(readout.entropies) == len(readout.token_ids)
            if not readout.text:
                continue
            scored = logic_lens.score([example.input], [readout.text], layers=[readout.layer])[0].layers[0].tokens
            assert [t.token_id for t in scored[: len(readout.token_ids)]] == readout.token_ids
            # greedy decoding takes each layer's most likely token: rank 0, and the same log-probability
            assert all(t.rank == 0 for t in scored[: len(readout.token_ids)])
            assert readout.logprobs == pytest.approx([t.logprob for t in scored[: len(readout.token_ids)]], abs=1e-3)
            assert readout.entropies == pytest.approx([t.entropy for t in scored[: len(readout.token_ids)]], abs=1e-3)


def test_token_scores_in_every_family_leave_the_tokens_alone(family: str) -> None:
    lens, items = lens_for(family), sample_inputs(family, 3)
    options = {**generation_options(family), "max_new_tokens": 4}
    scored = lens.generate(items, layers="all", token_scores=True, **options)
    plain = lens.generate(items, layers="all", **options)
    for example, same in zip(scored, plain, strict=True):
        assert [r.token_ids for r in example.readouts] == [r.token_ids for r in same.readouts]
        for readout in example.readouts:
            assert len(readout.logprobs) == len(readout.entropies) == len(readout.token_ids)
            assert all(lp <= 0 for lp in readout.logprobs) and all(h >= 0 for h in readout.entropies)
    top = scored[0].readouts[-1]
    if top.token_ids:
        assert ReadoutRecord.of("0", "x", top).readout().logprobs == top.logprobs  # stored with the record


def test_every_result_type_displays_in_notebooks_and_prints(logic_lens: DecoderLens) -> None:
    x, t = ["& a | b ! c"], ["a 1 b 1 c 0 d 0 e 0"]
    results = [logic_lens.generate(x), logic_lens.score(x, t, layers="0,-1"), logic_lens.grid(x, t, layers="0,-1"),
               logic_lens.trace(x[0], layers="0,-1"), logic_lens.read_all(x, t, layers="0,-1", grid=True)]
    for result in results:
        page = result._repr_html_()
        assert page is not None and "<table" in page, type(result).__name__
        text = str(result)
        assert f"{type(result).__name__}(" not in text and "layer" in text, type(result).__name__
        assert len(result.to_pandas()) > 0


def test_token_scores_under_beam_search(logic_lens: DecoderLens) -> None:
    out = logic_lens.generate(FORMULAS[:2], layers="0,-1", num_beams=2, token_scores=True)
    for example in out:
        for readout in example.readouts:  # teacher-forced on the chosen beam
            assert len(readout.logprobs) == len(readout.token_ids) and all(lp <= 0 for lp in readout.logprobs)
