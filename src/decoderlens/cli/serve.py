"""``decoderlens serve``: the live explorer, a local web app and HTTP API over one loaded model."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.errors import InputError
from decoderlens.serve.limits import ServeLimits
from decoderlens.settings import LoadSettings, RuntimeSettings

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@common.settings_options(RuntimeSettings, LoadSettings, ServeLimits, skip=("batch_size",))
def serve_command(
    model: common.ModelArg,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (other than 127.0.0.1 needs --token).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
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
        runtime = common.settings_of(RuntimeSettings, given)
        lens = common.load_lens(model, common.settings_of(LoadSettings, given), force)
        common.err_console.print(f"decoderlens serve: {lens.name} on http://{host}:{port}/ (API docs at /docs); "
                                 f"limits: {limits.describe()}", highlight=False)
        uvicorn.run(create_app(lens, runtime, limits), host=host, port=port, log_level="warning")
