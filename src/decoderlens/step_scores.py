"""How sure each row is of every token it generates, recorded while it decodes: the log-probability of the chosen
token and the entropy of the distribution it was chosen from, step by step (greedy decoding, which takes the most
likely token). The own loop hands each step's logits over; ``generate`` calls get a logits processor that sees the
processed scores after the model's own rules and changes nothing."""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor

DIGITS = 4
"""Decimals kept of each log-probability and entropy."""


def greedy_step_scores(logits: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per row of one step's ``logits``: the log-probability of its most likely token and the entropy (nats)."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    probs = logprobs.exp()
    entropy = -torch.where(probs > 0, probs * logprobs, torch.zeros_like(probs)).sum(-1)
    return logprobs.max(-1).values.tolist(), entropy.tolist()


class StepRecorder:
    """Per stacked row: the scores of its steps so far, in order (a row that ran past its end or its limit has a
    few more than its tokens; ``scores`` cuts them)."""

    def __init__(self) -> None:
        self.steps: dict[int, tuple[list[float], list[float]]] = {}
        self.current: list[int] = []
        """The stacked rows of the batch now decoding, in its order (set before each ``generate`` call)."""

    def add(self, rows: list[int], logits: torch.Tensor) -> None:
        """One step of ``rows`` (their logits in that order)."""
        chosen, entropy = greedy_step_scores(logits)
        for row, lp, h in zip(rows, chosen, entropy, strict=True):
            logprobs, entropies = self.steps.setdefault(row, ([], []))
            logprobs.append(round(lp, DIGITS) + 0.0)
            entropies.append(round(h, DIGITS) + 0.0)

    def scores(self, row: int, length: int) -> tuple[list[float], list[float]]:
        """The first ``length`` steps of ``row``: one per token it kept."""
        logprobs, entropies = self.steps.get(row, ([], []))
        return logprobs[:length], entropies[:length]

    def processor(self) -> LogitsProcessor:
        """A logits processor for ``generate`` that records each step of the rows in ``current``."""
        return _Recording(self)


class _Recording(LogitsProcessor):
    def __init__(self, recorder: StepRecorder) -> None:
        self.recorder = recorder

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> Any:
        self.recorder.add(self.recorder.current, scores)
        return scores
