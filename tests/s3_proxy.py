"""A small fault-injecting TCP proxy for the S3 fault tests: it sits between the project's S3
client and the test server and, per connection, passes bytes through, delays each response
chunk, resets the connection (RST) after some bytes in either direction, never answers, or
answers every request itself with an HTTP error (503 SlowDown, a 502 HTML page).

    with FaultProxy(upstream_port) as proxy:
        proxy.faults = Faults(reset_after_response=1000, limit=2)  # the first two connections
        ... endpoint: proxy.endpoint ...

Faults apply to every `every`-th connection (1: all), at most `limit` of them (None: no limit);
the others pass through untouched. One thread per connection, no cross-thread closing.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass


@dataclass
class Faults:
    delay: tuple[float, float] = (0.0, 0.0)  # seconds before each response chunk (uniform)
    chunk: int = 16 * 1024  # response bytes forwarded per chunk
    reset_after_response: int | None = None  # RST once this many response bytes went out
    reset_after_request: int | None = None  # RST once this many request bytes went up
    silent: bool = False  # accept, read the request, never answer
    status: int = 0  # answer each request with this HTTP status (and `body`) instead
    body: bytes = b""
    content_type: str = "application/xml"
    every: int = 1  # fault every k-th connection (1, 2, ... counted from 1)
    limit: int | None = None  # fault at most this many connections

    def active(self) -> bool:
        return (
            self.delay != (0.0, 0.0)
            or self.reset_after_response is not None
            or self.reset_after_request is not None
            or self.silent
            or bool(self.status)
        )


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults = Faults()
        self.connections = 0  # accepted so far
        self.faulted = 0  # connections the faults applied to
        self.resets = 0  # connections reset
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self.accept_loop, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self.acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.acceptor.join(timeout=5)
        for thread in self.threads:
            thread.join(timeout=5)
        self.listener.close()

    def count(self, **changes: int) -> None:
        with self.lock:
            for name, step in changes.items():
                setattr(self, name, getattr(self, name) + step)

    def accept_loop(self) -> None:
        for index in itertools.count(1):
            while not self.stopping.is_set():
                try:
                    client, _ = self.listener.accept()
                    break
                except TimeoutError:
                    continue
            else:
                return
            self.count(connections=1)
            faults = self.faults
            chosen = faults.active() and index % faults.every == 0
            if chosen and faults.limit is not None:
                with self.lock:
                    chosen = self.faulted < faults.limit
            if chosen:
                self.count(faulted=1)
            thread = threading.Thread(
                target=self.serve, args=(client, faults if chosen else Faults()), daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def serve(self, client: socket.socket, faults: Faults) -> None:
        if faults.silent:
            return self.swallow(client)
        if faults.status:
            return self.answer(client, faults)
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            return reset(client)
        sent_up = sent_down = 0
        try:
            while not self.stopping.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                if client in ready:
                    data = client.recv(64 * 1024)
                    if not data:
                        break
                    sent_up = self.relay(data, upstream, sent_up, faults.reset_after_request)
                    if sent_up < 0:
                        return self.reset_both(client, upstream)
                if upstream in ready:
                    data = upstream.recv(faults.chunk)
                    if not data:
                        break
                    low, high = faults.delay
                    if high:
                        time.sleep(random.uniform(low, high))
                    sent_down = self.relay(data, client, sent_down, faults.reset_after_response)
                    if sent_down < 0:
                        return self.reset_both(client, upstream)
        except OSError:
            pass
        client.close()
        upstream.close()

    def relay(self, data: bytes, sink: socket.socket, sent: int, limit: int | None) -> int:
        """Pass `data` on; the bytes sent so far in that direction, or -1 when `limit` was
        reached (what fits under it went out, and the connection is to be reset)."""
        if limit is not None and sent + len(data) >= limit:
            sink.sendall(data[: limit - sent])
            self.count(resets=1)
            return -1
        sink.sendall(data)
        return sent + len(data)

    def reset_both(self, client: socket.socket, upstream: socket.socket) -> None:
        reset(client)
        reset(upstream)

    def answer(self, client: socket.socket, faults: Faults) -> None:
        """Read one request's head and answer it with `faults.status`, then close."""
        head = b""
        try:
            client.settimeout(5)
            while b"\r\n\r\n" not in head:
                data = client.recv(64 * 1024)
                if not data:
                    return client.close()
                head += data
            body = b"" if head.startswith(b"HEAD ") else faults.body
            client.sendall(
                f"HTTP/1.1 {faults.status} Injected\r\nContent-Type: {faults.content_type}\r\n"
                f"Content-Length: {len(faults.body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
        except OSError:
            pass
        client.close()

    def swallow(self, client: socket.socket) -> None:
        """Read whatever comes and never answer, until the client gives up or the proxy stops."""
        try:
            while not self.stopping.is_set():
                ready, _, _ = select.select([client], [], [], 0.1)
                if ready and not client.recv(64 * 1024):
                    break
        except OSError:
            pass
        client.close()
