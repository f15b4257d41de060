"""tune: one search worker of the shared Optuna study, and the selection of the best trial.

The search space is conditional: first the model family, then that family's hyperparameters.
Each trial is scored by k-fold cross-validation on the training split; the running mean is
reported after every fold so the median pruner can stop a hopeless trial early. The whole
model (preprocessing + features + estimator) is cloned and refitted in every fold.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from components.common.settings import RunConfig, check_settings
from components.core.families import (
    DEFAULT_CONFIGURATIONS,
    families_for,
    make_model,
    suggest_config,
    trial_params,
)
from components.core.metrics import cv_metric, score
from components.core.registry import champion_configuration, settings_registry
from components.core.study import attempt_study
from components.core.transformers.timeseries import forecasting_step, model_inputs

__all__ = ["tune_worker"]

# Trials that count against the budget; enqueued (WAITING) ones are yet to be run.
STARTED_STATES = (
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def cv_splitter(
    task: str, y: pd.Series, folds: int, seed: int, forecasting: bool = False
) -> KFold | StratifiedKFold | TimeSeriesSplit:
    """Seeded folds, stratified for classification and capped by the rarest class; for a
    forecast, time-ordered folds (rows come sorted by time), each scored after its fit."""
    if forecasting:
        return TimeSeriesSplit(n_splits=folds)
    if task == "regression":
        return KFold(n_splits=folds, shuffle=True, random_state=seed)
    rarest = int(y.value_counts().min())
    return StratifiedKFold(n_splits=max(2, min(folds, rarest)), shuffle=True, random_state=seed)


@dataclass
class SearchData:
    """What a worker searches on: the training split and the fixed pieces around it."""

    X: pd.DataFrame
    y: pd.Series
    feature_steps: Pipeline
    task: str
    folds: int
    seed: int


def objective(
    trial: optuna.Trial, data: SearchData, worker_index: int = 0, deadline: float = float("inf")
) -> float:
    """Mean cross-validated score of one sampled configuration, pruned fold by fold, and
    stopped between folds once the search's `deadline` (time.monotonic) has passed and the
    study already holds a complete trial."""
    trial.set_user_attr("worker", worker_index)
    family, params = suggest_config(trial, families_for(len(data.X)))
    metric = cv_metric(data.task)
    scores: list[float] = []
    # every promotion metric per fold, from one prediction: evaluate's noise bar for --metric
    # and for the tie-break comes from these
    by_metric: dict[str, list[float]] = {}
    forecasting = forecasting_step(data.feature_steps) is not None
    splitter = cv_splitter(data.task, data.y, data.folds, data.seed, forecasting)
    folds = splitter.get_n_splits()
    for fold, (fit_rows, score_rows) in enumerate(splitter.split(data.X, data.y)):
        model = make_model(data.feature_steps, family, params, data.task, data.seed)
        model.fit(data.X.iloc[fit_rows], data.y.iloc[fit_rows])
        measured = score(model, data.X.iloc[score_rows], data.y.iloc[score_rows], data.task)
        for name, value in measured.items():
            by_metric.setdefault(name, []).append(value)
        scores.append(measured[metric])
        trial.report(float(np.mean(scores)), step=fold)
        if trial.should_prune() or (
            fold + 1 < folds  # a trial whose last fold is done completes
            and time.monotonic() > deadline
            and has_complete_trial(trial.study)
        ):
            trial.set_user_attr("fold_scores", scores)
            raise optuna.TrialPruned()
    trial.set_user_attr("fold_scores", scores)
    trial.set_user_attr("fold_metrics", by_metric)
    trial.set_user_attr("cv_std", float(np.std(scores)))
    return float(np.mean(scores))


def has_complete_trial(study: optuna.Study) -> bool:
    complete = (optuna.trial.TrialState.COMPLETE,)
    return bool(study.get_trials(deepcopy=False, states=complete))


def enqueue_defaults(study: optuna.Study, rows: int) -> None:
    """Enqueue DEFAULT_CONFIGURATIONS (Optuna skips those another worker already enqueued)."""
    for family, params in DEFAULT_CONFIGURATIONS:
        enqueue(study, family, params, rows, "default")


def enqueue(study: optuna.Study, family: str, params: dict[str, Any], rows: int, mark: str) -> bool:
    """Enqueue a configuration, marked with the user attribute `mark`, unless its family is not
    searched at this data size; Optuna skips it when the study already has it (another worker
    enqueued it). Returns whether it was offered to the study."""
    if family not in families_for(rows):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.enqueue_trial(
            trial_params(family, params), user_attrs={mark: True}, skip_if_exists=True
        )
    return True


def threads_per_worker(workers: int) -> int:
    """The cores of this machine shared out between the workers (at least one each)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run_worker(
    study: optuna.Study,
    data: SearchData,
    n_trials: int,
    time_budget: float,
    worker_index: int,
    workers: int = 1,
) -> dict[str, Any]:
    """Run trials of the shared study until it holds `n_trials` or the time budget is spent.

    Native thread pools (OpenMP in histogram gradient boosting, BLAS) are capped at this
    worker's share of the cores: two workers each spinning two OpenMP threads on two cores
    ran the search several times slower than one worker.
    """
    with threadpool_limits(limits=threads_per_worker(workers)):
        return search(study, data, n_trials, time_budget, worker_index)


