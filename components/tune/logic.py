"""tune: one search worker of the shared Optuna study, and the selection of the best trial.

The search space is conditional: first the model family, then that family's hyperparameters.
Each trial is scored by k-fold cross-validation on the training split; the running mean is
reported after every fold so the median pruner can stop a hopeless trial early. The whole
model (preprocessing + features + estimator) is cloned and refitted in every fold.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import joblib
import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from components.common.settings import RunConfig, check_settings
from components.core.ensemble import (
    FIT_SECONDS_ATTR,
    OutOfFold,
    keep_predictions,
    record_target,
    target_codes,
)
from components.core.families import (
    CATBOOST_STOPPING,
    DEFAULT_CONFIGURATIONS,
    ENSEMBLE_DEFAULT_MAX_ROWS,
    ENSEMBLE_DEFAULTS,
    LARGE_DEFAULT_ROWS,
    LOG_TARGET_DEFAULTS,
    families_for,
    fit_size,
    fitted_size,
    make_model,
    suggest_config,
    trial_params,
    with_earlier_values,
)
from components.core.metrics import cv_metric, metrics_of, model_output
from components.core.registry import champion_configuration, settings_registry
from components.core.schedule import STARTUP_TRIALS, ScheduledPruner, ScheduledSampler
from components.core.study import WORKER_CPU_ATTR, attempt_study
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


# A worker stops this long before the deadline: what is left to do after its last trial (write
# its output, end the process) before kfp.local sees the task finished.
EXIT_SECONDS = 0.5
# The fold cache of one worker holds at most this many bytes of transformed folds; beyond it,
# a fold's preprocessing is fitted again for each trial, as without the cache.
FOLD_CACHE_BYTES = 2 * 1024**3


@dataclass
class SearchData:
    """What a worker searches on: the training split and the fixed pieces around it, and the
    folds' preprocessed inputs once computed (see `fold_inputs`)."""

    X: pd.DataFrame
    y: pd.Series
    feature_steps: Pipeline
    task: str
    folds: int
    seed: int
    cache: dict[tuple[int, str], tuple[Any, Any]] = field(default_factory=dict)

    @functools.cached_property
    def classes(self) -> int:
        """The number of classes (0: regression)."""
        return 0 if self.task == "regression" else int(target_codes(self.y, self.task)[1])

    @functools.cached_property
    def log_target(self) -> bool:
        """Whether the search offers a log target (families.make_estimator): a regression
        whose target is never negative, and not a forecast (fitted to what the seasonal-naive
        forecast misses, which may be)."""
        if self.task != "regression" or forecasting_step(self.feature_steps) is not None:
            return False
        return bool(len(self.y)) and float(self.y.min()) >= 0

    def cached_bytes(self) -> int:
        return sum(nbytes(a) + nbytes(b) for a, b in self.cache.values())


def nbytes(matrix: Any) -> int:
    """Bytes held by a dense or sparse matrix (or a DataFrame)."""
    if hasattr(matrix, "data") and hasattr(matrix, "indices"):  # scipy sparse
        return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)
    if isinstance(matrix, pd.DataFrame):
        return int(matrix.memory_usage(deep=True).sum())
    return int(getattr(matrix, "nbytes", 0))


def variant(model: Pipeline) -> str:
    """The model's variant of the preprocessing (its steps before the estimator), taken
    before they are fitted: what the fold cache is keyed by, with the fold."""
    return str(joblib.hash(model[:-1]))


def cached_folds(model: Any) -> bool:
    """Whether the search scores the model on cached preprocessed folds: not a forecast,
    whose steps see the rows' history and are fitted with it in every fold."""
    return isinstance(model, Pipeline) and "timeseries" not in model.named_steps


def fold_inputs(
    data: SearchData, model: Pipeline, fold: int, fit_rows: np.ndarray, score_rows: np.ndarray
) -> tuple[Any, Any, float]:
    """The fold's rows through the model's preprocessing and features, fitted on the fit rows
    (fit_transform, as Pipeline.fit does: a target encoder cross-fits) and applied to the
    score rows, and the seconds that took (0 when cached). The preprocessing does not depend
    on the trial, only on the family's variant of it (`suit_family`), so it is fitted once
    per fold and variant and reused by every later trial of this worker."""
    key = (fold, variant(model))
    if key in data.cache:
        return (*data.cache[key], 0.0)
    started = time.perf_counter()
    fitted = model[:-1].fit_transform(data.X.iloc[fit_rows], data.y.iloc[fit_rows])
    scored = model[:-1].transform(data.X.iloc[score_rows])
    seconds = time.perf_counter() - started
    if data.cached_bytes() + nbytes(fitted) + nbytes(scored) <= FOLD_CACHE_BYTES:
        data.cache[key] = (fitted, scored)
    return fitted, scored, seconds


