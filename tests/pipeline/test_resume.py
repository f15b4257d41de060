"""A run killed midway and started again reuses the finished stages and ends with the result of
an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tests.pipeline.conftest import latest_summary, only_summary, stablepipe, wait_for_event

BEFORE_SEARCH = ["ingest", "validate", "split", "preprocess", "features", "create_study"]


def run_args(workdir: Path, csv: Path, runs: str, *extra: str) -> list[str]:
    return [
        "run",
        "--data",
        str(csv),
        "--target",
        "survived",
        "--runs-dir",
        str(workdir / runs),
        "--registry",
        str(workdir / f"models-{runs}"),
        "--trials",
        "10",
        "--workers",
        "1",
        "--cv-folds",
        "3",
        "--seed",
        "11",
        *extra,
    ]


def test_killed_run_resumes_from_cache_with_the_same_result(
    workdir: Path, titanic: pd.DataFrame
) -> None:
    csv = workdir / "titanic.csv"
    titanic.to_csv(csv, index=False)

    # the reference: one uninterrupted run, with nothing cached
    reference = stablepipe(*run_args(workdir, csv, "reference", "--no-cache"))
    assert reference.code == 0, reference.stderr
    expected = only_summary(workdir / "reference")

    # the same run killed (the whole process group, as a node loss would) during the search
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *run_args(workdir, csv, "runs")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_event(workdir / "runs", "tune", "started")
        time.sleep(1.0)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed = next((workdir / "runs").glob("2*"))
    assert not (killed / "summary.json").exists()  # nothing pretends the killed run finished
    assert not (workdir / "models-runs").exists()

    resumed = stablepipe(*run_args(workdir, csv, "runs"))
    assert resumed.code == 0, resumed.stderr
    summary = latest_summary(workdir / "runs")
    statuses = {s["name"]: s["status"] for s in summary["stages"]}
    assert all(statuses[name] == "cached" for name in BEFORE_SEARCH), statuses
    assert statuses["tune"] == "succeeded" and statuses["train"] == "succeeded"
    assert summary["best"]["model"] == expected["best"]["model"]
    assert summary["best"]["params"] == expected["best"]["params"]
    assert summary["best"]["cv_score"] == expected["best"]["cv_score"]
    assert summary["metrics"] == expected["metrics"]


def test_changed_data_under_the_same_path_is_not_served_from_cache(
    workdir: Path, titanic: pd.DataFrame
) -> None:
    csv = workdir / "titanic.csv"
    titanic.to_csv(csv, index=False)
    args = run_args(workdir, csv, "runs", "--trials", "2", "--cv-folds", "2")  # later flags win
    assert stablepipe(*args).code == 0
    titanic.head(1000).to_csv(csv, index=False)
    assert stablepipe(*args).code == 0
    summary = latest_summary(workdir / "runs")
    assert summary["data"]["rows"] == 1000
    assert {s["name"]: s["status"] for s in summary["stages"]}["ingest"] == "succeeded"
