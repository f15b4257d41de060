"""`stablepipe land` against a real MQTT broker (Mosquitto): readings at QoS 1 land once each
across a killed collector and a broker restart, malformed payloads are put aside, and an
incremental run trains on the landing folder."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline.conftest import QUICK, latest_summary, stablepipe

READINGS = 10_000


def reading(i: int) -> bytes:
    temperature = 50 + (i * 7919 % 400) / 10
    vibration = (i * 104729 % 90) / 10
    return json.dumps(
        {
            "id": i,
            "sensor": f"s{i % 25}",
            "temperature": temperature,
            "vibration": vibration,
            "fault": int(temperature + 4 * vibration > 95),
        }
    ).encode()


def publish(
    broker_url: str, payloads: list[tuple[str, bytes]], pace: float = 0.0, username: str = ""
) -> None:
    """Publish at QoS 1 (`pace` seconds between batches of 200) and wait until the broker has
    every one."""
    import paho.mqtt.client as mqtt

    host, port = broker_url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    if username:
        client.username_pw_set(username)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(host, int(port))
    client.loop_start()
    try:
        sent = []
        for index, (topic, payload) in enumerate(payloads):
            sent.append(client.publish(topic, payload, qos=1))
            if pace and index % 200 == 199:
                time.sleep(pace)
        for info in sent:
            info.wait_for_publish(timeout=60)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def sensor_payloads(first: int, last: int) -> list[tuple[str, bytes]]:
    return [(f"sensors/s{i % 25}/reading", reading(i)) for i in range(first, last)]


class Landing:
    """A `stablepipe land` child process and what it prints."""

    def __init__(self, broker_url: str, folder: Path | str, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "pipelines.cli", "land", "--from", broker_url),
                *("--topic", "sensors/#", "--to", str(folder), "--client-id", "plant-1"),
                *("--rotate-seconds", "1", *extra),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                self.lines.append(line)
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
        pytest.fail(f"no {text!r} from stablepipe land: {''.join(self.lines)}")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        rest, _ = self.process.communicate(timeout=60)
        return self.process.returncode, "".join(self.lines) + rest


def s3_env_secret() -> str:
    from tests.support import seaweedfs

    return seaweedfs.SECRET_KEY


def landed_ids(folder: Path) -> list[int]:
    files = [p for p in folder.glob("*.parquet")]
    if not files:
        return []
    return [int(i) for f in files for i in pd.read_parquet(f, columns=["id"])["id"]]


def wait_until_landed(folder: Path, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(landed_ids(folder)) >= count:
            return
        time.sleep(0.5)
    pytest.fail(f"{len(landed_ids(folder))} of {count} readings landed in {timeout:.0f} s")


@pytest.mark.slow
def test_every_reading_lands_once_across_a_kill_and_a_broker_restart(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.support import mosquitto

    broker = mosquitto.start(tmp_path_factory.mktemp("mosquitto"))
    folder = tmp_path / "landing"
    try:
        collector = Landing(broker.url, folder)
        line = collector.wait_for("subscribed to")
        assert "'sensors/#'" in line and "'plant-1'" in line and "QoS 1" in line
        feed = threading.Thread(target=publish, args=(broker.url, sensor_payloads(0, 7_000), 0.1))
        feed.start()  # 3.5 s of readings
        wait_until_landed(folder, 600)
        collector.kill()  # mid-stream: readings spooled, some not yet acknowledged
        feed.join()  # the rest while it is down
        assert len(landed_ids(folder)) < 7_000

        collector = Landing(broker.url, folder)
        collector.wait_for("subscribed to")
        broker.stop()  # the broker restarts: the collector reconnects
        broker.start()
        publish(broker.url, sensor_payloads(7_000, READINGS))
        publish(broker.url, [("sensors/s1/reading", b"not json"), ("sensors/s2/reading", b"[1]")])
        wait_until_landed(folder, READINGS)
        time.sleep(2)  # anything doubled would land within a rotation
        code, printed = collector.stop()
    finally:
        broker.stop()
    assert code == 0, printed
    assert "stopped (SIGTERM received)" in printed.strip().splitlines()[-1], printed
    ids = landed_ids(folder)
    assert sorted(ids) == list(range(READINGS))  # every reading, once
    rejected = [
        json.loads(line)
        for f in (folder / "_rejected").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert sorted(r["topic"] for r in rejected) == ["sensors/s1/reading", "sensors/s2/reading"]
    frame = pd.concat(pd.read_parquet(f) for f in folder.glob("*.parquet"))
    assert {"mqtt_topic", "received_at"} <= set(frame.columns)
    assert str(frame["received_at"].dtype).startswith("datetime64")

    done = stablepipe(
        "run", "--data", str(folder), "--target", "fault", "--incremental", *QUICK, cwd=tmp_path
    )
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    assert summary["data"]["rows_read"] == READINGS  # the side files are not read
    assert all(name.startswith("readings-") for name in summary["incremental"]["new_files"])


def test_land_refuses_bad_arguments_with_one_line(tmp_path: Path) -> None:
    from tests.support.seaweedfs import free_ports

    (port,) = free_ports(1)
    cases = {
        ("--from", "http://broker:1883", "--topic", "a/#"): "--from must be mqtt://",
        ("--from", "mqtt://u:p@broker", "--topic", "a/#"): "must not carry a user or password",
        ("--from", "mqtt://broker/sensors/#", "--topic", "a"): "the topic filter is --topic",
        ("--from", "mqtt://broker", "--topic", "a/#/b"): "'#' only as its whole last level",
        ("--from", "mqtt://broker", "--topic", "a/b+"): "'+' only as a whole level",
    }
    for args, message in cases.items():
        done = stablepipe("land", *args, "--to", str(tmp_path / "x"), cwd=tmp_path)
        assert done.code == 2 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    unusable = stablepipe(
        "land", "--from", "mqtt://127.0.0.1:1", "--topic", "a/#", "--to", "/proc/landing",
        cwd=tmp_path,
    )  # fmt: skip
    assert unusable.code == 2 and "--spool folder '/proc/landing/.spool/" in unusable.stderr
    assert len(unusable.stderr.strip().splitlines()) == 1, unusable.stderr
    down = stablepipe(
        "land", "--from", f"mqtt://127.0.0.1:{port}", "--topic", "a/#", "--to",
        str(tmp_path / "x"), cwd=tmp_path,
    )  # fmt: skip
    assert down.code == 1 and "did not answer after 3 tries" in down.stderr, down.stderr
    assert down.stderr.strip().splitlines()[-1].startswith("failed: ")


def test_land_to_an_s3_prefix_stops_at_max_messages(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, s3_env
) -> None:
    from components.core.source import incremental
    from components.core.source.files import read_table
    from tests.conftest import make_bucket
    from tests.support import mosquitto

    make_bucket(s3_env, "landing")
    endpoint = f"http://{s3_env.host_port}"
    broker = mosquitto.start(tmp_path_factory.mktemp("mosquitto-s3"))
    try:
        collector = Landing(
            broker.url, "s3://landing/plant-1/", "--max-messages", "300",
            "--spool", str(tmp_path / "spool"), "--s3-endpoint", endpoint,
        )  # fmt: skip
        collector.wait_for("subscribed to")
        publish(broker.url, [*sensor_payloads(0, 299), ("sensors/x", b"\xff\xfe")])
        rest, _ = collector.process.communicate(timeout=60)
    finally:
        broker.stop()
    assert collector.process.returncode == 0, rest
    assert "--max-messages 300 reached" in rest and "1 put aside" in rest, rest
    landed = incremental.listing("s3://landing/plant-1/", endpoint)
    assert len(landed) == 1 and next(iter(landed)).startswith("readings-")
    assert sorted(read_table("s3://landing/plant-1/", endpoint)["id"]) == list(range(299))


def test_readings_wait_in_the_spool_while_the_destination_fails(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, s3_env, monkeypatch
) -> None:
    """A destination that refuses the files (wrong credentials here) keeps the segments in the
    spool, exit 1; the next start lands them. Sensors with different fields land as files with
    different columns, which an incremental run reads as one table."""
    from tests.conftest import make_bucket
    from tests.support import mosquitto

    make_bucket(s3_env, "outage")
    endpoint = f"http://{s3_env.host_port}"
    destination = "s3://outage/plant-2/"
    spool = str(tmp_path / "spool")
    args = ("--spool", spool, "--s3-endpoint", endpoint, "--rotate-seconds", "1")
    broker = mosquitto.start(tmp_path_factory.mktemp("mosquitto-outage"))
    try:
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        collector = Landing(broker.url, destination, "--max-messages", "40", *args)
        collector.wait_for("subscribed to")
        older = [(f"sensors/old/{i}", json.dumps({"id": i, "fault": i % 2}).encode())
                 for i in range(40)]  # fmt: skip
        publish(broker.url, older)
        printed, _ = collector.process.communicate(timeout=120)
        assert collector.process.returncode == 1, printed
        assert "landing failed" in printed and "kept in the spool" in printed, printed
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env_secret())
        collector = Landing(broker.url, destination, "--max-messages", "10", *args)
        collector.wait_for("subscribed to")
        newer = [(f"sensors/new/{i}", json.dumps({"id": i, "fault": 0, "humidity": 0.5}).encode())
                 for i in range(40, 50)]  # fmt: skip
        publish(broker.url, newer)
        printed, _ = collector.process.communicate(timeout=120)
    finally:
        broker.stop()
    assert collector.process.returncode == 0, printed
    done = stablepipe(
        "validate", "--data", destination, "--target", "fault", "--s3-endpoint", endpoint,
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    from components.core.source.files import read_table

    table = read_table(destination, endpoint)
    assert sorted(table["id"]) == list(range(50))  # nothing lost
    assert table["humidity"].notna().sum() == 10  # a column only the newer sensors have


def test_land_falls_back_to_mqtt_3_1_1_where_the_broker_has_no_mqtt_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """amqtt speaks MQTT 3.1.1 only; it keeps sessions only for clients that log in, so the
    collector gives a user name (amqtt checks none)."""
    from tests.support.seaweedfs import free_ports

    (port,) = free_ports(1)
    config = tmp_path / "amqtt.yaml"
    config.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: false\n"
    )
    amqtt = Path(sys.executable).with_name("amqtt")
    broker = subprocess.Popen(
        [str(amqtt), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    monkeypatch.setenv("STABLEPIPE_MQTT_USERNAME", "collector")
    url = f"mqtt://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        collector = Landing(url, tmp_path / "landing", "--max-messages", "50")
        line = collector.wait_for("subscribed to")
        assert "MQTT 3.1.1" in line
        publish(url, sensor_payloads(0, 50), username="publisher")
        rest, _ = collector.process.communicate(timeout=60)
    finally:
        broker.terminate()
        broker.wait(timeout=30)
    assert collector.process.returncode == 0, rest
    assert sorted(landed_ids(tmp_path / "landing")) == list(range(50))
