"""Calls to a best-effort HTTP endpoint (a Pushgateway, a chat webhook): tried a few times, and
a failure is a one-line reason for the caller to report, never an exception that would change
a run's result."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable

TRIES = 3
PAUSE_SECONDS = 0.5


def attempted(call: Callable[[], object], tries: int = TRIES) -> str:
    """Run `call` until it succeeds, up to `tries` times with a growing pause; '' when it did,
    else the last one-line reason. A 4xx answer other than 429 is final (asking again gets the
    same answer). Any error is a reason, never raised; the reason never quotes the URL (a
    webhook's path is its key), only the error's kind and the network's answer."""
    reason = ""
    for attempt in range(1, tries + 1):
        try:
            call()
            return ""
        except urllib.error.HTTPError as error:
            reason = f"HTTP {error.code} {error.reason}"
            if 400 <= error.code < 500 and error.code != 429:
                return reason
        except Exception as error:  # refused, reset, not HTTP at all (a TLS port), a bad URL
            reason = f"{type(error).__name__}: {getattr(error, 'reason', '') or 'no answer'}"
        if attempt < tries:
            time.sleep(PAUSE_SECONDS * attempt)
    return reason
