"""Kafka topics as a source: `--data kafka://HOST:PORT[,HOST:PORT...]/TOPIC`.

A record's value is one row: a JSON object (its fields are the columns), or with
`?columns=a,b,c` a CSV line of those columns (`--delimiter`, default a comma). The table's
columns are the union of the records' fields; a field a record lacks is missing there.

A run reads a bounded snapshot: per partition, the offsets from a start to the end offset taken
when the run is planned, so a rerun of the same offsets reads the same records (the offsets are
the data's fingerprint and its lineage). An incremental run starts each partition at its
consumer group's committed offset (the beginning for a group with none), and the runner commits
the end offsets only after the run succeeds.

Records are parsed and written to Parquet in batches (`BATCH_RECORDS`), so memory does not grow
with the topic. Records that are not a JSON object (or a CSV line of the named columns) are
counted, not fatal: the quality check reports them; a snapshot of nothing but such records is
bad input.

Credentials only from the environment (on the cluster, a Secret): STABLEPIPE_KAFKA_USERNAME and
STABLEPIPE_KAFKA_PASSWORD (SASL), STABLEPIPE_KAFKA_SECURITY_PROTOCOL (default SASL_SSL with a
user name, otherwise PLAINTEXT), STABLEPIPE_KAFKA_SASL_MECHANISM (default SCRAM-SHA-512) and
STABLEPIPE_KAFKA_CA_FILE (the brokers' certificate authority).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from components.common.errors import BadInputError, Unavailable
from components.core.source.records import (
    conformed,
    csv_records,
    json_records,
    unified_schema,
)

log = logging.getLogger(__name__)
KAFKA_PREFIX = "kafka://"
# records parsed and written at a time: the ingest's memory is about this many rows
BATCH_RECORDS = 50_000
# seconds one metadata or offset request may take, tries before the broker counts as down,
# and the pause between them
REQUEST_SECONDS = 5.0
TRIES = 3
RETRY_PAUSE = 1.0
# seconds a read may go without a record before the broker counts as gone
STALL_SECONDS = 20.0
ENVIRONMENT = {
    "username": "STABLEPIPE_KAFKA_USERNAME",
    "password": "STABLEPIPE_KAFKA_PASSWORD",
    "protocol": "STABLEPIPE_KAFKA_SECURITY_PROTOCOL",
    "mechanism": "STABLEPIPE_KAFKA_SASL_MECHANISM",
    "ca_file": "STABLEPIPE_KAFKA_CA_FILE",
}
HOST_PORT = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$")
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def is_kafka_url(location: str) -> bool:
    return location.strip().lower().startswith(KAFKA_PREFIX)


@dataclass(frozen=True)
class KafkaTopic:
    """A topic named by `--data kafka://...`."""

    bootstrap: str  # HOST:PORT[,HOST:PORT...]
    topic: str
    columns: tuple[str, ...] = ()  # CSV records: their columns; () = JSON objects

    @property
    def location(self) -> str:
        query = f"?columns={','.join(self.columns)}" if self.columns else ""
        return f"{KAFKA_PREFIX}{self.bootstrap}/{self.topic}{query}"


def parse_kafka_url(url: str) -> KafkaTopic:
    """The topic of `kafka://HOST:PORT[,HOST:PORT]/TOPIC[?columns=a,b]`; BadInputError naming
    what is wrong (a user or password in the URL is refused: they come from the environment)."""
    form = "kafka://HOST:PORT/TOPIC"
    parts = urlsplit(url.strip())
    if "@" in parts.netloc:
        raise BadInputError(
            f"--data must not carry a Kafka user or password (set {ENVIRONMENT['username']} "
            f"and {ENVIRONMENT['password']}); got a URL with '@' for {parts.path.strip('/')!r}"
        )
    hosts = [h for h in parts.netloc.split(",") if h]
    if not hosts or not all(HOST_PORT.match(h) for h in hosts):
        raise BadInputError(f"--data Kafka brokers must be HOST:PORT[,HOST:PORT]; got {url!r}")
    topic = parts.path.strip("/")
    if not TOPIC_NAME.match(topic):
        raise BadInputError(f"--data needs a topic name: {form}; got {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"columns"})
    if unknown or parts.fragment:
        raise BadInputError(
            f"--data Kafka URL takes only ?columns=a,b,c (CSV records); got {url!r}"
        )
    columns = tuple(c.strip() for c in ",".join(query.get("columns", [])).split(",") if c.strip())
    if "columns" in query and not columns:
        raise BadInputError(f"--data ?columns= needs column names (a,b,c); got {url!r}")
    if len(set(columns)) != len(columns):
        raise BadInputError(f"--data ?columns= names a column twice; got {url!r}")
    return KafkaTopic(",".join(hosts), topic, columns)


class LibrdkafkaLog:
    """librdkafka's own log lines as records of this module's logger at INFO (a stage's log
    keeps them), never written to stderr by the C library: a failed run's stderr is its one
    line. confluent-kafka calls `log` with the syslog level mapped to Python's."""

    def log(self, level: int, message: str, *args: Any) -> None:
        log.info(message, *args)


