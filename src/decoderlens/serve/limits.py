"""What one request to the explorer's server may ask for: the server's limits, stated once (the CLI's options
are made from these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field

from decoderlens.errors import InputError
from decoderlens.settings import check_count, described


@dataclass
class ServeLimits:
    """What one request may ask for, and how requests are batched (printed when the server starts)."""

    max_inputs: int = field(default=32, metadata=described("Most inputs in one request."))
    max_input_chars: int = field(default=4000, metadata=described("Most characters in one input or target."))
    max_new_tokens_limit: int = field(default=256, metadata=described("The most max_new_tokens a request may ask "
                                                                      "for."))
    max_body_bytes: int = field(default=20_000_000, metadata=described("Most bytes in one request body (uploads "
                                                                       "included)."))
    queue_size: int = field(default=256, metadata=described("Requests that may wait; beyond, 503."))
    max_batch: int = field(default=16, metadata=described("Most inputs decoded together."))
    max_wait_ms: float = field(default=10.0, metadata=described("How long a request waits for others to share its "
                                                                "decode (milliseconds)."))
    max_work: int = field(default=500_000, metadata=described(
        "Most tokens one request may have generated: inputs x layers x beams x max_new_tokens (larger requests are "
        "refused before any work, so that none blocks the others for minutes)."))
    token: str | None = field(default=None, repr=False, metadata=described(
        "Bearer token every API request must send (none: no token needed).", metavar="TOKEN"))
    allowed_hosts: list[str] | None = field(default=None, metadata=described(
        "Another name this server may be reached by (repeat the flag; 127.0.0.1, localhost and ::1 always are).",
        list, "NAME", "--allow-host"))
    allowed_origins: list[str] | None = field(default=None, metadata=described(
        "Another web origin whose pages may call the API (repeat the flag; the server's own pages always may).",
        list, "ORIGIN", "--allow-origin"))

    def validate(self) -> ServeLimits:
        """Raise ``InputError`` naming the limit and its option for any value that cannot work."""
        for name in ("max_inputs", "max_input_chars", "max_new_tokens_limit", "max_body_bytes", "queue_size",
                     "max_batch", "max_work"):
            check_count(name, getattr(self, name))
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            raise InputError("token (--token) must not be empty: give a secret text, or leave --token out")
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, (int, float)) \
                or self.max_wait_ms < 0:
            raise InputError(f"max_wait_ms (--max-wait-ms) must be a number of at least 0, got {self.max_wait_ms!r}")
        if self.max_wait_ms != self.max_wait_ms or self.max_wait_ms == float("inf"):
            raise InputError(f"max_wait_ms (--max-wait-ms) must be a finite number, got {self.max_wait_ms!r}")
        for origin in self.allowed_origins or []:
            if not origin.startswith(("http://", "https://")) or origin.rstrip("/").count("/") != 2:
                raise InputError(f"allowed origin (--allow-origin) {origin!r} must look like http://host:port")
        return self

    def describe(self) -> str:
        """The limits in one line, as the server prints them when it starts."""
        return (f"{self.max_inputs} inputs of at most {self.max_input_chars} characters, max_new_tokens "
                f"{self.max_new_tokens_limit}, bodies up to {self.max_body_bytes:,} bytes, {self.queue_size} waiting "
                f"requests, {self.max_work:,} generated tokens a request; batches of up to {self.max_batch} inputs "
                f"within {self.max_wait_ms:g} ms"
                + ("; token required" if self.token else ""))
