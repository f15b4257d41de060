"""Kafka topics as a source (components/core/source/kafka.py): the URL, the records as rows
(source/records.py), and snapshots of offsets against a real broker
(tests/support/kafka_broker.py)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from components.common.errors import BadInputError, Unavailable
from components.core.source import KAFKA, kafka, source_kind
from components.core.source.kafka import (
    KafkaTopic,
    OffsetRange,
    Snapshot,
    parse_kafka_url,
    take_snapshot,
    write_snapshot,
)
from components.core.source.records import csv_records, json_records, unified_schema


def new_topic(broker, partitions: int = 1) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    broker.create_topic(name, partitions)
    return name


def rows(count: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"id": i, "x": i * 0.5, "y": i % 2}).encode() for i in range(start, count)]


def test_kafka_urls() -> None:
    url = "kafka://broker-0.kafka:9092,broker-1.kafka:9092/sensor.readings?columns=a,b"
    assert source_kind(url) == KAFKA
    assert parse_kafka_url(url) == KafkaTopic(
        "broker-0.kafka:9092,broker-1.kafka:9092", "sensor.readings", ("a", "b")
    )
    assert parse_kafka_url("kafka://h:1/t").columns == ()
    refused = {
        "kafka://h:1/": "needs a topic name",
        "kafka://h/t": "HOST:PORT",
        "kafka:///t": "HOST:PORT",
        "kafka://user:pw@h:1/t": "must not carry a Kafka user or password",
        "kafka://h:1/t?format=avro": "takes only ?columns=",
        "kafka://h:1/t?columns=": "needs column names",
        "kafka://h:1/t?columns=a,a": "names a column twice",
        "kafka://h:1/a/b": "needs a topic name",
    }
    for url, message in refused.items():
        with pytest.raises(BadInputError, match=re.escape(message)) as error:
            parse_kafka_url(url)
        assert "pw" not in str(error.value) or "@" not in url


def test_json_records_are_rows_and_the_rest_is_counted() -> None:
    values = [
        b'{"a": 1, "b": "x"}',
        b'{\n  "a": 2,\n  "b": "y"\n}',  # pretty-printed: line breaks between tokens
        b'{"a": 3, "c": {"deep": [1, 2]}}',  # another field; nested as JSON text
    ]
    table, bad = json_records(values)
    assert bad == 0 and table.num_rows == 3
    frame = table.to_pandas()
    assert frame["a"].tolist() == [1, 2, 3] and frame["b"].tolist()[:2] == ["x", "y"]
    assert json.loads(frame["c"].iloc[2]) == {"deep": [1, 2]}
    table, bad = json_records([*values, b"not json", b"[1, 2]", b"42", None, b'{"a": "text"}'])
    assert bad == 4 and table.num_rows == 4
    # the same rules whichever way a batch is parsed: an empty object and a value holding two
    # objects are no row
    for batch in ([b'{"a": 1}', b"{ }", b'{"a": 2} {"a": 3}'], [b'{"a": 1}', b"{}", b"junk"]):
        parsed, unread = json_records(batch)
        assert (parsed.num_rows, unread) == (1, 2), batch
    assert table.to_pandas()["a"].tolist() == ["1", "2", "3", "text"]  # no shared type: text


def test_csv_records_of_the_named_columns() -> None:
    table, bad = csv_records([b"1,x\n", b"2,y", b"3", b"4,z,extra", None], ("a", "b"), ",")
    assert bad == 3 and table.to_pandas().to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
    table, bad = csv_records([b"1,x", b"2,y\n3,z"], ("a", "b"), ",")  # two lines: not a record
    assert (table.num_rows, bad) == (1, 1)


def test_batches_share_one_schema() -> None:
    schemas = [
        pa.schema([("a", pa.int64()), ("b", pa.string()), ("n", pa.null())]),
        pa.schema([("a", pa.float64()), ("b", pa.int64()), ("c", pa.bool_())]),
    ]
    unified = unified_schema(schemas)
    assert unified.names == ["a", "b", "n", "c"]
    assert [f.type for f in unified] == [pa.float64(), pa.string(), pa.string(), pa.bool_()]


def test_a_snapshot_reads_up_to_the_end_offsets_taken_when_planned(
    kafka_broker, tmp_path: Path
) -> None:
    topic = new_topic(kafka_broker, partitions=3)
    kafka_broker.produce(topic, rows(3000))
    url = kafka_broker.url(topic)
    snapshot = take_snapshot(url)
    assert snapshot.new_records == 3000 and len(snapshot.ranges) == 3
    kafka_broker.produce(topic, rows(3500, 3000))  # after the plan: not in this run
    counts, dropped = write_snapshot(snapshot, tmp_path / "a.parquet")
    assert (counts.records, counts.unreadable, counts.columns, dropped) == (3000, 0, 3, 0)
    frame = pd.read_parquet(tmp_path / "a.parquet")
    assert sorted(frame["id"]) == list(range(3000))
    # the same offsets are the same data; new records are another snapshot
    assert kafka.fingerprint(url, tuple(snapshot.parts)) == kafka.fingerprint(
        url, tuple(reversed(snapshot.parts))
    )
    assert take_snapshot(url).new_records == 3500
    assert kafka.fingerprint(url, ()) != kafka.fingerprint(url, tuple(snapshot.parts))
    assert sorted(kafka.read_kafka(url, tuple(snapshot.parts))["id"]) == list(range(3000))


def test_a_group_reads_from_its_committed_offsets(kafka_broker) -> None:
    topic = new_topic(kafka_broker, partitions=2)
    kafka_broker.produce(topic, rows(100))
    url, group = kafka_broker.url(topic), f"g-{uuid.uuid4().hex[:6]}"
    first = take_snapshot(url, group, incremental=True)
    assert first.new_records == 100  # a group with no offsets starts at the beginning
    assert take_snapshot(url, group, incremental=True).new_records == 100  # nothing committed
    kafka.commit(url, group, first.ends())
    assert take_snapshot(url, group, incremental=True).new_records == 0
    kafka_broker.produce(topic, rows(130, 100))
    later = take_snapshot(url, group, incremental=True, window=10)
    assert later.new_records == 30
    assert [r.records for r in later.window] == [10, 10]  # the 10 latest earlier ones each
    assert all(w.end == n.first for w, n in zip(later.window, later.new, strict=True))
    assert len(later.ranges) == 2 and sum(r.records for r in later.ranges) == 50  # one each
    # a committed offset past the end (a topic deleted and made anew) reads from the beginning
    kafka.commit(url, group, {p: 10_000 for p in later.ends()})
    assert take_snapshot(url, group, incremental=True).new_records == 130


def test_missing_and_empty_topics_are_bad_input(kafka_broker) -> None:
    with pytest.raises(BadInputError, match=r"'no-such-topic' does not exist on .*topics: "):
        take_snapshot(kafka_broker.url("no-such-topic"))
    empty = new_topic(kafka_broker)
    with pytest.raises(BadInputError, match="holds no records: nothing to train on"):
        take_snapshot(kafka_broker.url(empty))


def test_a_topic_of_nothing_readable_is_bad_input(kafka_broker, tmp_path: Path) -> None:
    topic = new_topic(kafka_broker)
    kafka_broker.produce(topic, [b"garbage", b"[1]"])
    snapshot = take_snapshot(kafka_broker.url(topic))
    with pytest.raises(BadInputError, match=r"none of its 2 record\(s\) is a JSON object"):
        write_snapshot(snapshot, tmp_path / "out.parquet")
    assert not list(tmp_path.iterdir())  # nothing written, no scratch left


def test_an_unreachable_broker_is_unavailable_after_bounded_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.seaweedfs import free_ports

    monkeypatch.setattr(kafka, "REQUEST_SECONDS", 1.0)
    monkeypatch.setattr(kafka, "RETRY_PAUSE", 0.1)
    (port,) = free_ports(1)
    with pytest.raises(Unavailable, match=rf"127.0.0.1:{port} did not answer .* after 3 tries"):
        take_snapshot(f"kafka://127.0.0.1:{port}/topic")


def test_the_client_library_writes_nothing_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A broker that hangs up on every connection (librdkafka then logs "Send failed: Broken
    pipe" as an error): its lines go to the module's logger, so stderr stays the run's one line."""
    monkeypatch.setattr(kafka, "REQUEST_SECONDS", 1.0)
    monkeypatch.setattr(kafka, "RETRY_PAUSE", 0.1)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def hang_up() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = server.accept()
                connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(Unavailable, match=rf"127.0.0.1:{port} did not answer"):
            take_snapshot(f"kafka://127.0.0.1:{port}/topic")
    finally:
        server.close()
    assert capfd.readouterr().err == ""


def test_offset_ranges_travel_as_parts() -> None:
    part = OffsetRange(2, 10, 25)
    assert part.part == "2:10-25" and OffsetRange.of_part(part.part) == part
    assert part.lineage("t") == {"topic": "t", "partition": 2, "first": 10, "last": 24,
                                 "records": 15}  # fmt: skip
    with pytest.raises(BadInputError, match="PARTITION:FIRST-END"):
        OffsetRange.of_part("day-1.csv")
    snapshot = Snapshot(KafkaTopic("h:1", "t"), (OffsetRange(0, 5, 5), part))
    assert snapshot.parts == ["2:10-25"]  # an empty range is not read


def test_the_test_brokers_cluster_ids_never_read_as_a_flag() -> None:
    """Regression: CI once drew the id "-c9lRMEEQEyN8PNLQsjUZA" (1 draw in 64 starts with "-") and
    Kafka's storage tool took it for an option, so every Kafka test errored at set-up."""
    import base64

    from tests.support.kafka_broker import cluster_id

    drawn = [cluster_id() for _ in range(2000)]
    assert not [value for value in drawn if value.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(value + "==")) == 16 for value in drawn)
