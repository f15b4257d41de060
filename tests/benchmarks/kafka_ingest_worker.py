"""One Kafka ingest in its own process, so its peak memory is its own:

    python -m tests.benchmarks.kafka_ingest_worker MODE URL TARGET OUTPUT WARMUP_URL

MODE is `stage` (the ingest stage's entry function, `ingest_data`, with default settings: what
`stablepipe run --data kafka://...` runs) or `bare`: a bare confluent-kafka consumer that reads
every record of the topic, parses the values with pyarrow's JSON reader in one go and writes the
table with `pyarrow.parquet.write_table` (no checks, no cleaning, no bound on memory).

Runs the same work on the small WARMUP_URL first (imports, thread pools, the client library's
first connection) and records the RSS; then on URL. Prints one JSON line: the RSS after the
warm-up, the peak RSS (VmHWM), the seconds of the real run and the rows written."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

from tests.benchmarks.ingest_worker import measured


def stage(url: str, target: str, output: Path) -> None:
    from components.common.settings import RunConfig
    from components.ingest.logic import ingest_data

    ingest_data(output, RunConfig(data=url, target=target))


def bare(url: str, output: Path) -> None:
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq
    from confluent_kafka import Consumer, TopicPartition

    from components.core.source.kafka import parse_kafka_url

    topic = parse_kafka_url(url)
    consumer = Consumer(
        {"bootstrap.servers": topic.bootstrap, "group.id": "bare", "enable.auto.commit": False}
    )
    metadata = consumer.list_topics(topic.topic, timeout=10)
    ends = {}
    for partition in metadata.topics[topic.topic].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic.topic, partition))
        if high > low:
            ends[partition] = high
    consumer.assign([TopicPartition(topic.topic, p, 0) for p in ends])
    values = []
    while ends:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error() is None:
                values.append(message.value())
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
    consumer.close()
    table = pa_json.read_json(io.BytesIO(b"\n".join(values)))
    pq.write_table(table, output)


def run(mode: str, url: str, target: str, output: Path) -> None:
    if mode == "stage":
        stage(url, target, output)
    elif mode == "bare":
        bare(url, output)
    else:
        raise SystemExit(f"unknown mode {mode!r}: stage or bare")


def main() -> None:
    mode, url, target, output, warmup = sys.argv[1:6]
    import pyarrow.parquet as pq

    def run_once(source: str, written: Path) -> dict[str, Any]:
        run(mode, source, target, written)
        return {}

    result = measured(run_once, url, Path(output), warmup)
    result["rows"] = pq.read_metadata(output).num_rows
    Path(output).unlink()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