def client_config(topic: KafkaTopic) -> dict[str, Any]:
    """The librdkafka settings of a client of the topic's brokers, credentials from the
    environment."""
    config: dict[str, Any] = {
        "bootstrap.servers": topic.bootstrap,
        "log_level": 4,
        "logger": LibrdkafkaLog(),
    }
    username = os.environ.get(ENVIRONMENT["username"], "")
    protocol = os.environ.get(ENVIRONMENT["protocol"], "") or ("SASL_SSL" if username else "")
    if protocol:
        config["security.protocol"] = protocol
    if username:
        config["sasl.mechanism"] = os.environ.get(ENVIRONMENT["mechanism"], "") or "SCRAM-SHA-512"
        config["sasl.username"] = username
        config["sasl.password"] = os.environ.get(ENVIRONMENT["password"], "")
    if ca_file := os.environ.get(ENVIRONMENT["ca_file"], ""):
        config["ssl.ca.location"] = ca_file
    return config


@dataclass(frozen=True)
class OffsetRange:
    """One partition's records of a snapshot: offsets `first` up to, not including, `end`."""

    partition: int
    first: int
    end: int

    @property
    def records(self) -> int:
        return max(0, self.end - self.first)

    @property
    def part(self) -> str:
        """How a range travels as one of the run's `files`: `PARTITION:FIRST-END`."""
        return f"{self.partition}:{self.first}-{self.end}"

    @classmethod
    def of_part(cls, part: str) -> OffsetRange:
        match = re.fullmatch(r"(\d+):(\d+)-(\d+)", part.strip())
        if not match:
            raise BadInputError(f"a Kafka offset range is PARTITION:FIRST-END; got {part!r}")
        partition, first, end = map(int, match.groups())
        return cls(partition, first, end)

    def lineage(self, topic: str) -> dict[str, Any]:
        """The summary's entry: the first and last offsets read (inclusive)."""
        return {
            "topic": topic,
            "partition": self.partition,
            "first": self.first,
            "last": self.end - 1,
            "records": self.records,
        }


@dataclass(frozen=True)
class Snapshot:
    """What a run reads of a topic: the new records, and (--window) earlier ones."""

    topic: KafkaTopic
    new: tuple[OffsetRange, ...]
    window: tuple[OffsetRange, ...] = ()
    # offsets after the group's committed ones that retention deleted before this run
    skipped: int = 0

    @property
    def ranges(self) -> tuple[OffsetRange, ...]:
        """The ranges read, one per partition: a partition's window ends where its new records
        begin, so the two are read as one range."""
        merged: dict[int, OffsetRange] = {}
        for r in (*self.window, *self.new):
            if not r.records:
                continue
            seen = merged.get(r.partition)
            if seen is not None and (seen.end < r.first or r.end < seen.first):
                raise BadInputError(
                    f"Kafka offset ranges {seen.part} and {r.part} of one partition leave a gap"
                )
            merged[r.partition] = (
                r
                if seen is None
                else OffsetRange(r.partition, min(seen.first, r.first), max(seen.end, r.end))
            )
        return tuple(merged[p] for p in sorted(merged))

    @property
    def parts(self) -> list[str]:
        return [r.part for r in self.ranges]

    @property
    def new_records(self) -> int:
        return sum(r.records for r in self.new)

    def ends(self) -> dict[int, int]:
        """The offset to commit per partition once the run succeeded."""
        return {r.partition: r.end for r in self.new}


