"""An ensemble of the search's best trials.

While searching, each trial that ends among the POOL best of its model family so far keeps its
out-of-fold predictions in the study (every fold's score rows predicted by the model fitted on
the other folds: no extra fit). After the search, greedy ensemble selection with replacement
(Caruana et al., 2004, as in auto-sklearn and AutoGluon) picks ROUNDS times the trial whose
predictions, averaged with those picked so far, score best; the ensemble is the pick counts at
the best round. It is used when it picks two trials or more and its cross-validated score (on
the same folds as every trial's) beats the best single trial's; how the selection scores on rows
it did not see (`held_out_check`) is reported, not required. It is served as one Pipeline:
scikit-learn's soft VotingClassifier (or VotingRegressor) over the members' whole Pipelines,
weighted by their counts, each fitted on the training split by the train stage (and
on all rows by the refit stage).

The selection reads only numbers from the study, so the collect stage imports no estimator; the
served model's classes are imported inside `ensemble_model`.
"""

from __future__ import annotations

import base64
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from scipy.stats import rankdata

from components.core.metrics import LOWER_IS_BETTER, metric_of, metrics_of

if TYPE_CHECKING:  # collect reads studies only; train builds the model
    from sklearn.pipeline import Pipeline

# Trials whose out-of-fold predictions are kept: each one that ends among this many best of its
# family. Per family, not overall: the best trials overall are mostly neighbours of one
# configuration, whose errors hardly differ (diabetes: the 20 best were all SVMs, and
# averaging them gained 0.001 RMSE); models of different families err differently.
POOL = 5
# Picks of the greedy selection (with replacement).
ROUNDS = 25
# Study user attributes: the training split's target and fold of every row (set once, by the
# first worker), and a trial's out-of-fold predictions.
TARGET_ATTR = "ensemble_target"
PREDICTIONS_ATTR = "oof_predictions"
# A trial's mean fold time (its estimator's fit and prediction on one fold), in seconds.
FIT_SECONDS_ATTR = "fit_seconds"
# The members' fits after the search (train's on the training split, and refit's on all rows
# unless --no-refit) may take at most this share of the search's time budget beyond the best
# trial's own fits (made with or without an ensemble), estimated by their fold times: on 22,500
# flight rows with a 10 s budget, an ensemble of forests took 158 s to fit once. Counted in
# total instead (the best trial's fits always allowed), a best trial that alone took the share
# left no room for a second member: on diamonds (40,455 rows, 60 s) a CatBoost best trial
# estimated at 20.3 s was served alone, cross-validated 549.6, where the selection with the
# other members' 15 s beside it cross-validated 540.7 (544.3 on the rows each selection left
# out). A fold time is measured on a search worker's threads; the fits after the search have
# every core (boosted trees' threads, forests' n_jobs), so the estimate is divided by what those
# cores gain (`parallel_speedup`).
REFIT_SHARE = 0.25
# In the stored target: the cores of the machine over a search worker's threads.
FIT_SPEEDUP_KEY = "fit_speedup"
# How much of that ratio a family's fit gains from more threads (0: none, 1: all of it), as
# measured: a candidate's fit on the whole training split on one thread and then on two, the
# members and best candidates of three searches (ggplot2movies, modeldata hotel_rates, stevedata
# gss_wages; 11,500 to 44,000 rows, 2 cores). The fold time predicted the one-thread fit well
# (0.55 to 1.8 of it, mostly 0.8 to 1.2), but two threads gained far less than twice: histogram
# gradient boosting 0.88 to 1.37 times, LightGBM 0.86 to 1.60, CatBoost 1.36 to 1.67; a forest's
# trees 1.9 to 2.0 (50 extra trees on diamonds). Counted at 2 (every family), the members' fits on
# ggplot2movies and hotel_rates took 32 s and 35 s in the train and refit stages against the
# cap's 15 s. A family not listed (linear models, neighbours, SVMs) is counted at one thread.
PARALLEL_EFFICIENCY = {
    "hist_gradient_boosting": 0.1,
    "lightgbm": 0.25,
    "catboost": 0.45,
    "random_forest": 0.9,
    "extra_trees": 0.9,
}


def encode(array: np.ndarray) -> dict[str, Any]:
    """A float array as a study attribute (JSON): its shape and its float32 bytes, compressed."""
    data = np.ascontiguousarray(array, dtype=np.float32)
    packed = base64.b64encode(zlib.compress(data.tobytes(), 1)).decode("ascii")
    return {"shape": list(data.shape), "float32": packed}


