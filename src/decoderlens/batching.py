"""Encoding and memory-aware batching: which inputs are encoded together, in what pieces, and how many stacked
rows one decoding or scoring call may hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

from decoderlens.adapter import EncodedBatch
from decoderlens.budget import ENCODER_SHARE, RowCost, available_bytes, encoding_bytes, parse_size, rows_within
from decoderlens.errors import InputError
from decoderlens.model_parts import ModelParts
from decoderlens.scheduling import input_length, plan_batches
from decoderlens.settings import RuntimeSettings

T = TypeVar("T")
RowBytes = Callable[[RowCost, int, int], int]
"""Bytes one stacked row of a call holds, from the cost model, the source length and the encoder width."""


def encode(parts: ModelParts, items: list[Any], truncation: bool = False,
           max_memory: int | str | None = None) -> EncodedBatch:
    """Prepare and encode a batch of inputs: one at a time where padding would change the encoder, and in pieces
    that fit ``max_memory`` otherwise (the pieces share one padding, so results do not change)."""
    adapter = parts.adapter
    if adapter.spec.padding_sensitive and len(items) > 1:
        return adapter.merge([encode(parts, [item], truncation) for item in items])
    batch = parts.prepared(items, truncation)
    if max_memory is None or len(items) == 1:
        return adapter.encode(batch)
    first = adapter.encode(_rows_of(batch, 0, 1))
    size = rows_within(parse_size(max_memory), input_bytes(first))
    pieces = [first] + [adapter.encode(_rows_of(batch, start, min(len(items), start + size)))
                        for start in range(1, len(items), size)]
    return adapter.merge(pieces)


Progress = bool | Callable[[int], None]
"""``True``: a progress bar (examples, rate, time left); a function: told how many more examples are done after
every batch (a caller's own bar); ``False``: silent."""


def each_batch(parts: ModelParts, items: list[Any], runtime: RuntimeSettings, rows_per_example: int,
               truncation: bool, progress: Progress, work: Callable[..., list[T]],
               label: str = "decoderlens", ticks: bool = False) -> list[T]:
    """Run ``work`` on every planned batch of input indices; results come back in input order. Batches of the
    auto size are split where their inputs' kept states would not fit the memory budget. With ``ticks``,
    ``work(indices, advance)`` may call ``advance(n)`` as examples of its batch finish, so that progress moves
    within a batch; the rest of the batch is counted when it returns."""
    results: list[T | None] = [None] * len(items)
    spec = parts.adapter.spec
    group = spec.modality == "text" or not spec.padding_sensitive
    size = runtime.batch_size if isinstance(runtime.batch_size, int) else None
    batches = plan_batches(items, size, rows_per_example, runtime.max_rows, group_by_length=group)
    if size is None:
        batches = within_memory(parts, items, batches, truncation, runtime.max_memory)
    report = progress if callable(progress) else None
    with tqdm(total=len(items), desc=label, unit="ex", disable=progress is not True, dynamic_ncols=True) as bar:
        for indices in batches:
            counted = 0

            def advance(count: int, size: int = len(indices)) -> None:
                nonlocal counted
                count = min(count, size - counted)
                counted += count
                bar.update(count)
                if report is not None and count:
                    report(count)

            for index, result in zip(indices, work(indices, advance) if ticks else work(indices), strict=True):
                results[index] = result
            advance(len(indices) - counted)
    return results  # type: ignore[return-value]


def within_memory(parts: ModelParts, items: list[Any], batches: list[list[int]], truncation: bool,
                  max_memory: int | str | None) -> list[list[int]]:
    """``batches`` cut so that each one's kept states fit a share of the memory budget (``max_memory``, else the
    automatic one), measured on the longest input by encoding it alone."""
    budget = parse_size(max_memory) if max_memory is not None else available_bytes(parts.device)
    if budget is None or all(len(batch) == 1 for batch in batches):
        return batches
    longest = max((index for batch in batches for index in batch), key=lambda index: input_length(items[index]))
    try:
        per_input = input_bytes(encode(parts, [items[longest]], truncation))
    except InputError:  # a bad input: the batch that holds it reports it, by its place in the call
        return batches
    most = max(1, int(ENCODER_SHARE * budget) // per_input)
    return [batch[start: start + most] for batch in batches for start in range(0, len(batch), most)]


def rows_per_call(parts: ModelParts, encoded: EncodedBatch, runtime: RuntimeSettings, row_bytes: RowBytes) -> int:
    """The row limit for one call: ``max_rows``, lowered to what fits ``max_memory`` (without one, to what fits a
    share of the device's free memory, never below one row)."""
    _, length, width = encoded.final_output.shape
    if runtime.max_memory is None:
        budget = available_bytes(parts.device)
        try:
            per_row = row_bytes(RowCost(parts.model), length, width)
        except InputError:  # a config whose shape cannot be read: the plain row limit
            return runtime.max_rows
        return runtime.max_rows if budget is None else max(1, min(runtime.max_rows, budget // max(1, per_row)))
    return min(runtime.max_rows, rows_within(parse_size(runtime.max_memory),
                                             row_bytes(RowCost(parts.model), length, width)))


def input_bytes(encoded: EncodedBatch) -> int:
    """What one input of an encoder batch holds at its peak, from a batch of that one input."""
    return encoding_bytes(sum(t.numel() * t.element_size() for t in encoded.hidden_states))


def _rows_of(batch: dict[str, torch.Tensor], start: int, stop: int) -> dict[str, torch.Tensor]:
    """Inputs ``start:stop`` of a prepared batch."""
    return {key: value[start:stop] for key, value in batch.items()}
