"""`stablepipe land`: a collector that lands MQTT sensor readings as Parquet files in a folder or
an S3 prefix, where incremental runs (`stablepipe run --data DIR --incremental`) train on them.

MQTT keeps no history, so the collector subscribes with a persistent session and a fixed client
id at QoS 1 (MQTT 5 with a session expiry interval; 3.1.1 with clean session off where the broker
has no MQTT 5): readings published while it is down wait at the broker and arrive when it
reconnects with the same client id.

Nothing is lost, nothing lands twice:

- A reading is acknowledged to the broker (manual PUBACK) only after it is appended to the spool
  and the spool is flushed to disk (fsync). A reading received but not yet acknowledged when the
  collector dies is sent again by the broker.
- The spool is a sequence of segment files (`segment-<n>.spool`, length-prefixed frames of
  topic, payload and arrival time). A closed segment is landed as one Parquet file whose name
  follows from the segment (`readings-<first arrival>-<client id>-<digest>.parquet`), written
  whole or not at all, and then dropped; a collector that dies between the two lands the
  segment again on start under the same name, which is skipped when it exists. While the
  destination fails, segments wait in the spool and are tried again at each rotation.
- A reading the broker sends again (the DUP flag) whose topic and payload are in the current or
  the last landed segment was already spooled: its acknowledgement was lost, and it is dropped.
  After a lost connection, so is the first copy of any reading that was unacknowledged or
  acknowledged in the last RESENT_SECONDS (a broker restored from its persistence sends those
  without the flag).

Payloads that are not a JSON object are counted and put aside, never fatal: they land in
`_rejected/` beside the Parquet files (any side file in the landing folder starts with `_` or
`.`, which the folder reader skips).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import os
import re
import signal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from components.common.errors import BadInputError, Unavailable

MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
ENVIRONMENT = {
    "username": "STABLEPIPE_MQTT_USERNAME",
    "password": "STABLEPIPE_MQTT_PASSWORD",
    "ca_file": "STABLEPIPE_MQTT_CA_FILE",
}
FRAME = struct.Struct(">dII")  # arrival time, topic bytes, payload bytes
SEGMENT = re.compile(r"segment-(\d{8})\.spool$")
LANDED_SEGMENT = "landed.spool"  # the last landed segment, kept for the DUP check
CONNECT_TRIES = 3
KEEPALIVE_SECONDS = 30
RECONNECT_PAUSE_MAX = 30.0
LOOP_SECONDS = 0.1
# readings are acknowledged in batches: after one fsync of the spool for up to ACK_BATCH of them,
# or ACK_SECONDS after the oldest (a broker sends only so many unacknowledged ones: 20 by
# default in Mosquitto)
ACK_BATCH = 100
ACK_SECONDS = 0.02
RESENT_SECONDS = 10.0
# MQTT 5: how long the broker keeps the session (and queues readings) while the collector is
# away; a week
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
# CONNACK codes of a broker without MQTT 5 (3.1.1's "unacceptable protocol version" read as v5,
# and v5's own "unsupported protocol version")
UNSUPPORTED_PROTOCOL = (1, 132)
# seconds the first MQTT 5 CONNECT may go unanswered before 3.1.1 is tried
CONNACK_SECONDS = 5.0


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool

    @property
    def shown(self) -> str:
        return f"{self.host}:{self.port}"


def parse_broker(url: str) -> Broker:
    """`mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (TLS, 8883); BadInputError naming
    what is wrong (a user or password in the URL is refused: they come from the environment)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in MQTT_PORTS:
        raise BadInputError(
            f"--from must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; got {url!r}"
        )
    if "@" in parts.netloc:
        raise BadInputError(
            f"--from must not carry a user or password (set {ENVIRONMENT['username']} and "
            f"{ENVIRONMENT['password']}); got a URL with '@' for host {parts.hostname!r}"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise BadInputError(
            f"--from is the broker only, mqtt://HOST[:PORT] (the topic filter is --topic); "
            f"got {url!r}"
        )
    try:
        port = parts.port or MQTT_PORTS[parts.scheme]
    except ValueError:
        raise BadInputError(f"--from has an invalid port; got {url!r}") from None
    if not parts.hostname:
        raise BadInputError(f"--from needs a host: mqtt://HOST[:PORT]; got {url!r}")
    return Broker(parts.hostname, port, parts.scheme == "mqtts")


def check_topic_filter(topic: str) -> str:
    """An MQTT topic filter: `+` a whole level, `#` only the whole last level."""
    levels = topic.split("/")
    problem = ""
    if not topic or len(topic.encode()) > 65535 or "\0" in topic:
        problem = "must be a non-empty topic filter"
    elif any(
        "#" in level and (level != "#" or i != len(levels) - 1) for i, level in enumerate(levels)
    ):
        problem = "may use '#' only as its whole last level (sensors/#)"
    elif any("+" in level and level != "+" for level in levels):
        problem = "may use '+' only as a whole level (sensors/+/temperature)"
    if problem:
        raise BadInputError(f"--topic {problem}; got {topic!r}")
    return topic


