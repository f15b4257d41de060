"""Failure alerts: one JSON message posted to a webhook when a run fails after it started.

The body is a chat webhook's: Slack's incoming webhooks and Microsoft Teams' connectors both
show its `text` and ignore the other keys, which carry the same facts for a program (a
ticketing hook). A webhook that is down or refuses is tried three times and then reported by
the caller: an alert never changes the run's own result.

The URL of a chat webhook is a credential (whoever holds it can post): it comes from the
`--notify-url` setting or the environment variable STABLEPIPE_NOTIFY_URL (on the cluster, from
the Secret `stablepipe-notify`), and summary.json records only whether one was set.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from typing_extensions import TypedDict

from components.common.webhooks import attempted

NOTIFY_ENV = "STABLEPIPE_NOTIFY_URL"
NOTIFY_TIMEOUT_SECONDS = 10.0
EXIT_KINDS = {1: "failed", 2: "bad input", 4: "data rejected"}


class FailureMessage(TypedDict):
    text: str
    run_id: str
    pipeline: str
    model: str
    stage: str
    exit_code: int
    reason: str
    logs: str


def failure_message(
    *, run_id: str, pipeline: str, model: str, stage: str, exit_code: int, reason: str, logs: str
) -> FailureMessage:
    """The message of a failed run; `reason` is the run's one line, `logs` where to read more."""
    kind = EXIT_KINDS.get(exit_code, "failed")
    where = f" in {stage}" if stage else ""
    text = f"stablepipe {pipeline} run {run_id} ({model}) {kind}{where}: {reason} (logs: {logs})"
    return FailureMessage(
        text=text,
        run_id=run_id,
        pipeline=pipeline,
        model=model,
        stage=stage,
        exit_code=exit_code,
        reason=reason,
        logs=logs,
    )


def shown_url(url: str) -> str:
    """The URL as a message may show it: scheme, host and port (a webhook's path is its key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/..." if parts.netloc else "?"


def post_message(url: str, message: FailureMessage | dict[str, Any]) -> str:
    """POST the message as JSON (see `attempted`); '' when the webhook took it, else the
    one-line reason it did not."""
    body = json.dumps(message).encode()

    def post() -> None:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT_SECONDS):
            pass

    return attempted(post)
