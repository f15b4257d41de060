"""One round trip of a file through S3, in its own process so its peak memory is its own:

    python -m tests.benchmarks.storage_roundtrip (stablepipe|minio) ENDPOINT FILE KEY

Prints `seconds peak_rss_above_start_mb`. Credentials come from the environment."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """The process's own high-water RSS. Not getrusage's ru_maxrss: Linux carries that over
    from the parent across fork + exec, so a child of a big pytest process reports the
    parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    mode, endpoint, path, key = sys.argv[1:5]
    if mode == "stablepipe":
        from components.common.storage import open_storage

        store = open_storage("s3://bench-bucket", endpoint)
        start_rss = rss_mb()
        started = time.perf_counter()
        store.put_file(path, key)
        store.get_file(key, path + ".back")
    else:
        from minio import Minio

        client = Minio(
            endpoint.removeprefix("http://"),
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            secure=False,
        )
        start_rss = rss_mb()
        started = time.perf_counter()
        client.fput_object("bench-bucket", key, path)
        client.fget_object("bench-bucket", key, path + ".back")
    seconds = time.perf_counter() - started
    peak = peak_mb()
    assert Path(path + ".back").stat().st_size == Path(path).stat().st_size
    print(f"{seconds:.3f} {peak - start_rss:.1f}")


if __name__ == "__main__":
    main()
