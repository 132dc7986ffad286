"""Dynamic batching: requests with the same settings that arrive within a short wait are read out in one stacked
decode (each client gets exactly what it would get alone: batch independence is an invariant of the engine)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from decoderlens.attribution.output import AttributionOutput
from decoderlens.engine import DecoderLens
from decoderlens.lenses import Lens
from decoderlens.results import GridOutput, LensOutput, ScoreOutput
from decoderlens.settings import AttributionSettings, GenerationSettings, RuntimeSettings


class QueueFull(Exception):
    """More requests wait than the queue holds."""


@dataclass
class Job:
    """One request: what to compute on which inputs, and where its answer (and streamed tokens) go."""

    kind: str
    """readout, score, grid or attribute."""
    items: list[Any]
    generation: GenerationSettings
    lens: Lens
    """The lens to read through."""
    targets: list[str] | None = None
    events: asyncio.Queue[dict[str, Any]] | None = None
    """Streamed token events (readouts only)."""
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    cancelled: bool = False
    names: list[str] | None = None
    """File names of uploaded inputs (the answer names them, as the command line names files)."""
    attribution: AttributionSettings | None = None
    """How an attribute job attributes."""

    @property
    def key(self) -> str:
        """Jobs with the same key can share one stacked decode."""
        return json.dumps([self.kind, asdict(self.generation), self.lens.name, self.targets is None,
                           None if self.attribution is None else asdict(self.attribution)],
                          sort_keys=True, default=str)


@dataclass
class Stats:
    """How the server batched: engine calls made and requests answered (the tests and benchmark read these)."""

    engine_calls: int = 0
    requests: int = 0
    largest_batch: int = 0


class _Watcher:
    """Routes the tokens of a stacked decode to the streams of the jobs its inputs came from."""

    def __init__(self, owners: list[tuple[Job, int]], loop: asyncio.AbstractEventLoop,
                 decode: Callable[[list[int]], str]) -> None:
        self.owners, self.loop, self.decode = owners, loop, decode

    def tokens(self, item: int, layer: int, token_ids: list[int]) -> None:
        job, index = self.owners[item]
        if job.events is not None and not job.cancelled:
            event = {"event": "tokens", "input": index, "layer": layer, "token_ids": list(token_ids),
                     "text": self.decode(token_ids)}
            self.loop.call_soon_threadsafe(job.events.put_nowait, event)

    def cancelled(self, item: int) -> bool:
        return self.owners[item][0].cancelled


class Batcher:
    """Collects jobs, and runs compatible ones together on the lens (one engine call at a time)."""

    def __init__(self, lens: DecoderLens, runtime: RuntimeSettings, max_batch: int = 16, max_wait_ms: float = 10.0,
                 queue_size: int = 256) -> None:
        self.lens, self.runtime = lens, runtime
        self.max_batch, self.max_wait, self.queue_size = max_batch, max_wait_ms / 1000, queue_size
        self.jobs: deque[Job] = deque()
        self.stats = Stats()
        self._wakeup: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decoderlens-serve")
        """The engine runs here, apart from the event loop's default executor, which a stopping loop would wait
        for: a stopping server never waits on a long request (``cli.serve.stop_work_in_flight``)."""

    async def submit(self, job: Job) -> Any:
        """Queue a job and wait for its result (``QueueFull`` when too many wait)."""
        if len(self.jobs) >= self.queue_size:
            raise QueueFull
        self.jobs.append(job)
        self._event().set()
        return await job.future

    def _event(self) -> asyncio.Event:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        return self._wakeup

    async def run(self) -> None:
        """The worker: forever take the oldest job, wait briefly for company, run the group."""
        wakeup = self._event()
        while True:
            while not self.jobs:
                wakeup.clear()
                await wakeup.wait()
            deadline = time.monotonic() + self.max_wait
            while time.monotonic() < deadline and self._inputs_like(self.jobs[0]) < self.max_batch:
                await asyncio.sleep(0.001)
            group = self._take()
            if not group:
                continue
            try:
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(self._executor, self._execute, group, loop)
            except Exception as err:  # every job of the group learns why; the server keeps running
                for job in group:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            for job, result in zip(group, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    def _inputs_like(self, first: Job) -> int:
        return sum(len(job.items) for job in self.jobs if job.key == first.key)

    def _take(self) -> list[Job]:
        """The oldest job and the compatible ones behind it, up to ``max_batch`` inputs (cancelled jobs dropped)."""
        first = self.jobs[0]
        group: list[Job] = []
        kept: deque[Job] = deque()
        size = 0
        while self.jobs:
            job = self.jobs.popleft()
            if job.cancelled:
                job.future.cancel()
            elif job.key == first.key and (not group or size + len(job.items) <= self.max_batch):
                group.append(job)
                size += len(job.items)
            else:
                kept.append(job)
        self.jobs = kept
        return group

    def _execute(self, group: list[Job], loop: asyncio.AbstractEventLoop) -> list[Any]:
        """Run one group on the lens (in a worker thread) and split the result by job."""
        first = group[0]
        items = [item for job in group for item in job.items]
        owners = [(job, index) for job in group for index in range(len(job.items))]
        lens = self.lens
        with self._lock:
            self.stats.engine_calls += 1
            self.stats.requests += len(group)
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            if first.kind == "readout":
                streams = any(job.events is not None for job in group)  # only streams show tokens or leave early
                watcher = _Watcher(owners, loop, lambda ids: lens.tokenizer.decode(ids, skip_special_tokens=True))
                output: Any = lens.generate(items, generation=first.generation, runtime=self.runtime, lens=first.lens,
                                            watcher=watcher if streams else None)
            elif first.kind == "score":
                targets = [t for job in group for t in job.targets or []]
                output = lens.score(items, targets, generation=first.generation, runtime=self.runtime, lens=first.lens)
            else:
                targets_or_none = None if first.targets is None else [t for job in group for t in job.targets or []]
                if first.kind == "attribute":
                    output = lens.attribute(items, target=targets_or_none, attribution=first.attribution,
                                            generation=first.generation, runtime=self.runtime, lens=first.lens)
                else:
                    output = lens.grid(items, targets_or_none, generation=first.generation, runtime=self.runtime,
                                       lens=first.lens)
        return _split(output, group)


def _split(output: LensOutput | ScoreOutput | GridOutput | AttributionOutput, group: list[Job]) -> list[Any]:
    parts: list[Any] = []
    start = 0
    for job in group:
        examples = output.examples[start: start + len(job.items)]
        start += len(job.items)
        if isinstance(output, AttributionOutput):
            parts.append(AttributionOutput(output.model, output.method, examples,  # type: ignore[arg-type]
                                           output.target, output.settings))
        elif isinstance(output, GridOutput):
            parts.append(GridOutput(output.model, output.num_encoder_layers, examples,  # type: ignore[arg-type]
                                    output.settings, num_decoder_layers=output.num_decoder_layers))
        else:
            parts.append(type(output)(output.model, output.num_encoder_layers, examples,  # type: ignore[arg-type]
                                      output.settings))
    return parts