def fit_and_score(
    data: SearchData, model: Pipeline, fold: int, fit_rows: np.ndarray, score_rows: np.ndarray
) -> tuple[dict[str, float], np.ndarray, np.ndarray, float, float]:
    """Fit the model on a fold's fit rows and score it on its score rows: the estimator alone
    on the cached preprocessed folds, or (a forecast) the whole model. Returns the metrics,
    what they were computed from (`model_output`), the seconds of the fit and prediction and
    those of the fold's preprocessing when it was computed (0 when cached, or a forecast)."""
    y_fit, y_score = data.y.iloc[fit_rows], data.y.iloc[score_rows]
    preprocessing = 0.0
    if not cached_folds(model):
        started = time.perf_counter()
        model.fit(data.X.iloc[fit_rows], y_fit)
        output, classes = model_output(model, data.X.iloc[score_rows], data.task)
    else:
        fitted, scored, preprocessing = fold_inputs(data, model, fold, fit_rows, score_rows)
        started = time.perf_counter()
        output, classes = model_output(model[-1].fit(fitted, y_fit), scored, data.task)
    fitting = time.perf_counter() - started
    measured = metrics_of(y_score, output, classes, data.task)
    return measured, output, classes, fitting, preprocessing


# A trial's first fold: [seconds, its configuration's fitted_size], read by every worker.
FIRST_FOLD_ATTR = "first_fold"


# A family not fitted yet expects its first fold to take at least this share of the search's
# time (from its start to its deadline).
UNSEEN_FAMILY_SHARE = 0.2


def expected_fold(
    study: optuna.Study, family: str, size: float, done: list[float], span: float = 0.0
) -> float:
    """How long the next fold of a trial should take, erring long (a trial that would end
    after the deadline costs more than one stopped a little early): its slowest fold so far;
    before its first, the slowest seconds per unit of fit_size among the first folds of its
    family in the study (every worker's; `first_folds`) times its own size, or, for a family
    not fitted yet, the slowest first fold of any family but at least UNSEEN_FAMILY_SHARE of
    the search's `span` (0 before any fold). Sized, because one family's configurations
    differ in cost tenfold: on diamonds one fold of a 300-tree, depth-15 extra-trees model
    took 10.5 s where the worker's earlier 50-tree, depth-4 one had taken 0.4 s, and the
    search overran its budget by 6%. Families differ as much, and one not fitted yet has no
    size to scale: on fine-food reviews (60 s) a random forest's first fold, started 7-10 s
    before the deadline, took 11.5-12.1 s where the slowest first fold before it had taken
    1.6 s (LightGBM) or 5.8 s (CatBoost), and the tune stage ran 64-67 s."""
    if done:
        return max(done)
    seen = first_folds(study)
    own = [seconds / fitted for kind, seconds, fitted in seen if kind == family]
    if own:
        return max(own) * size
    if not seen:
        return 0.0
    return max(max(seconds for _, seconds, _ in seen), UNSEEN_FAMILY_SHARE * span)


def cheapest_fold(study: optuna.Study) -> float:
    """The quickest first fold in the study (0 before any): while one that quick still fits,
    a trial expected to end after the deadline is skipped, not the worker stopped (a smaller
    configuration may come next)."""
    return min((seconds for _, seconds, _ in first_folds(study)), default=0.0)


def first_folds(study: optuna.Study) -> list[tuple[str, float, float]]:
    """(family, seconds, fitted_size) of every trial's first fold in the study: the seconds of
    the estimator's fit and prediction, without the preprocessing a fold computes once."""
    return [
        (str(t.params.get("model")), *t.user_attrs[FIRST_FOLD_ATTR])
        for t in study.get_trials(deepcopy=False)
        if FIRST_FOLD_ATTR in t.user_attrs
    ]


# The slowest fold preprocessing a trial computed: [variant, seconds], read by every worker.
PREPROCESSING_ATTR = "preprocessing"


def expected_preprocessing(study: optuna.Study, data: SearchData, model: Any, fold: int) -> float:
    """How long the fold's preprocessing should take before the fit: nothing when this
    worker has it cached (or for a forecast), otherwise the slowest one of the model's
    variant seen in the study (any worker's), or of any variant before that. The cache is a
    worker's own: on fine-food reviews, a worker's first fold of a variant the other worker
    had cached spent seconds on TF-IDF that the estimate left out, and the search overran
    its budget by 4%."""
    if not cached_folds(model):
        return 0.0
    wanted = variant(model)
    if (fold, wanted) in data.cache:
        return 0.0
    seen = [
        t.user_attrs[PREPROCESSING_ATTR]
        for t in study.get_trials(deepcopy=False)
        if PREPROCESSING_ATTR in t.user_attrs
    ]
    own = [seconds for kind, seconds in seen if kind == wanted]
    return max(own or [seconds for _, seconds in seen], default=0.0)


