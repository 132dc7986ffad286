"""Fixtures shared by every test: offline, a fixed number of threads, and the family parameter."""

from __future__ import annotations

import os

import pytest
import torch

from decoderlens import DecoderLens
from decoderlens.logic import shipped_model_path
from support.models import FAMILIES

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def logic_lens() -> DecoderLens:
    """The shipped logic model (read-only in tests, shared by all)."""
    return DecoderLens.from_pretrained(str(shipped_model_path()), device="cpu")
