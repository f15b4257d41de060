"""Peak memory of chunked (streaming) ingestion against input size: the ingest stage's streaming
path on a CSV of N rows and of 10 N rows, each in a fresh process.
Target: the 10x larger input raises peak RSS by at most 10%.

The data is ggplot2's diamonds resampled (tests/benchmarks/diamonds_csv.py): N = 1,000,000
rows (~45 MB of CSV) and 10 N (~450 MB). The streaming path runs ROUNDS times per size,
alternating, and each size's figure is its lowest peak. For contrast, printed once per size:
the read-everything path (what streaming saves), and a bare `pyarrow.csv.open_csv` loop with
the block size the stage uses and with 1 MB blocks (what pyarrow itself holds). Streamed and
read-everything outputs must have the same rows and columns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.core.source.files import READ_BLOCK_BYTES
from tests.benchmarks.conftest import report
from tests.benchmarks.diamonds_csv import TARGET, write_diamonds_csv

ROWS = 1_000_000
SCALE = 10
ROUNDS = 3
TARGET_GROWTH = 1.10
STAGE_BLOCK_MB = READ_BLOCK_BYTES >> 20
READER_BLOCKS_MB = sorted({STAGE_BLOCK_MB, 1})


def measure(mode: str, csv: Path, workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.ingest_worker",
            mode,
            str(csv),
            TARGET,
            str(workdir / f"{mode}-{csv.stem}.parquet"),
            str(workdir / "warmup.csv"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def figure(run: dict[str, Any]) -> str:
    above = run["peak_mb"] - run["after_imports_mb"]
    return (
        f"peak {run['peak_mb']:6.0f} MB  (after imports {run['after_imports_mb']:4.0f} MB, "
        f"data-dependent {above:5.0f} MB)  {run['seconds']:5.1f} s"
    )


def same_table(streamed: dict[str, Any], whole: dict[str, Any]) -> list[str]:
    """Differences in rows and columns between the two paths' outputs (types listed apart)."""
    problems = []
    for key in ("rows", "rows_read", "rows_dropped_missing_target", "columns"):
        if streamed["facts"][key] != whole["facts"][key]:
            problems.append(
                f"{key}: streamed {streamed['facts'][key]}, whole {whole['facts'][key]}"
            )
    if streamed["parquet_rows"] != whole["parquet_rows"]:
        problems.append(
            f"Parquet rows: streamed {streamed['parquet_rows']}, whole {whole['parquet_rows']}"
        )
    if list(streamed["parquet_columns"]) != list(whole["parquet_columns"]):
        problems.append(
            f"columns: streamed {list(streamed['parquet_columns'])}, "
            f"whole {list(whole['parquet_columns'])}"
        )
    return problems


def type_differences(streamed: dict[str, Any], whole: dict[str, Any]) -> str:
    differing = [
        f"{name} {kind} vs {whole['parquet_columns'].get(name)}"
        for name, kind in streamed["parquet_columns"].items()
        if whole["parquet_columns"].get(name) != kind
    ]
    return "; ".join(differing) or "none"


def test_streaming_peak_memory_is_flat(tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("streaming-memory")
    write_diamonds_csv(workdir / "warmup.csv", 1000, seed=99)
    small = write_diamonds_csv(workdir / "n.csv", ROWS, seed=0)
    large = write_diamonds_csv(workdir / "10n.csv", SCALE * ROWS, seed=1)
    sizes = {"N": small, f"{SCALE}N": large}

    streamed: dict[str, list[dict[str, Any]]] = {name: [] for name in sizes}
    for _ in range(ROUNDS):
        for name, csv in sizes.items():
            streamed[name].append(measure("stream", csv, workdir))
    whole = {name: measure("whole", csv, workdir) for name, csv in sizes.items()}
    readers = {
        (block, name): measure(f"reader-{block}", csv, workdir)
        for block in READER_BLOCKS_MB
        for name, csv in sizes.items()
    }

    lowest = {name: min(runs, key=lambda r: r["peak_mb"]) for name, runs in streamed.items()}
    small_peak, large_peak = lowest["N"]["peak_mb"], lowest[f"{SCALE}N"]["peak_mb"]
    growth = large_peak / small_peak
    above = {name: run["peak_mb"] - run["after_imports_mb"] for name, run in lowest.items()}
    rows = [
        ("input N", f"{ROWS:,} rows, {small.stat().st_size / 2**20:.0f} MB CSV"),
        (f"input {SCALE}N", f"{SCALE * ROWS:,} rows, {large.stat().st_size / 2**20:.0f} MB CSV"),
    ]
    for name in sizes:
        rows.append((f"streaming, {name} (lowest of {ROUNDS})", figure(lowest[name])))
        rows.append(
            (f"  all peaks {name}", ", ".join(f"{r['peak_mb']:.0f}" for r in streamed[name]))
        )
    rows += [
        (
            f"peak growth {SCALE}N / N",
            f"{growth:.2f}  (target <= {TARGET_GROWTH}: "
            f"{'met' if growth <= TARGET_GROWTH else 'MISSED'}); data-dependent part "
            f"{above[f'{SCALE}N'] / above['N']:.2f}x ({above['N']:.0f} -> "
            f"{above[f'{SCALE}N']:.0f} MB)",
        ),
        *[(f"read-everything path, {name}", figure(whole[name])) for name in sizes],
        *[
            (f"bare open_csv loop, {block} MB blocks, {name}", figure(readers[block, name]))
            for block in READER_BLOCKS_MB
            for name in sizes
        ],
    ]
    problems = {name: same_table(streamed[name][0], whole[name]) for name in sizes}
    for name in sizes:
        rows.append(
            (
                f"streamed vs whole, {name}",
                "same rows and columns" if not problems[name] else "; ".join(problems[name]),
            )
        )
        rows.append(
            ("  column types streamed vs whole", type_differences(streamed[name][0], whole[name]))
        )
    report("peak RSS of chunked ingestion (fresh process per input)", rows)

    assert not any(problems.values()), problems
    assert growth <= TARGET_GROWTH, (
        f"streaming ingestion's peak RSS grew {growth:.2f}x from {small_peak:.0f} MB to "
        f"{large_peak:.0f} MB for a {SCALE}x larger input (target <= {TARGET_GROWTH}x)"
    )
