"""A real MQTT broker for tests: Debian's Mosquitto (installed by `make test`) in the foreground
on a loopback port, with persistence (sessions and queued readings survive a restart) and room
for more queued readings than its default of 1,000 (which drops them beyond)."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import stop_process
from tests.support.seaweedfs import free_ports

READY_SECONDS = 30.0


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError("mosquitto not found: `make test` installs it (Debian's mosquitto)")
    return found


@dataclass
class Mosquitto:
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def configure(self) -> Path:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # as root it would switch to the user `mosquitto`, who cannot write our folder
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {data}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 100\n"
            "log_dest stderr\n"
        )
        return config

    def start(self) -> Mosquitto:
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.configure())], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.folder / "mosquitto.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {READY_SECONDS:.0f} s")

    def stop(self) -> None:
        """Stop it as a service manager would (SIGTERM: it saves its sessions first)."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def start(folder: Path) -> Mosquitto:
    (port,) = free_ports(1)
    return Mosquitto(folder, port).start()
