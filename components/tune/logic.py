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
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from threadpoolctl import threadpool_limits

from components.common.errors import BadInputError
from components.create_study.logic import cv_metric
from components.features.timeseries import SeasonalResidual, forecasting_step
from components.preprocess.logic import category_codes
from components.tune.trials import param_prefix

# k-nearest neighbours and kernel SVMs scale badly with rows; offered only below these sizes.
KNN_MAX_ROWS = 20_000
SVM_MAX_ROWS = 3_000
# Trials that count against the budget; enqueued (WAITING) ones are yet to be run.
STARTED_STATES = (
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)
FAMILIES = ("linear", "random_forest", "extra_trees", "hist_gradient_boosting", "knn", "svm")
# Tried first (after the champion's configuration), cheapest first: scikit-learn's defaults of
# the two families that fit fast at any size. TPE's random start-up trials otherwise spend a
# short budget on forests, and the search may end below what a default model scores.
DEFAULT_CONFIGURATIONS = (
    ("linear", {"C": 1.0}),
    (
        "hist_gradient_boosting",
        {
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 1e-6,
        },
    ),
)


def scorer_name(metric: str, task: str) -> str:
    """scikit-learn's scorer for a metric (multiclass ROC-AUC is one-vs-rest)."""
    if metric == "roc_auc" and task == "multiclass":
        return "roc_auc_ovr"
    return {"rmse": "neg_root_mean_squared_error"}.get(metric, metric)


def families_for(rows: int) -> list[str]:
    """Model families worth searching for a training split of `rows` rows."""
    families = ["linear", "random_forest", "extra_trees", "hist_gradient_boosting"]
    if rows <= KNN_MAX_ROWS:
        families.append("knn")
    if rows <= SVM_MAX_ROWS:
        families.append("svm")
    return families


