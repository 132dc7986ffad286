"""A Hub name with no way to the Hub: refused in seconds with what to do, or loaded from the local cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from decoderlens import hub
from decoderlens.errors import InputError

CLOSED = "http://127.0.0.1:9"
"""An endpoint nothing listens on: connections are refused at once, as when the network is down."""


def test_an_unreachable_hub_is_said_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert not hub.hub_reachable()
    with pytest.raises(InputError, match="HF_HUB_OFFLINE=1"):
        hub.hub_options("some-org/some-model")
    monkeypatch.setattr(hub, "in_cache", lambda name: True)
    assert hub.hub_options("some-org/some-model") == {"local_files_only": True}  # the cache serves it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_options("some-org/some-model") == {}  # transformers honours the switch by itself
    assert "HF_HUB_OFFLINE is set" in hub.offline_hint("some-org/some-model")


def test_the_command_line_names_the_switch() -> None:
    env = {**os.environ, "HF_ENDPOINT": CLOSED}
    env.pop("HF_HUB_OFFLINE", None)
    proc = subprocess.run([sys.executable, "-m", "decoderlens", "run", "some-org/some-model", "hello"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # said by the check before loading (a refused connection), not after transformers' retries
    assert "cannot reach the Hugging Face Hub" in proc.stderr and "HF_HUB_OFFLINE=1" in proc.stderr
