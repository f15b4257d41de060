"""Helpers for end-to-end runs of the `stablepipe` command."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The smallest search that still runs every stage: for tests about everything but the search.
QUICK = ("--trials", "2", "--workers", "1", "--cv-folds", "2")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def stablepipe(
    *args: str, cwd: Path | None = None, timeout: float = 600, env: dict[str, str] | None = None
) -> CliResult:
    """Run the real console entry point in a child process, as a user would (with `env` added to
    the environment)."""
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def one_class_csv(path: Path) -> Path:
    """200 rows whose target has one class: the validate stage refuses them (exit 2)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "target"])
        writer.writerows([i, i % 7, 1] for i in range(200))
    return path


def only_summary(runs_dir: Path) -> dict[str, Any]:
    summaries = sorted(runs_dir.glob("*/summary.json"))
    assert len(summaries) == 1, summaries
    return dict(json.loads(summaries[0].read_text()))


def latest_summary(runs_dir: Path) -> dict[str, Any]:
    summaries = sorted(runs_dir.glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    return dict(json.loads(summaries[-1].read_text()))


def wait_for_event(runs_dir: Path, stage: str, event: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in runs_dir.glob("*/logs/stages.jsonl"):
            for line in log.read_text().splitlines():
                record = json.loads(line)
                if record["stage"] == stage and record["event"] == event:
                    return
        time.sleep(0.2)
    pytest.fail(f"no {stage}/{event} event within {timeout}s")


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    return tmp_path