def decode(stored: dict[str, Any]) -> np.ndarray:
    """`encode`'s inverse (as float64)."""
    raw = zlib.decompress(base64.b64decode(stored["float32"]))
    return np.frombuffer(raw, dtype=np.float32).reshape(stored["shape"]).astype(float)


def target_codes(y: Any, task: str) -> tuple[np.ndarray, int]:
    """The target as numbers: the values (regression) or each row's class position among the
    sorted classes, the order of a fitted classifier's `classes_`; and the number of classes."""
    values = np.asarray(list(y))
    if task == "regression":
        return values.astype(float), 0
    classes, codes = np.unique(values, return_inverse=True)
    return codes.astype(float), len(classes)


def record_target(
    study: optuna.Study,
    y: Any,
    folds: np.ndarray,
    task: str,
    time_budget: float,
    fit_speedup: float = 1.0,
) -> None:
    """Store the training split's target, each row's fold, the search's time budget and how
    much faster than a search worker the fits after the search run (REFIT_SHARE), once per
    study."""
    if TARGET_ATTR in study.user_attrs:
        return
    codes, classes = target_codes(y, task)
    stored = {"task": task, "classes": classes, "y": encode(codes), "folds": encode(folds)}
    timing = {"time_budget": time_budget, FIT_SPEEDUP_KEY: fit_speedup}
    study.set_user_attr(TARGET_ATTR, {**stored, **timing})


@dataclass
class OutOfFold:
    """One trial's out-of-fold predictions, filled fold by fold."""

    rows: int
    classes: int  # 0: regression
    output: np.ndarray | None = None

    def add(self, rows: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> None:
        """A fold's predictions of its score rows; probabilities whose classes are not all the
        training split's (in order) cannot be averaged with the others' and drop the trial."""
        if self.classes and len(labels) != self.classes:
            self.rows = 0
        if not self.rows:
            return
        if self.output is None:
            shape = (self.rows, self.classes) if self.classes else (self.rows,)
            self.output = np.full(shape, np.nan)
        self.output[rows] = predicted

    def complete(self) -> np.ndarray | None:
        if self.output is None or not self.rows or np.isnan(self.output).any():
            return None
        return self.output


def keep_predictions(
    trial: optuna.Trial, family: str, value: float, output: np.ndarray | None
) -> None:
    """Store a finished trial's out-of-fold predictions when it is among the POOL best
    complete trials of its family so far."""
    study = trial.study
    if output is None or TARGET_ATTR not in study.user_attrs:
        return
    minimise = study.direction == optuna.study.StudyDirection.MINIMIZE
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ahead = sum(
        (t.value < value) if minimise else (t.value > value)
        for t in done
        if t.value is not None and t.params.get("model") == family
    )
    if ahead < POOL:
        trial.set_user_attr(PREDICTIONS_ATTR, encode(output))


def candidates_of(studies: list[optuna.Study], metric: str) -> list[optuna.trial.FrozenTrial]:
    """The trials the selection picks from: the POOL best with predictions of each family,
    best first."""
    kept = sorted(
        (
            t
            for study in studies
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if PREDICTIONS_ATTR in t.user_attrs and t.value is not None
        ),
        key=lambda t: (t.value if metric in LOWER_IS_BETTER else -t.value, t.number),  # type: ignore[operator]
    )
    per_family: Counter[str] = Counter()
    chosen = []
    for trial in kept:
        family = str(trial.params.get("model"))
        if per_family[family] < POOL:
            per_family[family] += 1
            chosen.append(trial)
    return chosen


def better(metric: str, a: float, b: float) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b


def fast_metric(metric: str, y: np.ndarray, output: np.ndarray, task: str) -> float:
    """The search's metric (ROC-AUC, one-vs-rest macro for multiclass, or RMSE) of a blend,
    as scikit-learn computes it, without its input checks: the selection scores thousands of
    blends. ROC-AUC is the Mann-Whitney statistic of the ranks (ties counted half, as
    roc_auc_score does); other metrics go to `metric_of`."""
    if metric == "rmse":
        return float(np.sqrt(np.mean((y - output) ** 2)))
    if metric != "roc_auc":
        return metric_of(metric, y, output, np.arange(output.shape[1]), task)
    columns = [1] if output.shape[1] == 2 else range(output.shape[1])
    aucs = []
    for column in columns:
        positive = y == column
        ranks = rankdata(output[:, column])
        n_pos = int(positive.sum())
        n_neg = len(y) - n_pos
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs))


