"""A real server for the API's tests: the explorer's app on a free port of 127.0.0.1 in a thread, stopped on exit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from decoderlens import DecoderLens, RuntimeSettings
from decoderlens.serve.app import create_app
from decoderlens.serve.limits import ServeLimits


@contextmanager
def serving(lens: DecoderLens, **limits: Any) -> Iterator[tuple[str, Any]]:
    """A server on a free port of 127.0.0.1, stopped (and its thread joined) on exit."""
    application = create_app(lens, RuntimeSettings(), ServeLimits(**limits))
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", application
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the server did not stop"


