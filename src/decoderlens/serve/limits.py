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
    token: str | None = field(default=None, repr=False, metadata=described(
        "Bearer token every API request must send (none: no token needed).", metavar="TOKEN"))

    def validate(self) -> ServeLimits:
        """Raise ``InputError`` naming the limit and its option for any value that cannot work."""
        for name in ("max_inputs", "max_input_chars", "max_new_tokens_limit", "max_body_bytes", "queue_size",
                     "max_batch"):
            check_count(name, getattr(self, name))
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, (int, float)) \
                or self.max_wait_ms < 0:
            raise InputError(f"max_wait_ms (--max-wait-ms) must be a number of at least 0, got {self.max_wait_ms!r}")
        return self

    def describe(self) -> str:
        """The limits in one line, as the server prints them when it starts."""
        return (f"{self.max_inputs} inputs of at most {self.max_input_chars} characters, max_new_tokens "
                f"{self.max_new_tokens_limit}, bodies up to {self.max_body_bytes:,} bytes, {self.queue_size} waiting "
                f"requests; batches of up to {self.max_batch} inputs within {self.max_wait_ms:g} ms"
                + ("; token required" if self.token else ""))
