"""The search's study in a real PostgreSQL database, as on the cluster (the URL comes from the
environment, set there from the `stablepipe-optuna` Secret): workers in separate processes
share it, and a worker killed in the middle of a trial loses nothing but that trial."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import sqlalchemy.exc

from components.collect.logic import best_configuration
from components.core import study as study_logic
from components.core.study import STORAGE_ENV, create_study, load_study
from components.tune.logic import run_worker
from tests.benchmarks.tune_worker import search_data

NAMES = itertools.count()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def study_database(postgres_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database on the test server (its name is yielded); its psycopg URL is the
    study storage."""
    name = f"optuna_{os.getpid()}_{next(NAMES)}"
    with postgres_server.connect("postgres") as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = (
        f"postgresql+psycopg://postgres@/{name}"
        f"?host={postgres_server.socket_dir}&port={postgres_server.port}"
    )
    monkeypatch.setenv(STORAGE_ENV, url)
    yield name


def worker(study_dir: Path, csv: Path, trials: int, index: int, workers: int) -> subprocess.Popen:
    """One search worker process, as a tune task is (the URL reaches it in its environment)."""
    command = ["-m", "tests.benchmarks.tune_worker", str(study_dir), str(csv), "target"]
    return subprocess.Popen(
        [sys.executable, *command, str(trials), str(index), str(workers)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_workers_in_two_processes_share_a_postgres_study(
    study_database: str, postgres_server, tmp_path: Path, breast_cancer: pd.DataFrame
) -> None:
    csv = tmp_path / "data.csv"
    breast_cancer.to_csv(csv, index=False)
    create_study(tmp_path / "study", "shared", "roc_auc")
    assert not (tmp_path / "study" / study_logic.JOURNAL_NAME).exists()  # the database holds it
    processes = [worker(tmp_path / "study", csv, 8, index, 2) for index in (0, 1)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    study = load_study(tmp_path / "study")
    trials = study.get_trials(deepcopy=False)
    with postgres_server.connect(study_database) as database:  # the trials are in PostgreSQL
        assert database.execute("SELECT count(*) FROM trials").fetchone() == (len(trials),)
    # each worker stops once the study holds 8; running at the same moment they may overshoot
    assert 8 <= len(trials) <= 9
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    best = best_configuration([study], "roc_auc")
    assert best["trials"]["complete"] + best["trials"]["pruned"] == len(trials)
    assert 0.9 < best["cv_score"] <= 1.0


RUNNING_WITH_HEARTBEAT = (
    "SELECT count(*) FROM trial_heartbeats JOIN trials USING (trial_id) "
    "WHERE trials.state = 'RUNNING'"
)


def kill_during_a_trial(
    doomed: subprocess.Popen, study: optuna.Study, database: Any
) -> dict[int, optuna.trial.TrialState]:
    """SIGKILL `doomed` as soon as it runs a trial whose heartbeat has started (a trial killed
    before its first heartbeat cannot be told from a live one: Optuna leaves it RUNNING; the
    collect step ignores it); returns the trials' states after."""
    # no deadline of its own: pytest-timeout ends a worker that never starts a trial
    while database.execute(RUNNING_WITH_HEARTBEAT).fetchone() == (0,):
        if doomed.poll() is not None:
            pytest.fail(f"the worker exited before running a trial: {doomed.communicate()[1]}")
        time.sleep(0.02)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=60)
    return {t.number: t.state for t in study.get_trials(deepcopy=False)}


def test_a_killed_worker_loses_only_its_running_trial(
    study_database: str,
    postgres_server,
    tmp_path: Path,
    breast_cancer: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL (an evicted pod) in the middle of a trial: the next worker marks the silent
    trial FAIL once the grace period has passed, and the search goes on to its trial count."""
    csv = tmp_path / "data.csv"
    breast_cancer.to_csv(csv, index=False)
    create_study(tmp_path / "study", "crash", "roc_auc")
    study = load_study(tmp_path / "study")
    running: list[int] = []
    with postgres_server.connect(study_database) as database:
        for _ in range(5):  # a trial may end between seeing it run and the kill: try again
            doomed = worker(tmp_path / "study", csv, 100, 0, 1)
            before = kill_during_a_trial(doomed, study, database)
            running = [n for n, s in before.items() if s == optuna.trial.TrialState.RUNNING]
            if running:
                break
    assert len(running) == 1

    monkeypatch.setattr(study_logic, "GRACE_SECONDS", 1)  # instead of two minutes
    time.sleep(1.5)
    survivor = load_study(tmp_path / "study")
    outcome = run_worker(survivor, search_data(str(csv), "target"), len(before) + 3, 300, 1)
    after = {t.number: t.state for t in survivor.get_trials(deepcopy=False)}
    assert after[running[0]] == optuna.trial.TrialState.FAIL
    # finished trials stay as they were; enqueued ones (the default configurations the killed
    # worker queued) are run by the survivor on top of its three new trials
    assert all(after[n] == state for n, state in before.items() if state.is_finished())
    waiting = sum(state == optuna.trial.TrialState.WAITING for state in before.values())
    assert outcome["trials_run"] == 3 + waiting and len(after) == len(before) + 3
    best = best_configuration([survivor], "roc_auc")
    assert best["trials"]["failed"] == 1


def lost_then(follow_up: Exception) -> optuna.exceptions.StorageInternalError:
    """The error Optuna's RDBStorage raises when a query is cut by a server shutdown and the
    next query in the same session fails with `follow_up` (its `_get_trials` fallback)."""
    try:
        try:
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("AdminShutdown"))
        except sqlalchemy.exc.OperationalError:
            raise follow_up  # noqa: B904 - raised as the session raises it, context kept
    except sqlalchemy.exc.SQLAlchemyError as error:
        try:
            raise optuna.exceptions.StorageInternalError("commit failed") from error
        except optuna.exceptions.StorageInternalError as wrapped:
            return wrapped


def test_a_lost_connection_is_found_behind_the_error_raised() -> None:
    pending = sqlalchemy.exc.PendingRollbackError("Can't reconnect until rolled back")
    assert study_logic.connection_lost(lost_then(pending))
    assert study_logic.connection_lost(sqlalchemy.exc.OperationalError("x", {}, Exception()))
    bad_data = sqlalchemy.exc.DataError("INSERT", {}, Exception("value too long"))
    try:
        raise optuna.exceptions.StorageInternalError("commit failed") from bad_data
    except optuna.exceptions.StorageInternalError as error:
        assert not study_logic.connection_lost(error)
