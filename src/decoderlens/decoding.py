"""The decoding plan (decoder prompt, forced target language, length, and the strategy, decided once) and the
loops it chooses between: the own greedy loop, rounds of ``generate``, one ``generate`` call, beam search."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
from transformers import GenerationMixin, LogitsProcessorList, PreTrainedModel
from transformers.utils import ModelOutput

from decoderlens.adapter import StackedRows
from decoderlens.architectures import ArchitectureSpec, decoder_position_limit
from decoderlens.errors import InputError
from decoderlens.greedy_loop import Listener, greedy_loop, plain_greedy
from decoderlens.inputs import get_tokenizer
from decoderlens.limits import RowLimits
from decoderlens.settings import RuntimeSettings
from decoderlens.step_scores import StepRecorder

DEFAULT_MAX_NEW_TOKENS = 64
MIN_FINISHED_SHARE = 0.25
"""Round-based decoding keeps doubling its rounds only while at least this share of rows ends per round."""


class Strategy(StrEnum):
    """How stacked rows are decoded (chosen once, by ``plan_decoding``)."""

    own_loop = "own-loop"
    """Greedy search over the model's forward (``greedy_loop``): no logits processor in the configuration."""
    rounds = "rounds"
    """Greedy search in rounds of ``generate`` of growing length that continue only unfinished rows."""
    one_call = "one-call"
    """One ``generate`` call (beam search, sampling, and rules tied to one call's length)."""


