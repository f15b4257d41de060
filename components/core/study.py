"""create_study: make the Optuna study (and its storage) before any search worker starts.

Locally the storage is a journal file inside the study artifact's folder, which every worker of
the run opens (kfp.local hands all of them the same path). On a cluster, where each pod gets its
own copy of an artifact, the storage must be a database shared by the pods: its URL comes from the
environment variable `STABLEPIPE_OPTUNA_STORAGE` (set from a Kubernetes Secret), never from a
pipeline parameter. A database storage outlives a restart of its server: pooled connections are
checked before use and a call that finds the server gone is tried again for up to
RETRY_SECONDS (`RetryingRDBStorage`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import optuna
import sqlalchemy.exc
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.study import StudyDirection
from typing_extensions import TypedDict

from components.common.readback import read_json_as
from components.common.stage import RUN_ID_ENV
from components.core.metrics import study_direction

STORAGE_ENV = "STABLEPIPE_OPTUNA_STORAGE"
# A database study's workers record a heartbeat; a RUNNING trial whose worker has been silent
# for GRACE_SECONDS (a pod killed, a node lost) is marked FAIL by the next worker to start.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
# A database call that lost its connection (the server restarted, failed over, or a network
# blip) is tried again with a growing pause, for up to RETRY_SECONDS in all; then it raises and
# the task's own retries (set_retry in the pipeline) take over.
RETRY_SECONDS = 60.0
RETRY_FIRST_PAUSE = 0.25
RETRY_MAX_PAUSE = 4.0
JOURNAL_NAME = "journal.log"
SPEC_NAME = "study.json"

log = logging.getLogger(__name__)
Result = TypeVar("Result")


def connection_lost(error: BaseException) -> bool:
    """Whether a storage error is the database going away rather than the call itself: an
    OperationalError (server shut down, connection refused or reset) or a connection SQLAlchemy
    invalidated, raised itself or behind the error raised. Optuna's RDBStorage can hide it:
    when a server shutdown cuts a query that loads a trial's parameters, its `_get_trials` falls
    back to a second query in the same session, which raises PendingRollbackError with the
    OperationalError as its context. Integrity errors and bad data are not retried."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_on_lost_connection(what: str, call: Callable[[], Result]) -> Result:
    """`call()`, tried again while it fails with a lost connection, for up to RETRY_SECONDS."""
    deadline = time.monotonic() + RETRY_SECONDS
    pause = RETRY_FIRST_PAUSE
    while True:
        try:
            return call()
        except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.DBAPIError) as error:
            if not connection_lost(error) or time.monotonic() + pause > deadline:
                raise
            reason = str(error.__cause__ or error).splitlines()[0]
            log.warning(
                "the study database did not answer %s (%s); retrying in %.2gs", what, reason, pause
            )
            time.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_PAUSE)


