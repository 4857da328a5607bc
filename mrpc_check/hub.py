"""Reaching the Hugging Face Hub: at once, or not at all.

Only a Hub id (a model name, ``--data hub``) ever touches the network; presets and local
folders never do. Without network, ``huggingface_hub`` retries with back-off and prints a
warning per retry (up to 23 lines and 27-50 s before its error, measured). Here one TCP
connection to the endpoint, with a short timeout, decides first: unreachable means the local
cache or one line naming the fix, within seconds.
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Optional
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: the user asked for the cache only."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@functools.lru_cache(maxsize=None)
def _probe(url: str, timeout: float) -> Optional[str]:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def unreachable(timeout: float = PROBE_TIMEOUT_S) -> Optional[str]:
    """Why the Hub cannot be reached (offline mode, DNS, refused, timed out), or None when it answers."""
    if offline():
        return "HF_HUB_OFFLINE is set"
    why = _probe(endpoint(), timeout)
    return f"{endpoint()} unreachable: {why}" if why else None


def quiet(verbose: bool = False) -> None:
    """Keep the Hugging Face libraries' logging at error level (their retry warnings included) unless ``verbose``."""
    import logging

    level = logging.INFO if verbose else logging.ERROR
    for name in ("huggingface_hub", "transformers", "datasets", "filelock", "urllib3"):
        logging.getLogger(name).setLevel(level)
