"""create_study: make the Optuna study (and its storage) before any search worker starts.

Locally the storage is a journal file inside the study artifact's folder, which every worker of
the run opens (kfp.local hands all of them the same path). On a cluster, where each pod gets its
own copy of an artifact, the storage must be a database shared by the pods: its URL comes from the
environment variable `STABLEPIPE_OPTUNA_STORAGE` (set from a Kubernetes Secret), never from a
pipeline parameter.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import optuna
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
JOURNAL_NAME = "journal.log"
SPEC_NAME = "study.json"


def open_storage(study_dir: str | Path) -> optuna.storages.BaseStorage:
    """The study storage: the database from the environment, else the run's journal file."""
    url = os.environ.get(STORAGE_ENV)
    if url:
        with warnings.catch_warnings():  # heartbeats are marked experimental by Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
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


def param_prefix(family: str) -> str:
    """The prefix of a family's parameter names in the study (spaces of families stay apart)."""
    return {"hist_gradient_boosting": "hgb"}.get(family, family) + "_"


def config_from_trial(trial: optuna.trial.FrozenTrial) -> tuple[str, dict[str, Any]]:
    """(family, estimator params) from a trial's flat, prefixed parameters."""
    family = str(trial.params["model"])
    prefix = param_prefix(family)
    params = {k.removeprefix(prefix): v for k, v in trial.params.items() if k.startswith(prefix)}
    return family, params