def objective(
    trial: optuna.Trial,
    data: SearchData,
    worker_index: int,
    sampler: ScheduledSampler,
    span: float = 0.0,
) -> float:
    """Mean cross-validated score of one scheduled configuration, pruned fold by fold, and
    stopped before a fold that would end after the deadline (once the study holds a complete
    trial: the search always finishes one). `span`: the search's time, from its start to that
    deadline (`expected_fold`)."""
    trial.set_user_attr("worker", worker_index)
    if trial.number >= sampler.cap:  # asked at the same moment as the last trial of the cap
        trial.set_user_attr("beyond_cap", True)
        raise optuna.TrialPruned()
    mark = sampler.mark(trial.number)
    if mark:
        trial.set_user_attr(mark, True)
    family, params = suggest_config(trial, families_for(len(data.X)), data.log_target)
    size = fit_size(family, params)
    metric = cv_metric(data.task)
    scores: list[float] = []
    # every promotion metric per fold, from one prediction: evaluate's noise bar for --metric
    # and for the tie-break comes from these
    by_metric: dict[str, list[float]] = {}
    seconds: list[float] = []
    forecasting = forecasting_step(data.feature_steps) is not None
    splitter = cv_splitter(data.task, data.y, data.folds, data.seed, forecasting)
    rows = len(data.y) if ensemble_allowed(data.feature_steps) else 0  # 0: keep none
    predictions = OutOfFold(rows, data.classes)
    fits: list[float] = []  # the estimator's seconds per fold, without preprocessing
    preprocessed = 0.0
    deadline = sampler.deadline
    for fold, (fit_rows, score_rows) in enumerate(splitter.split(data.X, data.y)):
        model = make_model(data.feature_steps, family, params, data.task, data.seed)
        kind = variant(model)  # before the fit: fitting its steps changes the hash
        expected = expected_fold(trial.study, family, size, fits, span)
        expected += expected_preprocessing(trial.study, data, model, fold)
        if time.time() + expected > deadline and has_complete_trial(trial.study):
            trial.set_user_attr("stopped_at_deadline", True)
            if not scores:
                trial.set_user_attr("not_started", True)
                if time.time() + cheapest_fold(trial.study) > deadline:
                    trial.study.stop()  # not even the cheapest fold seen fits: this worker is done
            stop(trial, scores)
        started = time.perf_counter()
        measured, output, labels, fitting, preprocessing = fit_and_score(
            data, model, fold, fit_rows, score_rows
        )
        predictions.add(score_rows, output, labels)
        seconds.append(time.perf_counter() - started)
        fits.append(fitting)
        if fold == 0:
            ran = fitted_size(family, params, model[-1])
            trial.set_user_attr(FIRST_FOLD_ATTR, [round(fitting, 4), ran])
        if preprocessing > preprocessed:
            preprocessed = preprocessing
            trial.set_user_attr(PREPROCESSING_ATTR, [kind, round(preprocessing, 4)])
        for name, value in measured.items():
            by_metric.setdefault(name, []).append(value)
        scores.append(measured[metric])
        trial.report(float(np.mean(scores)), step=fold)
        # the fixed configurations (the champion's, the defaults) run to the end: they are the
        # references the search is judged by and the ensemble's most different members
        if not mark and trial.should_prune():
            stop(trial, scores)
    trial.set_user_attr("fold_scores", scores)
    trial.set_user_attr("fold_metrics", by_metric)
    trial.set_user_attr("cv_std", float(np.std(scores)))
    trial.set_user_attr(FIT_SECONDS_ATTR, round(float(np.mean(seconds)), 3))
    keep_predictions(trial, family, float(np.mean(scores)), predictions.complete())
    return float(np.mean(scores))


def stop(trial: optuna.Trial, scores: list[float]) -> NoReturn:
    """End a trial as pruned, keeping its fold scores."""
    trial.set_user_attr("fold_scores", scores)
    raise optuna.TrialPruned()


