"""One ingest in its own process, so its peak memory is its own:

    python -m tests.benchmarks.ingest_worker MODE CSV TARGET OUTPUT WARMUP_CSV

MODE is `stream` (the ingest stage's streaming path), `whole` (its read-everything path), or,
to tell stablepipe's memory from pyarrow's, `reader-<MB>`: a bare loop over
`pyarrow.csv.open_csv` batches with blocks of that many MB (no cleaning, no writing).

First runs the same work on the tiny WARMUP_CSV (so every lazily imported module and pyarrow's
thread pools are loaded) and records the RSS; then runs it on CSV. Prints one JSON line: the RSS
after the warm-up, the process's peak RSS, the seconds of the real run, and for the
ingest modes the stage's facts and the output's row count and column types.

The peak is VmHWM from /proc/self/status, not getrusage's ru_maxrss: Linux carries ru_maxrss
over fork and exec, so a child started by a big parent (pytest after building the input) would
report the parent's RSS as its own peak."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NEVER_STREAM = 1 << 62


def peak_rss() -> int:
    """The process's high-water RSS in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def ingest(mode: str, source: str, target: str, output: Path) -> dict[str, Any]:
    from components.core.source.files import ReadOptions
    from tests.support.stages import ingest_to_parquet

    threshold = 0 if mode == "stream" else NEVER_STREAM
    facts = ingest_to_parquet(
        source, target, output, "", ReadOptions(), stream_above_bytes=threshold
    )
    return {"facts": facts}


def bare_reader(block_mb: int, source: str) -> dict[str, Any]:
    from pyarrow import csv as pa_csv

    reader = pa_csv.open_csv(source, pa_csv.ReadOptions(block_size=block_mb << 20))
    return {"rows": sum(batch.num_rows for batch in reader)}


def run(mode: str, source: str, target: str, output: Path) -> dict[str, Any]:
    if mode in ("stream", "whole"):
        return ingest(mode, source, target, output)
    if mode.startswith("reader-"):
        return bare_reader(int(mode.removeprefix("reader-")), source)
    raise SystemExit(f"unknown mode {mode!r}: stream, whole or reader-<MB>")


def measured(
    run_once: Callable[[str, Path], dict[str, Any]], source: str, output: Path, warmup: str
) -> dict[str, Any]:
    """`run_once(source, output)` after the same work on `warmup`: the RSS after the warm-up,
    the peak RSS, the seconds of the real run and what it returned."""
    import psutil

    warm_output = output.with_name("warmup-" + output.name)
    run_once(warmup, warm_output)
    warm_output.unlink(missing_ok=True)
    after_imports = psutil.Process().memory_info().rss
    started = time.perf_counter()
    result = run_once(source, output)
    seconds = time.perf_counter() - started
    return {
        "after_imports_mb": after_imports / 2**20,
        "peak_mb": peak_rss() / 2**20,
        "seconds": seconds,
        **result,
    }


def main() -> None:
    mode, source, target, output, warmup = sys.argv[1:6]
    import pyarrow.parquet as pq

    result = measured(lambda data, out: run(mode, data, target, out), source, Path(output), warmup)
    if "facts" in result:
        result["parquet_rows"] = pq.read_metadata(output).num_rows
        result["parquet_columns"] = {f.name: str(f.type) for f in pq.read_schema(output)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