def cv_score_of(
    output: np.ndarray, y: np.ndarray, folds: list[np.ndarray], task: str, metric: str
) -> float:
    """The mean of a metric over the folds, as a trial is scored (the pooled out-of-fold
    score is not: it also judges how alike the folds' models are calibrated, and on Titanic
    it picked ensembles that scored worse fold by fold than the best trial)."""
    return float(np.mean([fast_metric(metric, y[r], output[r], task) for r in folds]))


def greedy_selection(
    outputs: list[np.ndarray],
    y: np.ndarray,
    folds: list[np.ndarray],
    task: str,
    metric: str,
    costs: list[float] | None = None,
    limit: float = np.inf,
) -> Counter[int]:
    """How many times each candidate is picked (Caruana's selection with replacement, ROUNDS
    rounds, kept at its best round; the earliest of equal ones), scored on the `folds` rows.
    A candidate not yet picked whose cost would take the members' total past `limit` is
    passed over."""
    costs = costs or [0.0] * len(outputs)
    total = np.zeros_like(outputs[0])
    picked: list[int] = []
    best_score, best_round = np.nan, 0
    for round_ in range(1, ROUNDS + 1):
        spent = sum(costs[i] for i in set(picked))
        allowed = [i for i in range(len(outputs)) if i in picked or spent + costs[i] <= limit]
        if not allowed:
            break
        scores = {
            i: cv_score_of((total + outputs[i]) / round_, y, folds, task, metric) for i in allowed
        }
        sign = 1 if metric in LOWER_IS_BETTER else -1
        choice = min(allowed, key=lambda i: (sign * scores[i], i))
        picked.append(choice)
        total += outputs[choice]
        if np.isnan(best_score) or better(metric, scores[choice], best_score):
            best_score, best_round = scores[choice], round_
    return Counter(picked[:best_round])


def blend_of(outputs: list[np.ndarray], counts: Counter[int]) -> np.ndarray:
    return np.sum([outputs[i] * n for i, n in counts.items()], axis=0) / sum(counts.values())


def held_out_check(
    outputs: list[np.ndarray],
    y: np.ndarray,
    folds: list[np.ndarray],
    task: str,
    metric: str,
    costs: list[float] | None = None,
    limit: float = np.inf,
) -> tuple[float, float]:
    """The selection judged on rows it did not see: for each fold, the ensemble selected on
    the other folds and the candidate best on them, both scored on this fold; their mean
    scores. The ensemble's own cross-validated score is chosen on the very predictions it is
    measured on and errs high; this one is not, and the report shows it.

    It decided once (an ensemble was used only when it won here too) and was wrong more often
    than right: measured in components/collect/README.md (the ensemble).
    """
    ensemble_scores, single_scores = [], []
    for held in range(len(folds)):
        others = [rows for k, rows in enumerate(folds) if k != held]
        counts = greedy_selection(outputs, y, others, task, metric, costs, limit)
        alone = [cv_score_of(o, y, others, task, metric) for o in outputs]
        single = int(np.argmin(alone) if metric in LOWER_IS_BETTER else np.argmax(alone))
        rows = folds[held]
        ensemble_scores.append(fast_metric(metric, y[rows], blend_of(outputs, counts)[rows], task))
        single_scores.append(fast_metric(metric, y[rows], outputs[single][rows], task))
    return float(np.mean(ensemble_scores)), float(np.mean(single_scores))


def fold_metrics_of(
    blend: np.ndarray, y: np.ndarray, folds: np.ndarray, classes: np.ndarray, task: str
) -> dict[str, list[float]]:
    """Every metric of the blended predictions, fold by fold (as a trial's `fold_metrics`)."""
    by_metric: dict[str, list[float]] = {}
    for fold in range(int(folds.max()) + 1):
        rows = folds == fold
        for name, value in metrics_of(y[rows], blend[rows], classes, task).items():
            by_metric.setdefault(name, []).append(value)
    return by_metric


