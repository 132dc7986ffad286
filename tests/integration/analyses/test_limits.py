"""Every length that reaches a model is checked against the model's limits before any work, with one line that
says the limit; the longest that fits still works, for every family."""

from __future__ import annotations

import pytest

from decoderlens import GenerationSettings, InputError
from decoderlens.architectures import decoder_position_limit
from support.models import generation_options, lens_for, sample_inputs


def test_lengths_beyond_the_decoder_are_refused_and_the_longest_that_fits_works(family: str) -> None:
    lens = lens_for(family)
    limit = decoder_position_limit(lens.model.config)
    if limit is None:
        pytest.skip(f"{family}: relative positions, no limit to check")
    item = sample_inputs(family, count=1)[:1]
    options = generation_options(family)
    too_long = " ".join(["w1"] * (limit + 4))
    with pytest.raises(InputError, match=rf"is \d+ tokens long; this model's decoder reads at most {limit} positions"):
        lens.score(item, [too_long], **options)
    with pytest.raises(InputError, match=f"at most {limit} positions"):
        lens.read_all(item, [too_long], **options)
    prompt = len(lens.plan(GenerationSettings(**options)).prompt)
    with pytest.raises(InputError, match=f"use --max-new-tokens {limit - prompt + 1} or less"):
        lens.generate(item, -1, max_new_tokens=limit - prompt + 2, **options)
    fits = " ".join(["w1"] * (limit // 2))
    scored = lens.score(item, [fits], layers=-1, **options)
    assert scored[0].layers[0].tokens, "a target that fits was scored"
    longest = lens.generate(item, -1, max_new_tokens=limit - prompt + 1, top_length_cap=None, **options)
    assert len(longest[0].readouts[0].token_ids) <= limit - prompt + 1


def test_the_shipped_logic_model_refuses_its_81st_target_token() -> None:
    from decoderlens import DecoderLens
    from decoderlens.logic import shipped_model_path

    lens = DecoderLens.from_pretrained(str(shipped_model_path()), device="cpu")
    assert len(lens.score(["& a b"], [" ".join(["a 1"] * 39)])[0].layers[0].tokens) == 79
    with pytest.raises(InputError, match="target #0 is 81 tokens long; this model's decoder reads at most 80"):
        lens.score(["& a b"], [" ".join(["a 1"] * 40)])
    with pytest.raises(InputError, match="target #0 is 81 tokens long"):
        lens.grid(["& a b"], [" ".join(["a 1"] * 40)])


@pytest.mark.parametrize("family", ["whisper", "fsmt", "bart"])
def test_a_configured_max_length_brings_no_warning_or_change(family: str) -> None:
    """Checkpoints often set ``max_length`` in their generation config; the engine's length is ``max_new_tokens``
    alone, so transformers' "both have been set" warning must not reach the user, and tokens do not change."""
    import logging

    from transformers.utils import logging as hf_logging

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    lens = lens_for(family)
    items = sample_inputs(family, count=2)
    options = {**generation_options(family), **({"language": "en"} if family == "whisper" else {})}
    before = lens.generate(items, max_new_tokens=5, decoding="one-call", **options)
    config, seen, library = lens.model.generation_config, Collect(), logging.getLogger("transformers")
    saved, config.max_length = config.max_length, 448
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    library.addHandler(seen)
    try:
        after = lens.generate(items, max_new_tokens=5, decoding="one-call", **options)
        rounds = lens.generate(items, max_new_tokens=5, decoding="generate", first_round=2, **options)
    finally:
        library.removeHandler(seen)
        config.max_length = saved
        hf_logging.set_verbosity(verbosity)
    assert not [m for m in seen.messages if "seem to have been set" in m], seen.messages
    assert after.to_json() == before.to_json() == rounds.to_json()
