"""A real Apache Kafka broker for tests: one node in KRaft mode (broker and controller in one
JVM) on loopback ports, from the jars `make test` fetches with Maven (tests/support/kafka/pom.xml
into .venv/kafka). It can be stopped and started again on the same ports and log folder, for
tests of a broker that goes away mid-run."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import stop_process
from tests.support.seaweedfs import free_ports

READY_SECONDS = 90.0
# the SASL listener's one user (PLAIN): credentials tests meet a real password check
SASL_USER = "pipeline"
SASL_PASSWORD = "kf-Pw-8d2e41-not-in-any-message"


def libs_folder() -> Path:
    """The broker's jars: $STABLEPIPE_KAFKA_LIBS, or .venv/kafka beside the running Python."""
    chosen = os.environ.get("STABLEPIPE_KAFKA_LIBS")
    folder = Path(chosen) if chosen else Path(sys.prefix) / "kafka"
    if not any(folder.glob("kafka_2.13-*.jar")):
        raise RuntimeError(
            f"no Kafka broker jars in {folder}: `make test` fetches them with Maven "
            "(tests/support/kafka/pom.xml)"
        )
    return folder


def cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes in URL-safe base64 that does not start with "-", which
    the storage tool's option parser would read as a flag (Kafka's `Uuid.randomUuid` skips those
    ids for the same reason)."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster


@dataclass
class KafkaBroker:
    """A running single-node broker: `bootstrap` is HOST:PORT for clients."""

    folder: Path
    port: int
    controller_port: int
    sasl_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, topic: str, query: str = "", sasl: bool = False) -> str:
        """The --data URL of a topic on this broker (through the SASL listener with `sasl`)."""
        port = self.sasl_port if sasl else self.port
        return f"kafka://127.0.0.1:{port}/{topic}" + (f"?{query}" if query else "")

    def command(self, main: str, *args: str) -> list[str]:
        return ["java", "-Xms128m", "-Xmx768m", "-cp", f"{libs_folder()}/*", main, *args]

    def configure(self) -> Path:
        properties = self.folder / "server.properties"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{SASL_USER}="{SASL_PASSWORD}";'
            ),
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.folder / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        properties.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
        return properties

    def format(self) -> None:
        """Format the log folder once (KRaft needs a cluster id before the first start)."""
        properties = self.configure()
        done = subprocess.run(
            self.command(
                "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(properties)
            ),
            capture_output=True,
        )
        if done.returncode:
            output = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(f"formatting the Kafka log folder failed: {output}")

    def start(self) -> KafkaBroker:
        log = (self.folder / "broker.log").open("ab")
        self.process = subprocess.Popen(
            self.command("kafka.Kafka", str(self.folder / "server.properties")),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.folder / "broker.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the Kafka broker exited: {tail}")
            try:
                if admin.list_topics(timeout=2).brokers:
                    return
            except Exception:
                time.sleep(0.3)
        raise RuntimeError(f"the Kafka broker did not answer in {READY_SECONDS:.0f} s")

    def kill(self) -> None:
        """The broker dies at once (SIGKILL): no controlled shutdown."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, partitions, 1)])
        futures[topic].result(timeout=30)  # the admin client is kept until this resolves

    def produce(self, topic: str, values: list[bytes], partition: int | None = None) -> None:
        """Produce the values (round-robin over the partitions unless one is named: the
        client's own partitioner sends runs of keyless records to one partition at random, so
        a partition could get none), flushed."""
        from confluent_kafka import Producer

        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "linger.ms": 20, "batch.num.messages": 10000}
        )
        count = len(producer.list_topics(topic, timeout=30).topics[topic].partitions)
        for index, value in enumerate(values):
            while True:
                try:
                    chosen = index % count if partition is None else partition
                    producer.produce(topic, value, partition=chosen)
                    break
                except BufferError:  # the local queue is full: let it drain
                    producer.poll(0.1)
            if index % 10000 == 0:
                producer.poll(0)
        if producer.flush(60):
            raise RuntimeError(f"records of {topic!r} were not delivered")


def start(folder: Path) -> KafkaBroker:
    port, controller, sasl = free_ports(3)
    broker = KafkaBroker(folder=folder, port=port, controller_port=controller, sasl_port=sasl)
    broker.format()
    return broker.start()