def default_client_id(source: str, topic: str, destination: str) -> str:
    """A client id that stays the same for the same feed and landing place: brokers keep
    persistent sessions by client id (many only for named clients)."""
    digest = hashlib.sha256(f"{source}\n{topic}\n{destination}".encode()).hexdigest()[:12]
    return f"stablepipe-land-{digest}"


@dataclass(frozen=True)
class Reading:
    topic: str
    payload: bytes
    received_at: float

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.topic.encode() + b"\0" + self.payload).digest()

    def frame(self) -> bytes:
        topic = self.topic.encode()
        return FRAME.pack(self.received_at, len(topic), len(self.payload)) + topic + self.payload


def read_frames(path: Path) -> list[Reading]:
    """The readings of a spool segment; a frame cut short by a crash ends it (that reading was
    never acknowledged, so the broker sends it again)."""
    data = path.read_bytes()
    readings, at = [], 0
    while at + FRAME.size <= len(data):
        received, topic_size, payload_size = FRAME.unpack_from(data, at)
        end = at + FRAME.size + topic_size + payload_size
        if end > len(data):
            break
        topic = data[at + FRAME.size : at + FRAME.size + topic_size].decode("utf-8", "replace")
        readings.append(Reading(topic, data[at + FRAME.size + topic_size : end], received))
        at = end
    return readings


@dataclass
class Landing:
    """Where segments land: the storage of the folder or prefix."""

    destination: str
    endpoint: str
    client: str  # the client id: part of every file name (collectors may share a folder)

    def __post_init__(self) -> None:
        from components.common.storage import open_storage

        self.store = open_storage(self.destination, self.endpoint)

    def land(self, readings: list[Reading]) -> tuple[str, int, int]:
        """Write the readings as one Parquet file (and the rejected ones aside), named by the
        time of the first, the client id and a digest of the segment; returns the file's URI,
        the rows and the payloads put aside. Skipped when a file of that name exists: the same
        segment, landed before a crash."""
        first = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(readings[0].received_at))
        digest = hashlib.sha256(b"".join(r.frame() for r in readings)).hexdigest()[:12]
        name = f"readings-{first}-{re.sub(r'[^A-Za-z0-9_.-]', '-', self.client)}-{digest}"
        key = f"{name}.parquet"
        table, rejected = readings_table(readings)
        if rejected:
            lines = "".join(json.dumps(entry) + "\n" for entry in rejected)
            self.store.put_bytes(lines.encode(), f"_rejected/{name}.jsonl")
        if table.num_rows and not self.store.exists(key):
            self.store.put_bytes(parquet_bytes(table), key)
        return self.store.uri_of(key), table.num_rows, len(rejected)