@dataclass
class DecodingPlan:
    """Everything decoding needs besides the encoder states, resolved once per call."""

    prompt: list[int]
    """Decoder prompt (start token, plus language and task tokens for Whisper-style models)."""
    max_new_tokens: int
    """The most new tokens any row may write."""
    num_beams: int = 1
    eos_token_ids: set[int] = field(default_factory=set)
    options: dict[str, Any] = field(default_factory=dict)
    """Further ``generate`` options (forced target-language token, user extras)."""
    generic_generate: bool = False
    """Call the generic ``GenerationMixin.generate`` instead of a model's own override (whose extra rules, such as
    Whisper's long-form decoding, do not apply to encoder states given directly)."""
    strategy: Strategy = Strategy.one_call
    first_round: int = 16
    """``Strategy.rounds``: new tokens of the first round; each later round doubles while rows keep ending."""
    source_rules: bool = False
    """The generation config has rules that look at the encoder's input ids (e.g. ``encoder_no_repeat_ngram_size``),
    so ``generate`` gets them next to the encoder states."""

    @property
    def greedy(self) -> bool:
        """Plain greedy search: a row's first ``k`` new tokens do not depend on how long it may run."""
        return self.num_beams == 1 and not self.options.get("do_sample")

    def generate_options(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments of one ``generate`` call."""
        return {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams, "do_sample": False,
                **self.options, **overrides}


def decoder_start_id(model: PreTrainedModel) -> int:
    """The token that starts every decoder sequence."""
    for source in (model.generation_config, model.config, getattr(model.config, "decoder", None)):
        value = getattr(source, "decoder_start_token_id", None)
        if value is not None:
            return int(value)
    raise InputError("the model config has no decoder_start_token_id: set model.config.decoder_start_token_id")


def _eos_ids(model: PreTrainedModel) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = model.config.eos_token_id
    return set() if eos is None else {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def target_language_id(processor: Any, tgt_lang: str) -> int:
    """Token id of a target-language code (``fra_Latn`` for NLLB, ``fr`` or ``__fr__`` for M2M100)."""
    tokenizer = get_tokenizer(processor)
    unk = tokenizer.unk_token_id
    for candidate in (tgt_lang, f"__{tgt_lang}__"):
        token_id = tokenizer.convert_tokens_to_ids(candidate)
        if token_id is not None and token_id != unk:
            return int(token_id)
    raise InputError(
        f"unknown target language {tgt_lang!r} for this tokenizer: use one of its language codes "
        "(e.g. 'fra_Latn' for NLLB, 'fr' for M2M100, 'fr_XX' for mBART-50)"
    )


ENGLISH = ("en", "english", "<|en|>")


def _speech_prompt(model: PreTrainedModel, start: int, language: str | None, task: str | None) -> list[int]:
    config = model.generation_config
    prompt = [start]
    lang_to_id = getattr(config, "lang_to_id", None) or {}
    task_to_id = getattr(config, "task_to_id", None) or {}
    multilingual = bool(getattr(config, "is_multilingual", bool(lang_to_id))) and bool(lang_to_id)
    if language is not None and not multilingual:
        if language.lower() not in ENGLISH:
            raise InputError(f"this English-only speech model transcribes English only, not {language!r}: drop "
                             "--language or use a multilingual checkpoint")
    elif language is not None:
        token = language if language.startswith("<|") else f"<|{language.lower()}|>"
        if token not in lang_to_id:
            raise InputError(f"unknown language {language!r}: use a code such as 'en', 'de', 'fr'")
        prompt.append(int(lang_to_id[token]))
    elif multilingual:
        raise InputError(
            "this multilingual speech model needs the spoken language: pass language='en' (--language en); "
            "otherwise each layer would guess its own language"
        )
    if task is not None and not task_to_id:
        if task != "transcribe":
            raise InputError(f"this model has no task tokens: it only transcribes, so drop task={task!r}")
    elif task_to_id and (multilingual or task is not None):
        chosen = task or "transcribe"
        if chosen not in task_to_id:
            raise InputError(f"unknown task {chosen!r}: use 'transcribe' or 'translate'")
        prompt.append(int(task_to_id[chosen]))
    no_timestamps = getattr(config, "no_timestamps_token_id", None)
    if no_timestamps is not None:
        prompt.append(int(no_timestamps))
    return prompt


def plan_decoding(
    model: PreTrainedModel,
    spec: ArchitectureSpec,
    processor: Any,
    *,
    runtime: RuntimeSettings | None = None,
    max_new_tokens: int | None = None,
    num_beams: int = 1,
    tgt_lang: str | None = None,
    language: str | None = None,
    task: str | None = None,
    **extra: Any,
) -> DecodingPlan:
    """Resolve prompt, forced tokens and decoding options; raises ``InputError`` for missing options."""
    start = decoder_start_id(model)
    prompt = _speech_prompt(model, start, language, task) if spec.speech_prompt else [start]
    if not spec.speech_prompt and (language is not None or task is not None):
        raise InputError("language/task apply to Whisper-style speech models only; use tgt_lang for translation")
    options: dict[str, Any] = dict(extra)
    configured = model.generation_config.max_new_tokens
    if spec.target_language == "none":
        if tgt_lang is not None:
            raise InputError(f"{spec.model_type} models take no target language: drop tgt_lang")
    elif tgt_lang is not None:
        options["forced_bos_token_id"] = target_language_id(processor, tgt_lang)
    elif spec.target_language == "required" and model.generation_config.forced_bos_token_id is None:
        raise InputError(
            f"this multilingual {spec.model_type} model needs a target language: pass tgt_lang='fra_Latn' "
            "(--tgt-lang fra_Latn) or another language code of its tokenizer"
        )
    runtime = runtime or RuntimeSettings()
    new_tokens = int(max_new_tokens or configured or DEFAULT_MAX_NEW_TOKENS)
    limit = decoder_position_limit(model.config)
    if limit is not None and len(prompt) + new_tokens - 1 > limit:
        if max_new_tokens is None:  # the configured length does not fit: the most that does
            new_tokens = limit - len(prompt) + 1
        else:
            raise InputError(f"max_new_tokens {max_new_tokens} does not fit this model's decoder: it reads at most "
                             f"{limit} positions, {len(prompt)} of them the prompt; use --max-new-tokens "
                             f"{limit - len(prompt) + 1} or less")
    plan = DecodingPlan(prompt, new_tokens, num_beams,
                        _eos_ids(model), options, generic_generate=spec.speech_prompt,
                        first_round=runtime.first_round, source_rules=_source_rules(model, options))
    plan.strategy = _strategy(model, spec, plan, runtime.decoding)
    return plan


def _strategy(model: PreTrainedModel, spec: ArchitectureSpec, plan: DecodingPlan, decoding: str) -> Strategy:
    """The decoding loop for ``plan``: the own loop for plain greedy configurations, rounds of ``generate`` for
    other greedy ones without per-call length rules, else one call (``decoding`` may rule out the faster ones;
    families whose ``generate`` needs its own preparation always take one call)."""
    if not spec.round_decoding or decoding == "one-call":
        return Strategy.one_call
    if decoding == "auto" and not plan.generic_generate and plain_greedy(model, plan.generate_options()):
        return Strategy.own_loop
    rounds = (plan.greedy and plan.max_new_tokens > 2 * plan.first_round
              and model.generation_config.min_new_tokens is None and plan.options.get("min_new_tokens") is None)
    return Strategy.rounds if rounds else Strategy.one_call


SOURCE_RULES: dict[str, object] = {"encoder_no_repeat_ngram_size": 0, "encoder_repetition_penalty": 1.0}
"""Generation-config fields whose logits processors read the encoder's input ids, with their neutral values."""


def _source_rules(model: PreTrainedModel, options: dict[str, Any]) -> bool:
    config = model.generation_config
    return any(options.get(name, getattr(config, name, neutral)) not in (neutral, None)
               for name, neutral in SOURCE_RULES.items())


def run_generate(
    model: PreTrainedModel, plan: DecodingPlan, rows: StackedRows, make_outputs: Callable[[torch.Tensor], ModelOutput],
    prefix: torch.Tensor | None = None, **overrides: Any,
) -> torch.Tensor:
    """One ``generate`` call over stacked encoder states; returns sequences including the prompt/prefix."""
    if prefix is None:
        prefix = torch.tensor([plan.prompt], device=rows.states.device).repeat(len(rows), 1)
    kwargs = plan.generate_options(**overrides)
    kwargs.setdefault("max_length", None)  # the length is max_new_tokens alone (no warning that both are set)
    if rows.mask is not None:
        kwargs["attention_mask"] = rows.mask
    if plan.source_rules and rows.input_ids is not None:
        kwargs["inputs"] = rows.input_ids  # read by the source rules only: the encoder does not run again
    generate: Any = GenerationMixin.generate if plan.generic_generate else type(model).generate  # type: ignore[attr-defined]
    return generate(model, encoder_outputs=make_outputs(rows.states), decoder_input_ids=prefix,  # type: ignore[no-any-return]
                    **kwargs)


def decode_rows(
    model: PreTrainedModel, plan: DecodingPlan, stack: StackedRows, make_outputs: Callable[[torch.Tensor], ModelOutput],
    limits: RowLimits | None = None, rows: list[int] | None = None, listener: Listener | None = None,
    recorder: StepRecorder | None = None,
) -> list[list[int]]:
    """Decode stacked rows (row ``i`` is ``rows[i]`` of ``limits``) by the plan's strategy; returns sequences with
    their prompt. ``listener`` sees rows' new tokens as they come (each step of the own loop, each round of
    ``generate``) and may name rows to stop; ``recorder`` (greedy decoding) keeps every step's log-probability and
    entropy per row.

    Greedy decoding stops every row at its limit, including limits that arrive while it runs; beam search
    runs every row to ``max_new_tokens``.
    """
    rows = list(range(len(stack))) if rows is None else rows
    if limits is None or not plan.greedy:
        observer = None if limits is None else limits.on_finish
        limits = RowLimits.uniform(max(rows) + 1, plan.max_new_tokens)
        limits.on_finish = observer
    if plan.strategy is Strategy.own_loop:
        return greedy_loop(model, plan.prompt, stack.states, stack.mask, make_outputs, plan.eos_token_ids, limits,
                           rows, listener, recorder)
    if plan.strategy is Strategy.rounds:
        return _rounds(model, plan, stack, make_outputs, limits, rows, listener, recorder)
    return _one_call(model, plan, stack, make_outputs, limits, rows, listener, recorder)


def _recording(recorder: StepRecorder | None, rows: list[int]) -> dict[str, Any]:
    """The ``generate`` option that records the steps of ``rows`` (in batch order), where a recorder is given."""
    if recorder is None:
        return {}
    recorder.current = rows
    return {"logits_processor": LogitsProcessorList([recorder.processor()])}


def _one_call(model: PreTrainedModel, plan: DecodingPlan, stack: StackedRows,
              make_outputs: Callable[[torch.Tensor], ModelOutput], limits: RowLimits, rows: list[int],
              listener: Listener | None, recorder: StepRecorder | None = None) -> list[list[int]]:
    """One ``generate`` call, as long as the longest row's limit."""
    keep, budget = len(plan.prompt), max(limits.limits[row] for row in rows)
    overrides: dict[str, Any] = ({} if budget >= plan.max_new_tokens
                                 else {"max_new_tokens": budget, "forced_eos_token_id": None})
    overrides.update(_recording(recorder, rows))
    out = run_generate(model, plan, stack, make_outputs, **overrides).tolist()
    for sequence, row in zip(out, rows, strict=True):
        limits.ended(row, _new_length(sequence, keep, plan.eos_token_ids))
    out = [limits.cut(sequence, row, keep) for sequence, row in zip(out, rows, strict=True)]
    limits.finished(rows)
    if listener is not None:
        listener({row: sequence[keep:] for row, sequence in zip(rows, out, strict=True)})
    return out


def _rounds(model: PreTrainedModel, plan: DecodingPlan, stack: StackedRows,
            make_outputs: Callable[[torch.Tensor], ModelOutput], limits: RowLimits, rows: list[int],
            listener: Listener | None, recorder: StepRecorder | None = None) -> list[list[int]]:
    """Greedy decoding in rounds of growing length that continue only unfinished rows: a continued row gets its
    tokens so far as decoder prefix, so every logits processor sees the same history. Rules tied to one call's
    start or end are kept where they belong: begin-suppression and the forced first token only in the first
    round, the forced end-of-sequence token only in the last."""
    count, keep, total = len(stack), len(plan.prompt), plan.max_new_tokens
    budget = max(limits.limits[row] for row in rows)
    device = stack.states.device
    active = list(range(count))
    prefixes = {local: list(plan.prompt) for local in active}
    finished: dict[int, list[int]] = {}
    generated, step = 0, plan.first_round
    while active and generated < budget:
        step = min(step, budget - generated)
        overrides: dict[str, Any] = {"max_new_tokens": step}
        if generated + step < total:
            overrides["forced_eos_token_id"] = None
        if generated:
            overrides.update(begin_suppress_tokens=None, forced_bos_token_id=None)
        overrides.update(_recording(recorder, [rows[local] for local in active]))
        index = torch.tensor(active, device=device)
        prefix = torch.tensor([prefixes[local] for local in active], device=device)
        out = run_generate(model, plan, stack.part(index), make_outputs, prefix, **overrides).tolist()
        done = set()
        for local, sequence in zip(active, out, strict=True):
            new = sequence[prefix.shape[1]:]
            prefixes[local] = sequence
            ends = any(token in plan.eos_token_ids for token in new) or len(new) < step
            if ends or generated + step >= limits.limits[rows[local]]:
                done.add(local)
                limits.ended(rows[local], _new_length(sequence, keep, plan.eos_token_ids))
        active_rows = {rows[local]: local for local in active}
        done |= {local for row, local in active_rows.items() if limits.limits[row] <= generated + step}
        if listener is not None:
            stop = listener({rows[local]: limits.cut(prefixes[local], rows[local], keep)[keep:] for local in active})
            done |= {active_rows[row] for row in stop if row in active_rows}
        still = [local for local in active if local not in done]
        finished.update({local: prefixes[local] for local in done})
        limits.finished(rows[local] for local in done)
        ended = len(active) - len(still)
        active, generated = still, generated + step
        budget = max([limits.limits[rows[local]] for local in active], default=0)
        # few rows ended: another round would not pay for its extra call, so finish in one go
        step = step * 2 if ended >= MIN_FINISHED_SHARE * (ended + len(still)) else budget
    finished.update({local: prefixes[local] for local in active})
    limits.finished(rows[local] for local in active)
    return [limits.cut(finished[local], rows[local], keep) for local in range(count)]


def _new_length(sequence: list[int], keep: int, eos_token_ids: set[int]) -> int:
    """New tokens of a sequence before its first end-of-sequence token."""
    for position, token in enumerate(sequence[keep:]):
        if token in eos_token_ids:
            return position
    return len(sequence) - keep


def strip_output(sequence: list[int], plan: DecodingPlan) -> list[int]:
    """Generated tokens after the prompt, cut before the first end-of-sequence token.

    Rows that never end carry no padding, so nothing else needs removing.
    """
    tokens = sequence[len(plan.prompt):]
    for position, token in enumerate(tokens):
        if token in plan.eos_token_ids:
            return tokens[:position]
    return tokens
