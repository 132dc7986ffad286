"""``decoderlens serve``: the live explorer, a local web app and HTTP API over one loaded model."""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.errors import InputError
from decoderlens.serve.limits import ServeLimits
from decoderlens.settings import LoadSettings, RuntimeSettings

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
GRACE_SECONDS = 5
"""How long a stopping server waits for the requests in flight."""


@common.settings_options(RuntimeSettings, LoadSettings, ServeLimits, skip=("batch_size",))
def serve_command(
    model: common.ModelArg,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (other than 127.0.0.1 needs --token).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port, printed).")] = 8000,
    insecure_no_token: Annotated[bool, typer.Option("--insecure-no-token", help="Listen beyond this machine "
                                                    "without a token.")] = False,
    force: common.ForceOpt = False,
    *,
    given: dict[str, Any],
) -> None:
    """Serve the explorer page (GET /) and the HTTP API (/api/info, /api/readout, /api/readout/stream,
    /api/score, /api/grid; OpenAPI at /docs) over MODEL."""
    with common.friendly_errors():
        limits = common.settings_of(ServeLimits, given)
        if host not in LOCAL_HOSTS and limits.token is None and not insecure_no_token:
            raise InputError(f"listening on {host} lets other machines in: give --token TOKEN (clients send "
                             "'Authorization: Bearer TOKEN'), or --insecure-no-token if you mean it")
        try:
            import uvicorn

            from decoderlens.serve.app import create_app
        except ImportError:
            raise InputError("decoderlens serve needs its extra: pip install 'decoderlens[serve]'") from None
        if isinstance(port, bool) or not 0 <= port <= 65535:
            raise InputError(f"port (--port) must be a number from 0 to 65535 (0: any free port), got {port}")
        runtime = common.settings_of(RuntimeSettings, given)
        load = common.settings_of(LoadSettings, given)
        listener = listen(host, port)  # before the model loads: a port in use is said at once
        try:
            lens = common.load_lens(model, load, force)
            bound = listener.getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            common.err_console.print(f"decoderlens serve: {lens.name} on http://{shown}:{bound}/ (API docs at "
                                     f"/docs); limits: {limits.describe()}", highlight=False)
            config = uvicorn.Config(create_app(lens, runtime, limits, host), log_level="warning",
                                    timeout_graceful_shutdown=GRACE_SECONDS)
            uvicorn.Server(config).run(sockets=[listener])
        finally:  # also when the stop arrives as an interrupt (uvicorn raises the captured signal again)
            listener.close()
            stop_work_in_flight()


def stop_work_in_flight() -> None:
    """After the server stopped (Ctrl-C, SIGTERM), work still running in a worker thread is dropped rather than
    awaited: the process ends within the grace period, not when a long request would have finished."""
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if busy:
        common.err_console.print("decoderlens serve: stopped; the work in flight was dropped", highlight=False)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(0)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or ``InputError`` saying why not."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except (OSError, OverflowError) as err:
        raise InputError(f"cannot listen on {host}:{port} ({getattr(err, 'strerror', None) or err}): choose another "
                         "--port or --host") from None
    return listener
