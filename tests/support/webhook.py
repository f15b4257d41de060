"""A local HTTP server that takes webhook POSTs, as Slack's or Teams' incoming webhook would: it
keeps each JSON body and answers with the status it is told to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.local_http import QuietHandler, serving


@dataclass
class Webhook:
    url: str
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0


@contextmanager
def webhook(status: int = 200) -> Iterator[Webhook]:
    """A webhook on a loopback port for the `with` block."""
    hook = Webhook(url="", status=status)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            hook.attempts += 1
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if hook.status < 300:
                kept = {"content_type": self.headers.get("Content-Type"), "path": self.path}
                hook.received.append({**kept, **json.loads(body)})
            self.send_response(hook.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    with serving(Handler) as url:
        hook.url = f"{url}/services/T000/B000/secret-key"
        yield hook