def readings_table(readings: list[Reading]) -> tuple[Any, list[dict[str, Any]]]:
    """The readings whose payload is a JSON object as a table with `mqtt_topic` and
    `received_at` (UTC) added unless the payload has such a field; the others as entries to
    put aside (topic, arrival, the payload in base64). Parsed by Arrow in one go, reading by
    reading only when some payload is not an object."""
    import pyarrow as pa

    from components.core.source.records import json_records, rows_table

    table, bad = json_records([r.payload for r in readings])
    kept = readings
    rejected: list[dict[str, Any]] = []
    if bad or table.num_rows != len(readings):
        kept, rows = [], []
        for reading in readings:
            try:
                row = json.loads(reading.payload)
            except (ValueError, UnicodeDecodeError):
                row = None
            if isinstance(row, dict) and row:
                kept.append(reading)
                rows.append(row)
            else:
                rejected.append(
                    {
                        "topic": reading.topic,
                        "received_at": reading.received_at,
                        "payload_base64": base64.b64encode(reading.payload).decode(),
                    }
                )
        table = rows_table(rows) if rows else pa.table({})
    if not kept:
        return pa.table({}), rejected
    arrival = pa.array([int(r.received_at * 1e6) for r in kept], pa.int64())
    added = {
        "mqtt_topic": pa.array([r.topic for r in kept], pa.string()),
        "received_at": arrival.cast(pa.timestamp("us", "UTC")),
    }
    for name, column in added.items():
        if name not in table.column_names:
            table = table.append_column(name, column)
    return table, rejected