def suggest_config(trial: optuna.Trial, families: list[str]) -> tuple[str, dict[str, Any]]:
    """Sample a family, then its hyperparameters (names are prefixed to keep spaces apart)."""
    family = trial.suggest_categorical("model", families)
    params: dict[str, Any]
    if family == "linear":
        params = {"C": trial.suggest_float("linear_C", 1e-3, 1e3, log=True)}
    elif family in ("random_forest", "extra_trees"):
        params = {
            "n_estimators": trial.suggest_int(f"{family}_n_estimators", 50, 300, step=50),
            "max_depth": trial.suggest_int(f"{family}_max_depth", 3, 20),
            "min_samples_leaf": trial.suggest_int(f"{family}_min_samples_leaf", 1, 10),
            "max_features": trial.suggest_float(f"{family}_max_features", 0.2, 1.0),
        }
    elif family == "hist_gradient_boosting":
        params = {
            "learning_rate": trial.suggest_float("hgb_learning_rate", 0.02, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("hgb_max_leaf_nodes", 8, 64, log=True),
            "min_samples_leaf": trial.suggest_int("hgb_min_samples_leaf", 5, 50, log=True),
            "l2_regularization": trial.suggest_float("hgb_l2_regularization", 1e-6, 10.0, log=True),
        }
    elif family == "knn":
        params = {
            "n_neighbors": trial.suggest_int("knn_n_neighbors", 3, 50, log=True),
            "weights": trial.suggest_categorical("knn_weights", ["uniform", "distance"]),
        }
    elif family == "svm":
        params = {
            "C": trial.suggest_float("svm_C", 1e-2, 1e2, log=True),
            "gamma": trial.suggest_float("svm_gamma", 1e-4, 1.0, log=True),
        }
    else:  # pragma: no cover - families come from FAMILIES
        raise ValueError(f"unknown model family {family!r}")
    return family, params


def make_estimator(family: str, params: dict[str, Any], task: str, seed: int) -> Any:
    """A seeded scikit-learn estimator of the family for the task."""
    classify = task != "regression"
    if family == "linear":
        if classify:
            return LogisticRegression(C=params["C"], max_iter=2000, random_state=seed)
        return standardised_target(Ridge(alpha=1.0 / params["C"], random_state=seed))
    if family in ("random_forest", "extra_trees"):
        forest = {
            ("random_forest", True): RandomForestClassifier,
            ("random_forest", False): RandomForestRegressor,
            ("extra_trees", True): ExtraTreesClassifier,
            ("extra_trees", False): ExtraTreesRegressor,
        }[(family, classify)]
        return forest(**params, n_jobs=1, random_state=seed)
    if family == "hist_gradient_boosting":
        boosting = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return boosting(**params, max_iter=300, early_stopping=True, random_state=seed)
    if family == "knn":
        return (KNeighborsClassifier if classify else KNeighborsRegressor)(**params)
    if family == "svm":
        if classify:
            # Platt-scaled probabilities, as SVC(probability=True) gave before its deprecation.
            return CalibratedClassifierCV(
                SVC(**params, random_state=seed), method="sigmoid", cv=3, ensemble=False
            )
        # On a raw target (prices in thousands) SVR's solver crawls; on a standardised one the
        # same C and gamma mean the same thing whatever the target's unit.
        return standardised_target(SVR(C=params["C"], gamma=params["gamma"], cache_size=500))
    raise BadInputError(f"model family must be one of {FAMILIES}; got {family!r}")


def standardised_target(regressor: Any) -> TransformedTargetRegressor:
    """Fit the regressor on the standardised target and predict in the original unit."""
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def make_model(
    feature_steps: Pipeline, family: str, params: dict[str, Any], task: str, seed: int
) -> Pipeline:
    """The whole servable model: an unfitted clone of the feature steps plus the estimator.
    A forecast wraps it: the forecasting step first, then the rest fitted to what the
    seasonal-naive forecast misses (features.timeseries.SeasonalResidual)."""
    forecasting = forecasting_step(feature_steps)
    front = [step for step in clone(feature_steps).steps if step[0] != "timeseries"]
    model = Pipeline([*front, ("model", make_estimator(family, params, task, seed))])
    suit_family(model, family)
    if forecasting is None:
        return model
    return Pipeline([("timeseries", clone(forecasting)), ("forecast", SeasonalResidual(model))])


def suit_family(model: Pipeline, family: str) -> None:
    """Family-specific inputs, set in place. Linear models take text as the sparse TF-IDF
    matrix itself, not its SVD (unless PCA follows, which needs dense input: then every family
    gets the same dense features); histogram gradient boosting splits natively on categorical
    codes (only without a features step, which would move or mix the columns)."""
    features = model.named_steps.get("features")
    preprocess = model.named_steps["preprocess"]
    if family == "linear" and not isinstance(features, PCA):
        texts = [name for name, _, _ in preprocess.transformers if name.startswith("text_")]
        model.set_params(**{f"preprocess__{name}__components": 0 for name in texts})
    if family == "hist_gradient_boosting" and str(features) == "passthrough":
        categorical: list[str] = next(
            (c for n, _, c in preprocess.transformers if n == "categorical"), []
        )
        if categorical:
            # native categorical splits on integer codes, placed first so that their
            # positions are known before fitting (the numeric block's width is not: it grows
            # by a missing-value indicator per column with gaps)
            first = sorted(preprocess.transformers, key=lambda part: part[0] != "categorical")
            model.set_params(
                preprocess__transformers=first,
                preprocess__categorical__encode=category_codes(),
                model__categorical_features=list(range(len(categorical))),
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
    scorer = get_scorer(scorer_name(metric, data.task))
    sign = -1.0 if metric == "rmse" else 1.0
    scores: list[float] = []
    forecasting = forecasting_step(data.feature_steps) is not None
    splitter = cv_splitter(data.task, data.y, data.folds, data.seed, forecasting)
    folds = splitter.get_n_splits()
    for fold, (fit_rows, score_rows) in enumerate(splitter.split(data.X, data.y)):
        model = make_model(data.feature_steps, family, params, data.task, data.seed)
        model.fit(data.X.iloc[fit_rows], data.y.iloc[fit_rows])
        score = sign * float(scorer(model, data.X.iloc[score_rows], data.y.iloc[score_rows]))
        scores.append(score)
        trial.report(float(np.mean(scores)), step=fold)
        if trial.should_prune() or (
            fold + 1 < folds  # a trial whose last fold is done completes
            and time.monotonic() > deadline
            and has_complete_trial(trial.study)
        ):
            trial.set_user_attr("fold_scores", scores)
            raise optuna.TrialPruned()
    trial.set_user_attr("fold_scores", scores)
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
    if n_trials < 1:
        raise BadInputError(f"--trials must be a positive integer; got {n_trials!r}")
    if time_budget <= 0:
        raise BadInputError(f"--time-budget must be positive seconds; got {time_budget!r}")
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


def trial_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """The study's flat, prefixed parameters of a configuration (config_from_trial's inverse)."""
    prefix = param_prefix(family)
    return {"model": family, **{prefix + name: value for name, value in params.items()}}


def warm_start(study: optuna.Study, champion: dict[str, Any] | None, rows: int) -> bool:
    """Enqueue the champion's configuration (its card's `best`) as the study's first trial.

    Every worker calls this before searching; Optuna skips the trial when another worker has
    already enqueued it. Nothing is enqueued when the champion's family is not searched at
    this data size (k-NN and SVMs only on small data). Returns whether it was enqueued.
    """
    if not champion:
        return False
    return enqueue(study, champion["model"], champion.get("params", {}), rows, "warm_start")
