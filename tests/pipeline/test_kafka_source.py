"""`stablepipe run --data kafka://...` against a real Apache Kafka broker: bounded snapshots,
incremental runs whose consumer-group offsets move only when a run succeeds, lineage, bad input
and credentials from the environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.pipeline.conftest import QUICK, latest_summary, stablepipe, wait_for_event

RECORDS = 100_000


def readings(count: int, start: int = 0, seed: int = 0) -> list[bytes]:
    """Sensor readings as JSON objects: the label follows temperature and vibration."""
    rng = np.random.default_rng(seed + start)
    temperature = rng.normal(60, 8, count)
    vibration = rng.gamma(2.0, 1.5, count)
    site = rng.choice(["north", "south", "east"], count)
    fault = (temperature + 4 * vibration + rng.normal(0, 4, count) > 75).astype(int)
    return [
        json.dumps(
            {
                "id": start + i,
                "temperature": round(float(t), 3),
                "vibration": round(float(v), 3),
                "site": str(s),
                "fault": int(f),
            }
        ).encode()
        for i, (t, v, s, f) in enumerate(zip(temperature, vibration, site, fault, strict=True))
    ]


def new_topic(broker, partitions: int = 3) -> str:
    name = f"readings-{uuid.uuid4().hex[:8]}"
    broker.create_topic(name, partitions)
    return name


def committed(broker, topic: str, group: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        asked = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        return {tp.partition: tp.offset for tp in consumer.committed(asked, timeout=10)}
    finally:
        consumer.close()


def run_args(url: str, *extra: str) -> tuple[str, ...]:
    return ("run", "--data", url, "--target", "fault", *QUICK, *extra)


@pytest.mark.slow
def test_runs_read_snapshots_and_incremental_runs_only_new_records(
    kafka_broker, tmp_path: Path
) -> None:
    topic = new_topic(kafka_broker)
    kafka_broker.produce(topic, readings(RECORDS))
    url = kafka_broker.url(topic)

    done = stablepipe(*run_args(url), cwd=tmp_path)
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    assert summary["data"]["rows_read"] == RECORDS and summary["data"]["columns"] == 5
    lineage = summary["data"]["kafka"]
    assert sorted(e["partition"] for e in lineage) == [0, 1, 2]
    assert sum(e["records"] for e in lineage) == RECORDS
    assert all(e["topic"] == topic and e["first"] == 0 for e in lineage)
    assert all(e["last"] == e["records"] - 1 for e in lineage)

    incremental = (*run_args(url), "--incremental", "--model-name", "sensors")
    done = stablepipe(*incremental, cwd=tmp_path)
    assert done.code == 0, done.stderr
    first = latest_summary(tmp_path / "runs")
    assert first["incremental"]["group"] == "stablepipe-sensors"
    assert first["incremental"]["new_records"] == RECORDS  # a new group starts at the beginning
    assert committed(kafka_broker, topic, "stablepipe-sensors") == {
        e["partition"]: e["last"] + 1 for e in lineage
    }

    kafka_broker.produce(topic, readings(5_000, start=RECORDS))
    done = stablepipe(*incremental, cwd=tmp_path)
    assert done.code == 0, done.stderr
    second = latest_summary(tmp_path / "runs")
    assert second["incremental"]["new_records"] == 5_000
    assert second["data"]["rows_read"] == 5_000
    assert all(e["first"] > 0 for e in second["data"]["kafka"])

    again = stablepipe(*incremental, cwd=tmp_path)
    assert again.code == 0 and "no new records in Kafka topic" in again.stderr, again.stderr

    windowed = stablepipe(*incremental, "--window", "1000", cwd=tmp_path)  # nothing new
    assert windowed.code == 0 and "nothing to train" in windowed.stderr
    kafka_broker.produce(topic, readings(600, start=RECORDS + 5_000))
    before = committed(kafka_broker, topic, "stablepipe-sensors")
    done = stablepipe(*incremental, "--window", "1000", cwd=tmp_path)
    assert done.code == 0, done.stderr
    third = latest_summary(tmp_path / "runs")
    assert third["incremental"]["new_records"] == 600
    earlier = sum(min(1_000, offset) for offset in before.values())  # 1,000 per partition
    assert third["incremental"]["window_records"] == earlier
    assert third["data"]["rows_read"] == 600 + earlier


@pytest.mark.slow
def test_a_run_killed_mid_ingest_leaves_the_offsets_and_a_rerun_reads_the_same_records(
    kafka_broker, tmp_path: Path
) -> None:
    topic = new_topic(kafka_broker)
    kafka_broker.produce(topic, readings(RECORDS))
    args = (*run_args(kafka_broker.url(topic)), "--incremental", "--group", "killed")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_event(tmp_path / "runs", "ingest", "started")
        os.killpg(process.pid, signal.SIGKILL)  # the run and every task it started
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert all(offset < 0 for offset in committed(kafka_broker, topic, "killed").values())

    done = stablepipe(*args, cwd=tmp_path)
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    assert summary["incremental"]["new_records"] == RECORDS
    assert summary["data"]["rows_read"] == RECORDS  # nothing lost, nothing doubled
    assert sum(committed(kafka_broker, topic, "killed").values()) == RECORDS


@pytest.mark.slow
def test_the_broker_stopped_mid_run_fails_the_run_and_keeps_the_offsets(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from tests.support import kafka_broker as brokers

    broker = brokers.start(tmp_path_factory.mktemp("lonely-kafka"))
    try:
        topic = new_topic(broker)
        for start in range(0, 3 * RECORDS, RECORDS):  # enough for the read to take seconds
            broker.produce(topic, readings(RECORDS, start=start))
        args = (*run_args(broker.url(topic)), "--incremental", "--group", "outage")
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_event(tmp_path / "runs", "ingest", "started")
        broker.kill()  # while the stage reads
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 1, stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("failed: ") and "ingest" in last, stderr
        summary = latest_summary(tmp_path / "runs")
        assert summary["status"] == "failed" and not (tmp_path / "models").exists()
        broker.start()
        assert all(offset < 0 for offset in committed(broker, topic, "outage").values())
    finally:
        broker.stop()


def test_bad_topics_exit_2_with_one_line(kafka_broker, tmp_path: Path) -> None:
    missing = stablepipe(*run_args(kafka_broker.url("not-a-topic")), cwd=tmp_path)
    assert missing.code == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("error: --data Kafka topic 'not-a-topic' does not exist")
    empty = stablepipe(*run_args(kafka_broker.url(new_topic(kafka_broker))), cwd=tmp_path)
    assert empty.code == 2 and "holds no records: nothing to train on" in empty.stderr
    garbage = new_topic(kafka_broker, partitions=1)
    kafka_broker.produce(garbage, [b"<reading>1</reading>"] * 50)
    done = stablepipe(*run_args(kafka_broker.url(garbage)), cwd=tmp_path)
    assert done.code == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the run's header and its ingest line
    assert last.endswith("none of its 50 record(s) is a JSON object"), done.stderr


def test_unreadable_records_are_a_quality_anomaly_and_fields_may_differ(
    kafka_broker, tmp_path: Path
) -> None:
    topic = new_topic(kafka_broker, partitions=2)
    values = readings(3_000)
    values[10:20] = [b"not json"] * 10
    values[100:200] = [  # an older sensor without the vibration field
        json.dumps({k: v for k, v in json.loads(r).items() if k != "vibration"}).encode()
        for r in values[100:200]
    ]
    kafka_broker.produce(topic, values)
    done = stablepipe(*run_args(kafka_broker.url(topic)), cwd=tmp_path)
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    assert summary["data"]["unreadable_records"] == 10
    assert summary["data"]["rows_read"] == 2_990
    kinds = {a["kind"]: a for a in summary["data_quality"]["anomalies"]}
    assert "10 record(s)" in kinds["unreadable_records"]["detail"]
    assert kinds["unreadable_records"]["severity"] == "warning"


def test_csv_records_and_credentials_from_the_environment(
    kafka_broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.kafka_broker import SASL_PASSWORD, SASL_USER

    topic = new_topic(kafka_broker, partitions=1)
    lines = [",".join(str(v) for v in json.loads(r).values()).encode() for r in readings(2_000)]
    kafka_broker.produce(topic, lines)
    url = kafka_broker.url(topic, "columns=id,temperature,vibration,site,fault", sasl=True)
    refused = stablepipe(*run_args(url), cwd=tmp_path, timeout=300)  # no credentials
    assert refused.code == 1 and refused.stderr.startswith("failed: "), refused.stderr
    monkeypatch.setenv("STABLEPIPE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STABLEPIPE_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("STABLEPIPE_KAFKA_USERNAME", SASL_USER)
    monkeypatch.setenv("STABLEPIPE_KAFKA_PASSWORD", SASL_PASSWORD)
    done = stablepipe(*run_args(url), cwd=tmp_path)
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    assert summary["data"]["rows_read"] == 2_000 and summary["data"]["columns"] == 5
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".yaml", ".txt"):
            assert SASL_PASSWORD not in path.read_text(errors="replace"), path