def search(
    study: optuna.Study, data: SearchData, n_trials: int, time_budget: float, worker_index: int
) -> dict[str, Any]:
    """The body of `run_worker`, with the thread limits in place."""
    check_settings({"trials": n_trials, "time_budget": time_budget})
    with warnings.catch_warnings():
        # multivariate/group TPE and stale-trial handling are marked experimental by Optuna.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Each worker samples with its own seed so parallel workers do not propose the same
        # trials; constant_liar keeps them off a region another worker is evaluating right now.
        study.sampler = optuna.samplers.TPESampler(
            seed=data.seed + worker_index,
            n_startup_trials=min(10, max(2, n_trials // 4)),
            multivariate=True,
            group=True,
            constant_liar=True,
        )
        optuna.storages.fail_stale_trials(study)  # trials of a crashed worker become FAIL
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    started = time.perf_counter()
    deadline = time.monotonic() + time_budget
    finished: list[int] = []
    # The study's trial count is shared: start only what is left, and stop once the study holds
    # n_trials (workers running at the same moment may overshoot by at most workers - 1).
    remaining = n_trials - len(study.get_trials(deepcopy=False, states=STARTED_STATES))
    if remaining <= 0:
        return {"worker": worker_index, "trials_run": 0, "seconds": 0.0}
    enqueue_defaults(study, len(data.X))
    study.optimize(
        lambda trial: objective(trial, data, worker_index, deadline),
        n_trials=remaining,
        timeout=time_budget,
        callbacks=[
            optuna.study.MaxTrialsCallback(n_trials, states=STARTED_STATES),
            lambda _study, trial: finished.append(trial.number),
        ],
        catch=(ValueError, ArithmeticError),
        gc_after_trial=False,
    )
    return {
        "worker": worker_index,
        "trials_run": len(finished),
        "seconds": round(time.perf_counter() - started, 3),
    }


def warm_start(study: optuna.Study, champion: dict[str, Any] | None, rows: int) -> bool:
    """Enqueue the champion's configuration (its card's `best`) as the study's first trial.

    Every worker calls this before searching; Optuna skips the trial when another worker has
    already enqueued it. Nothing is enqueued when the champion's family is not searched at
    this data size (k-NN and SVMs only on small data). Returns whether it was enqueued.
    """
    if not champion:
        return False
    return enqueue(study, champion["model"], champion.get("params", {}), rows, "warm_start")


def tune_worker(
    study_dir: str | Path,
    train: pd.DataFrame,
    feature_steps: Pipeline,
    worker_index: int,
    settings: RunConfig,
) -> tuple[str, dict[str, Any]]:
    """The tune stage, one worker of the shared study: trials until the study holds `trials`
    or `time_budget` is spent, each scored by `cv_folds`-fold cross-validation of the whole
    Pipeline on the training split; the champion's configuration (when it predicts the same
    target and task) is the study's first trial. Returns the study searched and the facts."""
    s = settings
    data = SearchData(
        X=model_inputs(train, s.target, feature_steps),
        y=train[s.target],
        feature_steps=feature_steps,
        task=s.task,
        folds=s.cv_folds,
        seed=s.seed,
    )
    searched = attempt_study(study_dir)
    champion = champion_configuration(settings_registry(s), s.s3_endpoint, s.target, s.task)
    warmed = warm_start(searched, champion, len(train))
    outcome = run_worker(searched, data, s.trials, s.time_budget, worker_index, s.workers)
    return searched.study_name, {"warm_start": warmed, **outcome}