def retried(what: str, topic: KafkaTopic, call: Callable[[], Any]) -> Any:
    """`call`, tried TRIES times while the brokers do not answer; then Unavailable (exit 1)."""
    from confluent_kafka import KafkaException

    for attempt in range(1, TRIES + 1):
        try:
            return call()
        except KafkaException as error:
            detail = kafka_detail(error)
            if attempt == TRIES:
                raise Unavailable(
                    f"the Kafka brokers {topic.bootstrap} did not answer {what} after {TRIES} "
                    f"tries: {detail}"
                ) from None
            time.sleep(RETRY_PAUSE * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def consumer(topic: KafkaTopic, group: str = "") -> Any:
    """A consumer that reads assigned partitions only (no group membership, no automatic
    commit); `group` names the consumer group whose offsets it reads and commits."""
    from confluent_kafka import Consumer, KafkaException

    try:
        return Consumer(
            {
                **client_config(topic),
                "group.id": group or "stablepipe-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # an offset that is gone (deleted by retention after the plan) is an error,
                # never a silent jump to other records
                "auto.offset.reset": "error",
                "socket.timeout.ms": int(REQUEST_SECONDS * 1000),
                "fetch.max.bytes": 64 * 2**20,
            }
        )
    except KafkaException as error:  # a setting librdkafka refuses (protocol, CA file, ...)
        raise BadInputError(
            f"the Kafka client for {topic.bootstrap} cannot be set up: {kafka_detail(error)} "
            f"(check the {', '.join(sorted(ENVIRONMENT.values()))} variables)"
        ) from None


def kafka_detail(error: Exception) -> str:
    """The one-line reason of a KafkaException."""
    first = error.args[0] if error.args else error
    return str(first.str() if hasattr(first, "str") else first)


def partitions_of(client: Any, topic: KafkaTopic) -> list[int]:
    """The topic's partitions; BadInputError when the brokers do not have it."""
    metadata = retried(
        "a metadata request", topic, lambda: client.list_topics(timeout=REQUEST_SECONDS)
    )
    found = metadata.topics.get(topic.topic)
    if found is None or found.error is not None:
        names = sorted(t for t in metadata.topics if not t.startswith("__"))
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") or "none"
        raise BadInputError(
            f"--data Kafka topic {topic.topic!r} does not exist on {topic.bootstrap} "
            f"(topics: {shown})"
        )
    return sorted(found.partitions)


def take_snapshot(
    location: str, group: str = "", incremental: bool = False, window: int = 0
) -> Snapshot:
    """The records a run reads now: every partition up to its end offset, from the beginning,
    or (incremental) from the group's committed offset with up to `window` earlier records of
    each partition. BadInputError for a missing or (not incremental) empty topic."""
    from confluent_kafka import TopicPartition

    topic = parse_kafka_url(location)
    client = consumer(topic, group)
    try:
        partitions = partitions_of(client, topic)

        def offsets(partition: int) -> tuple[int, int]:
            asked = TopicPartition(topic.topic, partition)
            return tuple(client.get_watermark_offsets(asked, timeout=REQUEST_SECONDS, cached=False))

        bounds = {
            p: retried("an offsets request", topic, functools.partial(offsets, p))
            for p in partitions
        }
        starts = {p: low for p, (low, _) in bounds.items()}
        skipped = 0
        if incremental:
            asked = [TopicPartition(topic.topic, p) for p in partitions]
            committed = retried(
                "a committed-offsets request",
                topic,
                lambda: client.committed(asked, timeout=REQUEST_SECONDS),
            )
            for entry in committed:
                if entry.offset >= 0:  # a group with none starts at the beginning
                    low, high = bounds[entry.partition]
                    # records below the earliest offset were deleted by retention; an offset
                    # past the end belongs to an earlier topic of that name (deleted and made
                    # anew): this one is read from its beginning, as Kafka's own consumers do
                    if entry.offset > high:
                        continue
                    skipped += max(0, low - entry.offset)
                    starts[entry.partition] = max(entry.offset, low)
    finally:
        client.close()
    new = tuple(OffsetRange(p, starts[p], max(starts[p], bounds[p][1])) for p in partitions)
    earlier = tuple(
        OffsetRange(p, max(bounds[p][0], starts[p] - window), starts[p])
        for p in partitions
        if window
    )
    snapshot = Snapshot(topic, new, earlier, skipped)
    if not incremental and not snapshot.new_records:
        raise BadInputError(
            f"--data Kafka topic {topic.topic!r} holds no records: nothing to train on"
        )
    return snapshot


def snapshot_of_parts(location: str, parts: tuple[str, ...]) -> Snapshot:
    """The snapshot a run was given as `files` (PARTITION:FIRST-END), or, given none, the
    whole topic as it is now."""
    if not parts:
        return take_snapshot(location)
    return Snapshot(parse_kafka_url(location), tuple(OffsetRange.of_part(p) for p in parts))


def lineage(location: str, parts: tuple[str, ...]) -> list[dict[str, Any]]:
    """The offsets a snapshot reads, per partition (topic, partition, first, last, records)."""
    snapshot = snapshot_of_parts(location, parts)
    return [r.lineage(snapshot.topic.topic) for r in snapshot.ranges]


def fingerprint(location: str, parts: tuple[str, ...]) -> str:
    """SHA-256 of the snapshot's identity: the brokers, topic, record format and offsets. The
    same offsets of a topic are the same records."""
    snapshot = snapshot_of_parts(location, parts)
    identity = {"kafka": snapshot.topic.location, "ranges": sorted(snapshot.parts)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def commit(location: str, group: str, ends: dict[int, int]) -> None:
    """Commit the group's offsets (the next record to read, per partition): after a run
    succeeded."""
    from confluent_kafka import TopicPartition

    topic = parse_kafka_url(location)
    client = consumer(topic, group)
    try:
        offsets = [TopicPartition(topic.topic, p, end) for p, end in sorted(ends.items())]
        retried(
            "an offset commit", topic, lambda: client.commit(offsets=offsets, asynchronous=False)
        )
    finally:
        client.close()


def record_values(snapshot: Snapshot, group: str = "") -> Iterator[list[bytes | None]]:
    """The snapshot's record values, in batches of up to BATCH_RECORDS; Unavailable when the
    brokers stop answering for STALL_SECONDS."""
    ranges = snapshot.ranges
    if not ranges:
        return
    from confluent_kafka import KafkaException

    topic = snapshot.topic
    client = consumer(topic, group)
    try:
        yield from read_ranges(client, topic, ranges)
    except KafkaException as error:
        raise Unavailable(
            f"reading Kafka topic {topic.topic!r} from {topic.bootstrap} failed: "
            f"{kafka_detail(error)}"
        ) from None
    finally:
        client.close()


def read_ranges(
    client: Any, topic: KafkaTopic, ranges: tuple[OffsetRange, ...]
) -> Iterator[list[bytes | None]]:
    """The body of `record_values`: the assigned ranges read to their ends. Errors the client
    retries itself (a broker restarting) are waited out up to STALL_SECONDS without a record."""
    from confluent_kafka import KafkaError, TopicPartition

    ends = {r.partition: r.end for r in ranges}
    client.assign([TopicPartition(topic.topic, r.partition, r.first) for r in ranges])
    batch: list[bytes | None] = []
    last_record = time.monotonic()
    transient = (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._PARTITION_EOF)
    while ends:
        messages = client.consume(num_messages=10_000, timeout=1.0)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() in transient or error.retriable():
                    continue
                if error.code() == KafkaError._AUTO_OFFSET_RESET:
                    raise Unavailable(
                        f"records of Kafka topic {topic.topic!r} partition "
                        f"{message.partition()} planned for this run are gone (deleted by "
                        f"retention since): {error.str()}; run it again to read what is there"
                    )
                raise Unavailable(f"reading Kafka topic {topic.topic!r} failed: {error.str()}")
            end = ends.get(message.partition())
            if end is not None and message.offset() < end:
                batch.append(message.value())
                last_record = time.monotonic()
        if time.monotonic() - last_record > STALL_SECONDS:
            raise Unavailable(
                f"the Kafka brokers {topic.bootstrap} sent no record of {topic.topic!r} for "
                f"{STALL_SECONDS:.0f} s with {len(ends)} partition(s) unread"
            )
        # a partition is read once its position passes the end (gaps, e.g. transaction
        # markers, never arrive as records)
        positions = client.position([TopicPartition(topic.topic, p) for p in ends])
        done = [tp for tp in positions if tp.offset >= ends[tp.partition]]
        if done:
            client.incremental_unassign(done)
            for tp in done:
                del ends[tp.partition]
            last_record = time.monotonic()
        if len(batch) >= BATCH_RECORDS or (batch and not ends):
            yield batch
            batch = []


def parse_batch(
    values: list[bytes | None], columns: tuple[str, ...], delimiter: str
) -> tuple[Any, int]:
    """A batch of record values as an Arrow table, and how many were unreadable."""
    if columns:
        return csv_records(values, columns, delimiter)
    return json_records(values)


@dataclass(frozen=True)
class KafkaRead:
    """The snapshot written as one Parquet file, and the counts the run reports."""

    records: int  # rows read (readable records)
    unreadable: int
    columns: int


def write_snapshot(
    snapshot: Snapshot,
    output: Path,
    delimiter: str = "",
    clean: Callable[[Any], tuple[Any, int]] | None = None,
    none_kept: str = "",
) -> tuple[KafkaRead, int]:
    """Read the snapshot's records into `output` (Parquet, written whole or not at all):
    parsed a batch at a time into parts, then written under the batches' one schema.
    `clean` may drop rows of each batch (a missing target); returns the counts and the rows it
    dropped. BadInputError when no record is readable, or (`none_kept`) `clean` kept none."""
    import pyarrow.parquet as pq

    total = unreadable = dropped = 0
    with tempfile.TemporaryDirectory(prefix=".kafka-", dir=output.parent) as folder:
        parts: list[Path] = []
        schemas = []
        for values in record_values(snapshot):
            table, bad = parse_batch(values, snapshot.topic.columns, delimiter)
            total += len(values)
            unreadable += bad
            if table.num_rows == 0:
                continue
            if clean is not None:
                table, gone = clean(table)
                dropped += gone
            path = Path(folder) / f"part-{len(parts):05d}.parquet"
            pq.write_table(table, path)
            parts.append(path)
            schemas.append(table.schema)
        readable = total - unreadable
        if not readable:
            raise BadInputError(unreadable_message(snapshot.topic, total))
        if readable == dropped:
            raise BadInputError(
                none_kept or f"--data Kafka topic {snapshot.topic.topic!r}: no row kept"
            )
        schema = unified_schema(schemas)
        partial = output.with_name(output.name + ".partial")
        with pq.ParquetWriter(partial, schema) as writer:
            for path in parts:
                writer.write_table(conformed(pq.read_table(path), schema))
        partial.replace(output)
    return KafkaRead(readable, unreadable, len(schema)), dropped


def unreadable_message(topic: KafkaTopic, total: int) -> str:
    if not total:
        return f"--data Kafka topic {topic.topic!r}: the snapshot holds no records"
    expected = (
        f"a CSV line of the columns {','.join(topic.columns)}" if topic.columns else "a JSON object"
    )
    return f"--data Kafka topic {topic.topic!r}: none of its {total} record(s) is {expected}"


def read_kafka(location: str, parts: tuple[str, ...], delimiter: str = "") -> Any:
    """The snapshot as a pandas DataFrame (for commands that read the whole table), with the
    count of unreadable records in its attrs."""
    import pandas as pd

    snapshot = snapshot_of_parts(location, parts)
    with tempfile.TemporaryDirectory(prefix="stablepipe-kafka-") as folder:
        output = Path(folder) / "snapshot.parquet"
        counts, _ = write_snapshot(snapshot, output, delimiter)
        frame = pd.read_parquet(output)
    frame.attrs["unreadable_records"] = counts.unreadable
    return frame