def ensemble_allowed(feature_steps: Pipeline) -> bool:
    """Whether the search keeps out-of-fold predictions for an ensemble. Not for a forecast
    (its time-ordered folds leave the first rows unscored), nor with text columns: every
    member carries its own vocabulary, 11 MB of the model file's object list each on 3,750
    fine-food reviews, and an ensemble of four passed the 64 MiB that model files are held
    to (the train stage failed)."""
    if forecasting_step(feature_steps) is not None:
        return False
    preprocess = feature_steps.named_steps.get("preprocess")
    parts = getattr(preprocess, "transformers", [])
    return not any(name.startswith("text_") for name, _, _ in parts)


def row_folds(data: SearchData) -> np.ndarray:
    """The fold in which each row of the training split is scored."""
    folds = np.zeros(len(data.y))
    splitter = cv_splitter(data.task, data.y, data.folds, data.seed)
    for fold, (_, score_rows) in enumerate(splitter.split(data.X, data.y)):
        folds[score_rows] = fold
    return folds


def has_complete_trial(study: optuna.Study) -> bool:
    complete = (optuna.trial.TrialState.COMPLETE,)
    return bool(study.get_trials(deepcopy=False, states=complete))


def fixed_configurations(
    champion: dict[str, Any] | None, rows: int, ensemble: bool = False, log_target: bool = False
) -> list[tuple[dict[str, Any], str]]:
    """The first trials, as flat study parameters with the user attribute marking each: the
    champion's configuration (when its family is searched at this size), then the defaults,
    then, when the search offers a `log_target`, the log-target defaults, then, when it keeps
    predictions for an `ensemble` and the table is small enough, the ensemble's defaults.
    When a log target is offered, a configuration without one (the defaults, a champion saved
    before it was searched) is fitted on the raw target, as it was."""
    available = families_for(rows)
    raw = {"log_target": False} if log_target else {}
    fixed = []
    if champion and champion.get("model") in available:
        family = champion["model"]
        saved = with_earlier_values(family, {**raw, **champion.get("params", {})})
        fixed.append((trial_params(family, saved), "warm_start"))
    defaults = [
        (
            family,
            CATBOOST_STOPPING if family == "catboost" and rows >= LARGE_DEFAULT_ROWS else params,
        )
        for family, params in DEFAULT_CONFIGURATIONS
    ]
    if log_target:
        defaults += LOG_TARGET_DEFAULTS
    if ensemble and rows <= ENSEMBLE_DEFAULT_MAX_ROWS:
        defaults += ENSEMBLE_DEFAULTS
    for family, params in defaults:
        if family in available:
            fixed.append((trial_params(family, {**raw, **params}), "default"))
    return fixed


# Training splits of at least this many rows are searched with LARGE_FOLDS folds by default.
LARGE_ROWS = 10_000
LARGE_FOLDS = 3
SMALL_FOLDS = 5


def folds_for(rows: int, cv_folds: int) -> int:
    """The folds of each trial: `cv_folds` (--cv-folds) when set, otherwise 5, or 3 from
    LARGE_ROWS training rows on (measured on 16,000 diamonds: 44 trials in 60 s with 5
    folds)."""
    if cv_folds:
        return cv_folds
    return LARGE_FOLDS if rows >= LARGE_ROWS else SMALL_FOLDS


def first_pruned_fold(data: SearchData) -> int:
    """The first fold at which a trial may be pruned: the first (0) on a training split of
    LARGE_ROWS rows or more, where one fold scores thousands of rows and trials are scarce;
    otherwise the second, as a fold of a small table scores too few rows to judge by (the
    measurements: the tune README, Pruning)."""
    return 0 if len(data.y) >= LARGE_ROWS else 1


