"""The server's door, in front of every route: requests must name this server as their host (no DNS rebinding),
come from its own pages or an allowed origin (no cross-site requests from pages the user visits), send API posts
as JSON (uploads as multipart to the readout route only), and keep their body within the limit however it is
sent (``Content-Length`` or chunked); with a token, API requests must carry it. What local tool servers such as
Jupyter's do."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")
UPLOAD_ROUTES = ("/api/readout", "/api/readout/stream")


class BodyTooLarge(Exception):
    """A request body grew past the server's limit while it was read."""


def host_name(value: str) -> str:
    """The host of a ``Host`` header or origin's authority, without port or IPv6 brackets, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1: value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Door:
    """ASGI middleware that refuses what a local server must not answer (403, 413, 415), before any route runs."""

    def __init__(self, app: ASGIApp, hosts: set[str], origins: set[str], max_body_bytes: int,
                 token: str | None = None) -> None:
        self.app, self.hosts, self.origins, self.max_body_bytes = app, hosts, origins, max_body_bytes
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        seen = 0
        started = exceeded = False
        too_large = f"the request body is over {self.max_body_bytes:,} bytes"

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever a route made of the cut body, the answer is that it was too large
                if not started:
                    started = True
                    await _answer(send, 413, too_large)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, too_large)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """Why a request is refused (status and message), or ``None``."""
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return 403, (f"this server answers requests for {', '.join(sorted(self.hosts))} only, not "
                         f"{host_name(host) or 'no host'}: start it with --allow-host NAME to add a name")
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin, host) and origin.lower() not in self.origins:
            return 403, (f"requests from the page at {origin} are refused: start the server with --allow-origin "
                         f"{origin} to allow them")
        if self.token is not None and scope["path"].startswith("/api/"):
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return 401, "this server needs a token: send the header 'Authorization: Bearer TOKEN'"
        if scope["method"] == "POST" and scope["path"].startswith("/api/"):
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            allowed = ["application/json"] + (["multipart/form-data"] if scope["path"] in UPLOAD_ROUTES else [])
            if kind not in allowed:
                return 415, f"send the request body as {' or '.join(allowed)}, not {kind or 'nothing'}"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return 413, f"the request body is over {self.max_body_bytes:,} bytes"
        return None

    @staticmethod
    def _same_origin(origin: str, host: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(bind: str, extra: list[str] | None) -> set[str]:
    """The names requests may give as their host: this machine's, the address the server listens on (unless it
    listens on every address) and those allowed with ``--allow-host``."""
    hosts = set(LOCAL_NAMES) | {host_name(name) for name in extra or []}
    if bind not in ("0.0.0.0", "::", ""):
        hosts.add(host_name(bind))
    return hosts
