"""Kafka ingest against a bare consumer, and its peak memory against the topic's size, on a real
Apache Kafka broker (tests/support/kafka_broker.py).

- Speed: the ingest stage (`ingest_data`, default settings: what `stablepipe run --data
  kafka://...` runs) on 1,000,000 JSON records in 3 partitions, against a bare confluent-kafka
  consumer that parses all values with pyarrow's JSON reader and writes them with
  `write_table`. Target: at most 1.5x the bare consumer's seconds.
- Memory: the stage on a topic of 10x the records. Target: peak RSS at most +10%.

Each measurement runs in a fresh process (tests/benchmarks/kafka_ingest_worker.py), ROUNDS
times alternating; each figure is the lowest of its rounds."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.benchmarks.conftest import report

RECORDS = 1_000_000
SCALE = 10
ROUNDS = 3
TARGET_SPEED = 1.5
TARGET_GROWTH = 1.10


def sensor_records(count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    temperature = np.round(rng.normal(60, 8, count), 3)
    vibration = np.round(rng.gamma(2.0, 1.5, count), 3)
    sites = rng.choice(["north", "south", "east", "west"], count)
    return [
        json.dumps(
            {
                "sensor": int(i % 5000),
                "temperature": float(t),
                "vibration": float(v),
                "site": str(s),
                "fault": int(t + 4 * v > 75),
            }
        ).encode()
        for i, (t, v, s) in enumerate(zip(temperature, vibration, sites, strict=True))
    ]


def filled_topic(broker, records: int, seed: int) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    broker.create_topic(name, 3)
    chunk = 1_000_000
    for start in range(0, records, chunk):
        broker.produce(name, sensor_records(min(chunk, records - start), seed + start))
    return broker.url(name)


def measure(mode: str, url: str, warmup: str, workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.kafka_ingest_worker",
            mode,
            url,
            "fault",
            str(workdir / f"{mode}.parquet"),
            warmup,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_kafka_ingest_speed_and_memory(
    kafka_broker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("kafka-ingest")
    warmup = filled_topic(kafka_broker, 2_000, seed=99)
    small = filled_topic(kafka_broker, RECORDS, seed=0)
    large = filled_topic(kafka_broker, SCALE * RECORDS, seed=1)
    runs: dict[str, list[dict[str, Any]]] = {"stage": [], "bare": [], "stage 10x": []}
    for _ in range(ROUNDS):
        runs["stage"].append(measure("stage", small, warmup, workdir))
        runs["bare"].append(measure("bare", small, warmup, workdir))
    for _ in range(ROUNDS):
        runs["stage 10x"].append(measure("stage", large, warmup, workdir))
    best = {name: min(r["seconds"] for r in found) for name, found in runs.items()}
    peak = {name: min(r["peak_mb"] for r in found) for name, found in runs.items()}
    speed = best["stage"] / best["bare"]
    growth = peak["stage 10x"] / peak["stage"]
    assert {r["rows"] for r in runs["stage"] + runs["bare"]} == {RECORDS}
    assert {r["rows"] for r in runs["stage 10x"]} == {SCALE * RECORDS}
    rows = [
        (f"{name} (lowest of {ROUNDS})", f"{best[name]:6.2f} s, peak {peak[name]:6.0f} MB")
        for name in runs
    ]
    rows += [
        (
            "stage / bare consumer, 1M records",
            f"{speed:.2f}x  (target <= {TARGET_SPEED}: "
            f"{'met' if speed <= TARGET_SPEED else 'MISSED'})",
        ),
        (
            f"peak growth at {SCALE}x the records",
            f"{growth:.2f}  (target <= {TARGET_GROWTH}: "
            f"{'met' if growth <= TARGET_GROWTH else 'MISSED'})",
        ),
    ]
    report("Kafka ingest: stage vs bare consumer; memory at 10x the records", rows)
    assert growth <= TARGET_GROWTH, f"peak RSS grew {growth:.2f}x at {SCALE}x the records"
