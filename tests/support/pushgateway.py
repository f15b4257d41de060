"""A real Prometheus Pushgateway for tests: Debian's prometheus-pushgateway (installed by
`make test`) on a loopback port, without persistence."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import stop_process
from tests.support.seaweedfs import free_ports

READY_SECONDS = 30.0


def pushgateway_binary() -> str:
    found = shutil.which("prometheus-pushgateway")
    if not found:
        raise RuntimeError(
            "prometheus-pushgateway not found: `make test` installs it (Debian's package)"
        )
    return found


@dataclass
class Pushgateway:
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Pushgateway:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "pushgateway.log").open("ab")
        self.process = subprocess.Popen(
            [pushgateway_binary(), f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.folder / "pushgateway.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the Pushgateway did not answer on {self.port} in {READY_SECONDS:.0f}s")

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """Every sample the gateway serves to a Prometheus scrape: (name, labels, value)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def start(folder: Path) -> Pushgateway:
    (port,) = free_ports(1)
    return Pushgateway(folder, port).start()
