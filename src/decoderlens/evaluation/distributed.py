"""Data-parallel evaluation through Hugging Face accelerate: which rows this process takes, and barriers.

Launched with ``accelerate launch --multi_gpu -m decoderlens eval ...`` on GPUs (or ``torchrun
--nproc_per_node N -m decoderlens eval ...``, which also runs CPU processes over gloo), every process reads the
rows ``rank, rank + world, ...``, streams them to its own shard file, and the main process merges the
shards in data order when all are done. A single process behaves exactly as without a launcher.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the run."""

    rank: int = 0
    world: int = 1
    device: str | None = None
    state: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every process gets here (no-op in a single process)."""
        if self.state is not None and self.world > 1:
            self.state.wait_for_everyone()


def process_info() -> ProcessInfo:
    """Rank, world size and device from accelerate when launched by it (or torchrun), else a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ProcessInfo()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # CPU processes talk over gloo
    return ProcessInfo(state.process_index, state.num_processes, str(state.device), state)