def threads_per_worker(workers: int) -> int:
    """The cores of this machine shared out between the workers (at least one each)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def shared_start(study: optuna.Study, started: float) -> float:
    """The search's start (time.time()): the earliest worker's, recorded in the study by the
    first worker to get there, so that every worker ends by the same deadline."""
    if "search_started" not in study.user_attrs:
        study.set_user_attr("search_started", started)
    return min(started, float(study.user_attrs.get("search_started", started)))


def run_worker(
    study: optuna.Study,
    data: SearchData,
    n_trials: int,
    time_budget: float,
    worker_index: int,
    workers: int = 1,
    champion: dict[str, Any] | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """Run trials of the shared study until the time budget (counted from `started`, the
    earliest worker's start; by default now) is spent or the study holds `n_trials` (0: no
    cap).

    Native thread pools (OpenMP in histogram gradient boosting and LightGBM, BLAS) are capped
    at this worker's share of the cores: two workers each spinning two OpenMP threads on two
    cores ran the search several times slower than one worker.
    """
    # LightGBM's OpenMP runtime must be loaded before the limit is set: threadpoolctl limits
    # the libraries loaded when it is called, and a LightGBM imported later by the first
    # trial ran every worker on all cores (two workers on two cores: 7x slower per fold)
    import lightgbm  # noqa: F401

    with threadpool_limits(limits=threads_per_worker(workers)):
        return search(study, data, n_trials, time_budget, worker_index, workers, champion, started)


def search(
    study: optuna.Study,
    data: SearchData,
    n_trials: int,
    time_budget: float,
    worker_index: int,
    workers: int,
    champion: dict[str, Any] | None,
    started: float | None,
) -> dict[str, Any]:
    """The body of `run_worker`, with the thread limits in place. With a trial cap the
    schedule is reproducible (components/core/schedule.py): trial n is planned from the trials
    numbered n - workers or less, once they have finished."""
    check_settings({"trials": n_trials, "time_budget": time_budget})
    begun = time.perf_counter()
    span = time_budget - EXIT_SECONDS  # from the search's start to its deadline
    deadline = shared_start(study, time.time() if started is None else started) + span
    cap = float(n_trials) if n_trials else float("inf")
    lag = workers if n_trials else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # trials of a crashed worker become FAIL
    families = families_for(len(data.X))
    keeps_predictions = ensemble_allowed(data.feature_steps)
    fixed = fixed_configurations(champion, len(data.X), keeps_predictions, data.log_target)
    warmed = any(mark == "warm_start" for _, mark in fixed)
    sampler = ScheduledSampler(
        lambda trial: suggest_config(trial, families, data.log_target),
        seed=data.seed,
        lag=lag,
        wait=bool(n_trials),
        fixed=fixed,
        startup=min(STARTUP_TRIALS, max(2, n_trials // 4)) if n_trials else STARTUP_TRIALS,
        deadline=deadline,
        cap=cap,
    )
    study.sampler, study.pruner = sampler, ScheduledPruner(lag, first_fold=first_pruned_fold(data))
    if keeps_predictions:
        speedup = (os.cpu_count() or 1) / threads_per_worker(workers)
        record_target(study, data.y, row_folds(data), data.task, time_budget, speedup)
    finished: list[int] = []
    remaining = cap - len(study.get_trials(deepcopy=False, states=STARTED_STATES))
    if remaining <= 0 or time.time() >= deadline:
        return {"worker": worker_index, "warm_start": warmed, "trials_run": 0, "seconds": 0.0}
    callbacks: list[Any] = [lambda _study, trial: finished.append(trial.number)]
    if n_trials:
        # workers running at the same moment may overshoot by at most workers - 1 trials,
        # which the objective then skips (`beyond_cap`)
        callbacks.append(optuna.study.MaxTrialsCallback(n_trials, states=STARTED_STATES))
    cpu = time.process_time()
    study.optimize(
        lambda trial: objective(trial, data, worker_index, sampler, span),
        n_trials=None if not n_trials else int(remaining),
        timeout=max(0.0, deadline - time.time()),
        callbacks=callbacks,
        catch=(ValueError, ArithmeticError),
        gc_after_trial=False,
    )
    # the worker's CPU over its whole search, sampling and pruning included (every thread)
    study.set_user_attr(f"{WORKER_CPU_ATTR}{worker_index}", round(time.process_time() - cpu, 3))
    return {
        "worker": worker_index,
        "warm_start": warmed,
        "trials_run": len(finished),
        "seconds": round(time.perf_counter() - begun, 3),
    }


def tune_worker(
    study_dir: str | Path,
    train: pd.DataFrame,
    feature_steps: Pipeline,
    worker_index: int,
    settings: RunConfig,
) -> tuple[str, dict[str, Any]]:
    """The tune stage, one worker of the shared study: trials until `time_budget` (counted from
    the first worker's process start) is spent or the study holds `trials` (0: no cap), each
    scored by `cv_folds`-fold cross-validation of the whole Pipeline on the training split;
    the champion's configuration (when it predicts the same target and task) is the study's
    first trial. Returns the study searched and the facts."""
    import psutil

    s = settings
    data = SearchData(
        X=model_inputs(train, s.target, feature_steps),
        y=train[s.target],
        feature_steps=feature_steps,
        task=s.task,
        folds=folds_for(len(train), s.cv_folds),
        seed=s.seed,
    )
    searched = attempt_study(study_dir)
    champion = champion_configuration(settings_registry(s), s.s3_endpoint, s.target, s.task)
    started = psutil.Process().create_time()
    outcome = run_worker(
        searched, data, s.trials, s.time_budget, worker_index, s.workers, champion, started
    )
    return searched.study_name, outcome