# Set while a retried call runs on this thread: a storage method that calls another (as
# create_new_trial calls _create_new_trial) retries once, at the outermost call.
_retrying = threading.local()


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if getattr(_retrying, "active", False):
            return method(self, *args, **kwargs)
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            try:
                return method(self, *args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                if attempts > 1 and name == "set_trial_state_values":
                    # the first attempt's commit reached the database but its answer was lost
                    return finished_as_asked(self, *args, **kwargs)
                raise

        _retrying.active = True
        try:
            return retry_on_lost_connection(f"to {name}", attempt)
        finally:
            _retrying.active = False

    return call


def finished_as_asked(
    storage: RetryingRDBStorage,
    trial_id: int,
    state: optuna.trial.TrialState,
    values: Any = None,
) -> bool:
    """A retried set_trial_state_values found the trial finished: True when it holds the state
    the lost attempt wrote, else the error stands (another worker finished it)."""
    if storage.get_trial(trial_id).state == state:
        return True
    raise optuna.exceptions.UpdateFinishedTrialError(
        f"trial {trial_id} was finished by another worker"
    )


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls outlive a database restart.

    Pooled connections are checked before use (`pool_pre_ping`), so those a restart closed are
    replaced without an error; a call made while the server is down is tried again (see
    `retry_on_lost_connection`). A write whose commit reached the database but whose answer was
    lost is not repeated blindly for a trial's end state; a lost answer to a new trial's
    creation leaves that trial RUNNING without a heartbeat (the collect step ignores it).
    """


# Every storage method Optuna's cache layer and the study call on the database backend.
RETRIED_METHODS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "record_heartbeat",
    "_get_stale_trial_ids",
)
for _name in RETRIED_METHODS:
    setattr(RetryingRDBStorage, _name, _retried(_name))


def open_storage(study_dir: str | Path) -> optuna.storages.BaseStorage:
    """The study storage: the database from the environment, else the run's journal file."""
    url = os.environ.get(STORAGE_ENV)
    if url:
        with warnings.catch_warnings():  # heartbeats are marked experimental by Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return retry_on_lost_connection(
                "when opened",
                lambda: RetryingRDBStorage(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                ),
            )
    journal = Path(study_dir) / JOURNAL_NAME
    journal.parent.mkdir(parents=True, exist_ok=True)
    backend = JournalFileBackend(str(journal), lock_obj=JournalFileOpenLock(str(journal)))
    return JournalStorage(backend)


class StudySpec(TypedDict):
    study_name: str
    metric: str
    direction: Literal["maximize", "minimize"]


def create_study(study_dir: str | Path, study_name: str, metric: str) -> dict[str, Any]:
    """Create the study and write its spec (name, metric, direction) next to the journal."""
    direction = study_direction(metric)
    Path(study_dir).mkdir(parents=True, exist_ok=True)
    optuna.create_study(
        study_name=study_name,
        storage=open_storage(study_dir),
        direction=StudyDirection[direction.upper()],
        load_if_exists=True,
    )
    spec = {"study_name": study_name, "metric": metric, "direction": direction}
    (Path(study_dir) / SPEC_NAME).write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return spec


def study_spec(study_dir: str | Path) -> dict[str, Any]:
    """Name, metric and direction of the study a create_study step made."""
    path = Path(study_dir) / SPEC_NAME
    return dict(read_json_as(path.read_bytes(), StudySpec, f"the study spec {str(path)!r}"))


def load_study(study_dir: str | Path, study_name: str = "") -> optuna.Study:
    """Open a study of the storage: the one create_study made unless `study_name` is given."""
    name = study_name or study_spec(study_dir)["study_name"]
    return optuna.load_study(study_name=name, storage=open_storage(study_dir))


def attempt_study(study_dir: str | Path) -> optuna.Study:
    """The study this attempt of the search writes to, created on first use.

    When the CLI runs the pipeline it sets a run id for every task; the search then writes to
    `<study>.<run id>`. A run killed during the search and started again (its finished stages
    served from the cache) therefore searches afresh in a study of its own instead of continuing
    one that holds a dead worker's trials, and ends with the result of an uninterrupted run.
    """
    spec = study_spec(study_dir)
    run_id = os.environ.get(RUN_ID_ENV, "")
    name = f"{spec['study_name']}.{run_id}" if run_id else spec["study_name"]
    return optuna.create_study(
        study_name=name,
        storage=open_storage(study_dir),
        direction=StudyDirection[spec["direction"].upper()],
        load_if_exists=True,
    )


# A study's user attribute holding one search worker's CPU seconds: this prefix + its index.
WORKER_CPU_ATTR = "cpu_seconds.worker"


def param_prefix(family: str) -> str:
    """The prefix of a family's parameter names in the study (spaces of families stay apart)."""
    return {"hist_gradient_boosting": "hgb"}.get(family, family) + "_"


def config_from_trial(trial: optuna.trial.FrozenTrial) -> tuple[str, dict[str, Any]]:
    """(family, estimator params) from a trial's flat, prefixed parameters."""
    family = str(trial.params["model"])
    prefix = param_prefix(family)
    params = {k.removeprefix(prefix): v for k, v in trial.params.items() if k.startswith(prefix)}
    return family, params
