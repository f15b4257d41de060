"""Round trip of a 200 MB artifact through the storage interface against the plain minio client
(fput_object/fget_object) on the same SeaweedFS server, in the same session.
Targets: time ratio <= 1.2; peak memory under 100 MB above the process's baseline."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from tests.benchmarks.conftest import report
from tests.conftest import make_bucket
from tests.support import seaweedfs

SIZE_MB = 200
ROUNDS = 3


def round_trip(mode: str, endpoint: str, path: Path, key: str) -> tuple[float, float]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": seaweedfs.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": seaweedfs.SECRET_KEY,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.storage_roundtrip",
            mode,
            endpoint,
            str(path),
            key,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    seconds, peak = done.stdout.split()
    return float(seconds), float(peak)


def test_storage_round_trip(tmp_path: Path) -> None:
    server = seaweedfs.start(tmp_path / "s3")
    try:
        make_bucket(server, "bench-bucket")
        artifact = tmp_path / "artifact.bin"
        with open(artifact, "wb") as handle:
            for _ in range(SIZE_MB):
                handle.write(os.urandom(2**20))
        times: dict[str, list[float]] = {"minio": [], "stablepipe": []}
        peaks: dict[str, list[float]] = {"minio": [], "stablepipe": []}
        for round_number in range(ROUNDS):  # alternate, so drift hits both alike
            for mode in ("minio", "stablepipe"):
                seconds, peak = round_trip(
                    mode, server.endpoint, artifact, f"{mode}/{round_number}.bin"
                )
                times[mode].append(seconds)
                peaks[mode].append(peak)
    finally:
        server.stop()
    base, ours = statistics.median(times["minio"]), statistics.median(times["stablepipe"])
    ratio = ours / base
    peak = max(peaks["stablepipe"])
    report(
        f"storage round trip ({SIZE_MB} MB, median of {ROUNDS})",
        [
            ("plain minio fput/fget", f"{base:.2f} s  ({2 * SIZE_MB / base:.0f} MB/s)"),
            ("stablepipe storage", f"{ours:.2f} s  ({2 * SIZE_MB / ours:.0f} MB/s)"),
            ("time ratio", f"{ratio:.3f}  (target <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'})"),
            (
                "peak memory above start",
                f"stablepipe {peak:.0f} MB, minio {max(peaks['minio']):.0f} MB"
                f"  (target < 100 MB: {'met' if peak < 100 else 'MISSED'})",
            ),
        ],
    )
