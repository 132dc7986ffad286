"""Whether the Hugging Face Hub can be reached, asked once in a few seconds before a Hub name is loaded: offline, a
model already in the local cache loads from it at once, and any other is refused with what to do, instead of
after half a minute of retries."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlparse

from decoderlens.errors import InputError

TIMEOUT_SECONDS = 3.0
"""How long the reachability check waits for a connection."""


def hub_reachable(timeout: float = TIMEOUT_SECONDS) -> bool:
    """Whether a connection to the Hub's endpoint (``HF_ENDPOINT``) opens within ``timeout`` seconds."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def in_cache(name: str) -> bool:
    """Whether the local Hugging Face cache holds ``name``'s config."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def hub_options(name: str) -> dict[str, Any]:
    """Loading options for Hub name ``name``: none when the Hub answers (or ``HF_HUB_OFFLINE`` is set, which
    transformers honours by itself); ``local_files_only`` when it does not but the cache holds the model; refused
    with what to do when neither."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on") or hub_reachable():
        return {}
    if in_cache(name):
        return {"local_files_only": True}
    from huggingface_hub import constants

    raise InputError(f"cannot reach the Hugging Face Hub ({constants.ENDPOINT}) to download {name}, and it is not in "
                     "the local cache: connect to the network, give a local model folder, or set HF_HUB_OFFLINE=1 to "
                     "load only what the cache holds")


def offline_hint(name: str) -> str:
    """What to add to a failed Hub load's message when the Hub is switched off."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return f" (HF_HUB_OFFLINE is set and the local cache does not hold {name}: unset it to download)"
    return ""