def parallel_speedup(family: str, ratio: float) -> float:
    """How much faster than in a search worker a family's fit runs after the search, with
    `ratio` times the worker's threads (PARALLEL_EFFICIENCY)."""
    return 1.0 + PARALLEL_EFFICIENCY.get(family, 0.0) * max(ratio - 1.0, 0.0)


def select_ensemble(
    studies: list[optuna.Study], best: optuna.trial.FrozenTrial, metric: str, fits: float = 1.0
) -> dict[str, Any] | None:
    """The ensemble of the search's best trials (see the module's docstring), or None when
    the predictions were not kept, or the selection picks the best trial alone or does not
    beat it. `fits`: what the members' fits after the search cost, in fits on the training
    split (1 + 1/(1 - test_size) with refit's fit on all rows too)."""
    from components.core.study import config_from_trial

    stored = next((s.user_attrs[TARGET_ATTR] for s in studies if TARGET_ATTR in s.user_attrs), None)
    if stored is None:
        return None
    candidates = candidates_of(studies, metric)
    if len(candidates) < 2:
        return None
    task = str(stored["task"])
    y, folds = decode(stored["y"]), decode(stored["folds"]).astype(int)
    classes = np.arange(int(stored["classes"]))
    outputs = [decode(t.user_attrs[PREDICTIONS_ATTR]) for t in candidates]
    if len(classes):  # probabilities again summing to one after float32
        outputs = [o / o.sum(axis=1, keepdims=True) for o in outputs]
    rows = [folds == fold for fold in range(int(folds.max()) + 1)]
    # a member's fits after the search: its mean fold time, scaled to k/(k-1) the rows (a fit
    # on the whole training split), times `fits`, over what the cores they have gain it
    scale = len(rows) / (len(rows) - 1) * fits
    ratio = float(stored.get(FIT_SPEEDUP_KEY, 1.0))
    costs = [
        float(t.user_attrs.get(FIT_SECONDS_ATTR, 0.0))
        * scale
        / parallel_speedup(str(t.params.get("model")), ratio)
        for t in candidates
    ]
    budget = float(stored.get("time_budget", np.inf))
    limit = costs[0] + REFIT_SHARE * budget
    counts = greedy_selection(outputs, y, rows, task, metric, costs, limit)
    if len(counts) < 2:
        return None
    by_metric = fold_metrics_of(blend_of(outputs, counts), y, folds, classes, task)
    cv_score = float(np.mean(by_metric[metric]))
    if not better(metric, cv_score, float(best.value)):  # type: ignore[arg-type]
        return None
    held_out, single = held_out_check(outputs, y, rows, task, metric, costs, limit)
    rounds = sum(counts.values())
    members = []
    for i, n in counts.most_common():
        family, params = config_from_trial(candidates[i])
        members.append(
            {
                "trial": candidates[i].number,
                "model": family,
                "params": params,
                "weight": n / rounds,
                "cv_score": float(candidates[i].value),  # type: ignore[arg-type]
            }
        )
    return {
        "members": members,
        "cv_score": cv_score,
        "cv_std": float(np.std(by_metric[metric])),
        "fold_scores": by_metric[metric],
        "fold_metrics": by_metric,
        # how much better than the best single trial, in the metric's direction
        "gain": abs(cv_score - float(best.value)),  # type: ignore[arg-type]
        "candidates": len(candidates),
        # each fold scored by the selection made on the other folds, against the candidate
        # best on them: the gain without the selection's optimism (see held_out_check)
        "held_out": {"ensemble": held_out, "best_trial": single},
    }


def ensemble_model(members: list[tuple[str, Pipeline, float]], task: str) -> Pipeline:
    """The served ensemble: one Pipeline whose step `ensemble` averages its members' whole
    Pipelines (their probabilities, or their predictions), weighted."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.pipeline import Pipeline

    estimators = [(name, model) for name, model, _ in members]
    weights = [weight for _, _, weight in members]
    # the members one after the other, each on every core (fit_choice): fitted side by side in
    # threads, four boosted members of a diamonds ensemble took longer than in turn (5.5-6.1 s
    # against 3.0-4.4 s), and in processes no less once the processes' start was counted
    if task == "regression":
        return Pipeline([("ensemble", VotingRegressor(estimators, weights=weights, n_jobs=1))])
    voting = VotingClassifier(estimators, voting="soft", weights=weights, n_jobs=1)
    return Pipeline([("ensemble", voting)])