def parquet_bytes(table: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


@dataclass
class Spool:
    """The segment files in `folder`: readings appended to the current one and synced; closed
    segments landed whole, in order (kept, and tried again, while the destination fails)."""

    folder: Path
    number: int = 0
    handle: Any = None
    started: float = 0.0  # the first reading of the current segment (0: none yet)
    size: int = 0
    count: int = 0
    # digests of the readings in the spool: the last landed segment's, the waiting segments'
    # and the current one's (for the DUP check)
    recent: set[bytes] = field(default_factory=set)
    current: set[bytes] = field(default_factory=set)

    def open(self) -> None:
        """Start a new segment after those a previous collector left (landed by `land`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in [*self.waiting(), self.folder / LANDED_SEGMENT]:
            if path.exists():
                self.recent.update(r.digest for r in read_frames(path))
        numbers = [int(SEGMENT.search(p.name).group(1)) for p in self.waiting()]  # type: ignore[union-attr]
        self.number = max(numbers, default=0)
        self.start_segment()

    def path(self, number: int) -> Path:
        return self.folder / f"segment-{number:08d}.spool"

    def waiting(self) -> list[Path]:
        """The closed segments not landed yet, oldest first."""
        current = self.path(self.number) if self.handle is not None else None
        return sorted(p for p in self.folder.glob("segment-*.spool") if p != current)

    def start_segment(self) -> None:
        self.number += 1
        self.handle = self.path(self.number).open("ab")
        self.started, self.size, self.count = 0.0, 0, 0
        self.current = set()

    def append(self, reading: Reading) -> None:
        frame = reading.frame()
        self.handle.write(frame)
        self.recent.add(reading.digest)
        self.current.add(reading.digest)
        self.size += len(frame)
        self.count += 1
        self.started = self.started or time.time()

    def sync(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def rotate(self) -> None:
        """Close the current segment (synced) and start the next."""
        self.sync()
        self.handle.close()
        self.handle = None
        self.start_segment()

    def land(self, landing: Landing, say: Callable[[str], None]) -> tuple[int, int, int]:
        """Land the waiting segments, oldest first; returns the rows, rejected payloads and
        files landed. A segment that cannot be landed (the destination failing) stays, with
        those after it, for the next try."""
        rows = rejected = files = 0
        last: list[Reading] | None = None  # the last segment landed now
        for path in self.waiting():
            readings = read_frames(path)
            if not readings:
                path.unlink()
                continue
            try:
                uri, landed, aside = landing.land(readings)
            except Exception as error:
                say(
                    f"landing failed, {len(self.waiting())} segment(s) kept in the spool to "
                    f"land later: {type(error).__name__}: {str(error).splitlines()[0]}"
                )
                break
            note = f" ({aside} payload(s) put aside in _rejected/)" if aside else ""
            say(f"landed {landed} reading(s) -> {uri}{note}")
            path.replace(self.folder / LANDED_SEGMENT)  # kept for the DUP check until the next
            rows, rejected, files = rows + landed, rejected + aside, files + (1 if landed else 0)
            last = readings
        if last is not None:  # what the spool holds now
            self.recent = {r.digest for r in last} | self.current
            for other in self.waiting():
                self.recent.update(r.digest for r in read_frames(other))
        return rows, rejected, files

    def close(self) -> None:
        if self.handle is not None:
            self.sync()
            self.handle.close()
            self.handle = None


@dataclass
class LandFacts:
    received: int = 0
    duplicates: int = 0
    landed: int = 0
    rejected: int = 0
    files: int = 0
    kept: int = 0  # segments that could not be landed (the destination failing)


@dataclass(frozen=True)
class LandOptions:
    source: str
    topic: str
    destination: str
    client_id: str = ""
    max_messages: int = 0
    max_seconds: float = 0.0
    rotate_mb: float = 16.0
    rotate_seconds: float = 60.0
    spool: str = ""
    s3_endpoint: str = ""

    def checked(self) -> LandOptions:
        parse_broker(self.source)
        check_topic_filter(self.topic)
        for name in ("max_messages", "max_seconds"):
            if getattr(self, name) < 0:
                raise BadInputError(
                    f"--{name.replace('_', '-')} must be 0 or more; got {getattr(self, name)!r}"
                )
        for name in ("rotate_mb", "rotate_seconds"):
            if not getattr(self, name) > 0:
                raise BadInputError(
                    f"--{name.replace('_', '-')} must be positive; got {getattr(self, name)!r}"
                )
        if not self.destination.strip():
            raise BadInputError("--to needs a folder or s3://bucket/prefix; got ''")
        if self.client_id and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", self.client_id):
            raise BadInputError(
                f"--client-id must be 1 to 128 letters, digits, '_', '.', ':' or '-'; "
                f"got {self.client_id!r}"
            )
        return self

    @property
    def client(self) -> str:
        return self.client_id or default_client_id(self.source, self.topic, self.destination)

    @property
    def spool_folder(self) -> Path:
        """Beside a local landing folder (hidden), else `.stablepipe-land/<client id>`."""
        if self.spool:
            return Path(self.spool)
        if not self.destination.startswith("s3://"):
            return Path(self.destination) / ".spool" / self.client
        return Path(".stablepipe-land") / self.client


class Collector:
    """The MQTT client, the spool and the landing, driven by one loop in one thread."""

    def __init__(self, options: LandOptions, out: TextIO) -> None:
        import paho.mqtt.client as mqtt

        self.options = options
        self.broker = parse_broker(options.source)
        self.out = out
        self.facts = LandFacts()
        self.landing = Landing(options.destination, options.s3_endpoint, options.client)
        self.spool = Spool(options.spool_folder)
        self.pending: list[tuple[int, bytes]] = []  # packet id and digest, not acknowledged
        self.pending_since = 0.0
        # readings acknowledged lately: (when, digest); a broker that goes down may not have
        # taken the acknowledgement, and sends the reading again
        self.acked: collections.deque[tuple[float, bytes]] = collections.deque()
        # readings the broker may send again after a lost connection, each dropped once when
        # it comes within RESENT_SECONDS of the reconnection: {digest: until (monotonic)}
        self.maybe_resent: set[bytes] = set()
        self.resent: dict[bytes, float] = {}
        self.subscribed = False
        self.connected = False  # a connection was accepted (with this protocol)
        self.refused = ""
        self.stopping = ""
        self.version = mqtt.MQTTv5  # MQTT 5 where the broker has it, else 3.1.1
        self.downgrade = False
        self.asked = 0.0  # when the last CONNECT was sent
        self.client = self.make_client()

    def make_client(self) -> Any:
        """A client of `self.version` keeping its session: MQTT 5 with clean start off and a
        session expiry interval (without one a v5 session ends with the connection), or 3.1.1
        with clean session off; acknowledgements sent by this collector (manual)."""
        import paho.mqtt.client as mqtt

        v5 = self.version == mqtt.MQTTv5
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.options.client,
            clean_session=None if v5 else False,
            protocol=self.version,
            manual_ack=True,
        )
        username = os.environ.get(ENVIRONMENT["username"], "")
        if username:
            client.username_pw_set(username, os.environ.get(ENVIRONMENT["password"], "") or None)
        if self.broker.tls:
            ca_file = os.environ.get(ENVIRONMENT["ca_file"]) or None
            try:
                client.tls_set(ca_certs=ca_file)
            except (OSError, ValueError) as error:
                raise BadInputError(
                    f"{ENVIRONMENT['ca_file']} {ca_file!r} cannot be used for TLS: {error}"
                ) from None
        client.on_connect = self.on_connect
        client.on_subscribe = self.on_subscribe
        client.on_message = self.on_message
        client.on_disconnect = self.on_disconnect
        return client

    @property
    def protocol(self) -> str:
        import paho.mqtt.client as mqtt

        return "MQTT 5" if self.version == mqtt.MQTTv5 else "MQTT 3.1.1"

    def connect_once(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.asked = time.monotonic()
        if self.version != mqtt.MQTTv5:
            self.client.connect(self.broker.host, self.broker.port, KEEPALIVE_SECONDS)
            return
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self.client.connect(
            self.broker.host,
            self.broker.port,
            KEEPALIVE_SECONDS,
            clean_start=False,
            properties=properties,
        )

    def fall_back(self) -> None:
        """The broker does not speak MQTT 5: the same session over 3.1.1."""
        import paho.mqtt.client as mqtt

        self.client.on_disconnect = None  # not an outage: no "reconnecting" line
        self.client.disconnect()
        self.version, self.downgrade = mqtt.MQTTv311, False
        self.client = self.make_client()
        self.connect()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def on_connect(self, client: Any, _data: Any, flags: Any, reason: Any, _props: Any) -> None:
        import paho.mqtt.client as mqtt

        if reason.is_failure or reason.value != 0:
            if self.version == mqtt.MQTTv5 and reason.value in UNSUPPORTED_PROTOCOL:
                self.downgrade = True
            else:
                self.refused = f"the broker {self.broker.shown} refused the connection: {reason}"
            return
        if self.connected and not flags.session_present:
            self.say(
                f"the broker {self.broker.shown} kept no session for {self.options.client!r}: "
                "readings published while the collector was away are lost"
            )
        until = time.monotonic() + RESENT_SECONDS
        self.resent = dict.fromkeys(self.maybe_resent, until) if flags.session_present else {}
        self.maybe_resent = set()
        self.connected = True
        client.subscribe(self.options.topic, qos=1)

    def on_subscribe(self, _client: Any, _data: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if any(reason.is_failure or reason.value < 1 for reason in reasons):
            granted = "refused" if any(r.is_failure for r in reasons) else "granted only QoS 0"
            self.refused = (
                f"the broker {self.broker.shown} {granted} the subscription to "
                f"{self.options.topic!r} for client {self.options.client!r} (QoS 1 is needed "
                "for no reading to be lost)"
            )
            return
        if not self.subscribed:
            self.subscribed = True
            self.say(
                f"subscribed to {self.options.topic!r} on {self.broker.shown} as client "
                f"{self.options.client!r} (QoS 1, persistent session, {self.protocol}); "
                "landing in "
                f"{self.landing.store.uri_of('')}"
            )

    def on_message(self, _client: Any, _data: Any, message: Any) -> None:
        reading = Reading(message.topic, bytes(message.payload), time.time())
        digest = reading.digest
        resent = self.resent.pop(digest, 0.0) >= time.monotonic()
        if resent or (message.dup and digest in self.spool.recent):
            self.facts.duplicates += 1  # spooled before; its acknowledgement was lost
        else:
            self.spool.append(reading)
            self.facts.received += 1
        if message.qos > 0:
            if not self.pending:
                self.pending_since = time.monotonic()
            self.pending.append((message.mid, digest))

    def on_disconnect(
        self, _client: Any, _data: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        # What the broker will send again: the readings not acknowledged (packet ids of one
        # connection mean nothing on the next), and those acknowledged in the last
        # RESENT_SECONDS (a broker stopped then may not have taken the acknowledgement; one
        # restored from its persistence sends them without the DUP flag).
        since = time.monotonic() - RESENT_SECONDS
        self.maybe_resent.update(digest for when, digest in self.acked if when >= since)
        self.maybe_resent.update(digest for _, digest in self.pending)
        self.pending.clear()
        if not self.stopping:
            self.say(f"disconnected from {self.broker.shown} ({reason}); reconnecting")

    def connect(self) -> None:
        """The first connection: CONNECT_TRIES tries, then Unavailable (exit 1)."""
        for attempt in range(1, CONNECT_TRIES + 1):
            try:
                self.connect_once()
                return
            except OSError as error:
                if attempt == CONNECT_TRIES:
                    raise Unavailable(
                        f"the MQTT broker {self.broker.shown} did not answer after "
                        f"{CONNECT_TRIES} tries: {error}"
                    ) from None
                time.sleep(attempt)

    def acknowledge(self, now: bool = False) -> None:
        """Sync the spool, then acknowledge what it holds: a batch (or `now`)."""
        if not self.pending:
            return
        waited = time.monotonic() - self.pending_since
        if not now and len(self.pending) < ACK_BATCH and waited < ACK_SECONDS:
            return
        self.spool.sync()
        now_at = time.monotonic()
        for mid, digest in self.pending:
            self.client.ack(mid, 1)
            self.acked.append((now_at, digest))
        self.pending.clear()
        while self.acked and self.acked[0][0] < now_at - RESENT_SECONDS:
            self.acked.popleft()

    def rotate(self) -> None:
        """Close the current segment if it holds readings, and land what waits."""
        if self.spool.count:
            self.spool.rotate()
        self.land()

    def land(self) -> None:
        rows, rejected, files = self.spool.land(self.landing, self.say)
        self.facts.landed += rows
        self.facts.rejected += rejected
        self.facts.files += files

    def due(self, began: float) -> str:
        """Why the collector should stop now ('' to go on)."""
        options = self.options
        if self.stopping:
            return self.stopping
        if options.max_messages and self.facts.received >= options.max_messages:
            return f"--max-messages {options.max_messages} reached"
        if options.max_seconds and time.monotonic() - began >= options.max_seconds:
            return f"--max-seconds {options.max_seconds:g} reached"
        return ""

    def run(self) -> LandFacts:
        import paho.mqtt.client as mqtt

        try:
            self.spool.open()
        except OSError as error:
            raise BadInputError(
                f"--spool folder {str(self.spool.folder)!r} cannot be used: {error.strerror}"
            ) from None
        self.land()  # what a previous collector left
        began = time.monotonic()
        pause = 1.0
        self.connect()
        try:
            while not self.due(began):
                code = self.client.loop(timeout=LOOP_SECONDS)
                if self.refused:
                    raise Unavailable(self.refused)
                first_try = not self.connected and self.version == mqtt.MQTTv5
                unanswered = first_try and time.monotonic() - self.asked > CONNACK_SECONDS
                if self.downgrade or (first_try and code != mqtt.MQTT_ERR_SUCCESS) or unanswered:
                    # refused as MQTT 5, or the connection closed or left unanswered (a 3.1.1
                    # broker may ignore a CONNECT it cannot read)
                    self.fall_back()
                    continue
                if code != mqtt.MQTT_ERR_SUCCESS:
                    self.wait(pause)
                    try:
                        self.client.reconnect()
                        pause = 1.0
                    except OSError:
                        pause = min(RECONNECT_PAUSE_MAX, pause * 2)
                    continue
                self.acknowledge()
                spool = self.spool
                if spool.size >= self.options.rotate_mb * 2**20 or (
                    spool.count and time.time() - spool.started >= self.options.rotate_seconds
                ):
                    self.rotate()
            reason = self.due(began)
        finally:
            self.stopping = self.stopping or "stopped"
            if self.client.is_connected():
                self.acknowledge(now=True)
            self.spool.close()  # synced: what was acknowledged is on disk
            self.client.disconnect()
        self.land()  # the last segment too, closed above
        facts = self.facts
        facts.kept = len(self.spool.waiting())
        kept = (
            f"; {facts.kept} segment(s) kept in the spool, landed on the next start"
            if facts.kept
            else ""
        )
        self.say(
            f"stopped ({reason}): {facts.received} reading(s) received, {facts.landed} landed "
            f"in {facts.files} file(s), {facts.rejected} put aside, {facts.duplicates} "
            f"redelivered duplicate(s) dropped{kept}"
        )
        return facts

    def wait(self, seconds: float) -> None:
        """Sleep, but wake for a stop (SIGTERM during a reconnection's backoff)."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)


def land(options: LandOptions, out: TextIO = sys.stdout) -> LandFacts:
    """Run the collector until a limit is reached or SIGTERM/SIGINT asks it to stop; what it
    holds is landed before it returns."""
    collector = Collector(options.checked(), out)

    def stop(signum: int, _frame: Any) -> None:
        collector.stopping = f"{signal.Signals(signum).name} received"

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return collector.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
