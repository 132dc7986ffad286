"""``decoderlens serve``: the live explorer, a local web app and HTTP API over one loaded model."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from decoderlens.cli import common
from decoderlens.errors import InputError
from decoderlens.settings import RuntimeSettings

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@common.settings_options(RuntimeSettings, skip=("batch_size",))
def serve_command(
    model: common.ModelArg,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (other than 127.0.0.1 needs --token).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    translators: Annotated[str | None, typer.Option("--translators", metavar="DIR", show_default=False,
                                                    help="Also offer the tuned lens of these translators.")] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most inputs decoded together.")] = 16,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="How long a request waits for company.")] = 10.0,
    token: Annotated[str | None, typer.Option("--token", show_default=False, help="Bearer token every API request "
                                              "must send.")] = None,
    insecure_no_token: Annotated[bool, typer.Option("--insecure-no-token", help="Listen beyond this machine "
                                                    "without a token.")] = False,
    max_inputs: Annotated[int, typer.Option("--max-inputs", help="Most inputs per request.")] = 32,
    max_input_chars: Annotated[int, typer.Option("--max-input-chars", help="Longest input or target.")] = 4000,
    max_new_tokens_limit: Annotated[int, typer.Option("--max-new-tokens-limit", help="Most new tokens a request "
                                                      "may ask for.")] = 256,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest request body.")] = 20_000_000,
    queue_size: Annotated[int, typer.Option("--queue-size", help="Requests that may wait; beyond, 503.")] = 256,
    force: Annotated[bool, typer.Option("--force", help="Use translators trained for another model (same shape) "
                                        "anyway.")] = False,
    *,
    given: dict[str, Any],
) -> None:
    """Serve the explorer page (GET /) and the HTTP API (/api/info, /api/readout, /api/readout/stream,
    /api/score, /api/grid; OpenAPI at /docs) over MODEL."""
    with common.friendly_errors():
        if host not in LOCAL_HOSTS and token is None and not insecure_no_token:
            raise InputError(f"listening on {host} lets other machines in: give --token TOKEN (clients send "
                             "'Authorization: Bearer TOKEN'), or --insecure-no-token if you mean it")
        for name, value in (("max_batch", max_batch), ("max_inputs", max_inputs), ("queue_size", queue_size)):
            if value < 1:
                raise InputError(f"{name} (--{name.replace('_', '-')}) must be at least 1, got {value}")
        try:
            import uvicorn

            from decoderlens.serve.app import ServeLimits, create_app
        except ImportError:
            raise InputError("decoderlens serve needs its extra: pip install 'decoderlens[serve]'") from None
        runtime = common.settings_of(RuntimeSettings, given)
        lens = common.load_lens(model, runtime, translators, force)
        limits = ServeLimits(max_inputs, max_input_chars, max_new_tokens_limit, max_body_bytes, queue_size, max_batch,
                             max_wait_ms, token)
        common.err_console.print(
            f"decoderlens serve: {lens.name} on http://{host}:{port}/ (API docs at /docs); limits: {max_inputs} "
            f"inputs of at most {max_input_chars} characters, max_new_tokens {max_new_tokens_limit}, bodies up to "
            f"{max_body_bytes:,} bytes, {queue_size} waiting requests; batches of up to {max_batch} inputs within "
            f"{max_wait_ms:g} ms" + ("; token required" if token else ""), highlight=False)
        uvicorn.run(create_app(lens, runtime, limits), host=host, port=port, log_level="warning")
