"""Ctrl-C and SIGTERM during the search stop the run: no stage retried, exit 130 or 143,
summary.json "interrupted" with the stages that finished, no task left running, nothing
promoted; a rerun resumes from the cache and reports the workers that ran."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.pipeline.conftest import latest_summary, stablepipe, wait_for_event

BEFORE_SEARCH = ["ingest", "validate", "check_quality", "split", "preprocess", "features"]
# a long search: still running when the signal comes
SEARCH = ("--trials", "500", "--time-budget", "300", "--workers", "2")


def run_args(workdir: Path, *search: str) -> list[str]:
    runs, registry = str(workdir / "runs"), str(workdir / "models")
    return ["run", "--runs-dir", runs, "--registry", registry, "--seed", "3", *search]


def tasks_of(runs: Path) -> list[psutil.Process]:
    """Processes whose command line names this test's runs folder (the kfp.local tasks)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(runs) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_search_stops_the_run_and_a_rerun_resumes(
    workdir: Path, signum: int, code: int
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *run_args(workdir, *SEARCH)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_event(workdir / "runs", "tune", "started")
        time.sleep(2.0)  # trials under way in both workers
        assert tasks_of(workdir / "runs"), "the tune tasks should be running"
        process.send_signal(signum)
        # a generous bound against a hang, not a timing: it stops in well under a second here
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    name = signal.Signals(signum).name
    assert stderr.strip().splitlines()[-1].startswith(f"interrupted by {name}")
    assert "✗" not in stderr  # the stopped tasks are not shown as failures, nor retried
    summary = latest_summary(workdir / "runs")
    stages = {s["name"]: s["status"] for s in summary["stages"]}
    assert summary["status"] == "interrupted" and summary["error"]["kind"] == "interrupted"
    assert all(stages[s] == "succeeded" for s in BEFORE_SEARCH), stages
    assert stages["tune"] == "interrupted" and stages["promote"] == "skipped", stages
    assert not (workdir / "models").exists()  # nothing promoted
    deadline = time.monotonic() + 10
    while tasks_of(workdir / "runs") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tasks_of(workdir / "runs"), "a task outlived the run"

    resumed = stablepipe(*run_args(workdir, "--trials", "4", "--workers", "2"))
    assert resumed.code == 0, resumed.stderr
    summary = latest_summary(workdir / "runs")
    stages = {s["name"]: s["status"] for s in summary["stages"]}
    assert all(stages[s] == "cached" for s in BEFORE_SEARCH), stages
    tune = next(s for s in summary["stages"] if s["name"] == "tune")
    assert tune["status"] == "succeeded" and tune["tasks"] == 2, tune
    assert "(2 workers)" in resumed.stderr and summary["promoted"] is True
