"""evaluate: score the trained model on the held-out test split and judge it against the champion.

The verdict is what promotion is gated on: the challenger is promoted when there is no champion,
or when it beats the champion on the primary metric, both scored on this run's test split, by
more than `min_improvement` and more than the search's own noise (the standard error of the
challenger's cross-validated score: models closer than that are ones another seed could have
picked instead), and a paired bootstrap of the test rows puts the gain above zero at the given
confidence (so a lucky split or a reseeded rerun does not flip the champion).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from components.common.errors import BadInputError
from components.common.settings import RunConfig
from components.core.metrics import (
    LOWER_IS_BETTER,
    TIE_BREAKERS,
    improvement,
    label_array,
    primary_metric,
    score,
)
from components.core.model_file import LoadedModel, load_model
from components.core.registry import load_champion, settings_registry
from components.core.scoring import score_rows
from components.core.study import load_study

__all__ = ["evaluate_model"]


@dataclass
class Verdict:
    """The promotion decision and the numbers behind it."""

    decision: str  # "promote" or "keep"
    reason: str
    metric: str
    challenger: float
    champion: float | None = None
    champion_version: str | None = None
    delta: float | None = None  # challenger's improvement (positive = better)
    interval: list[float] | None = None  # paired-bootstrap interval of delta
    confidence: float | None = None
    min_improvement: float | None = None
    noise: float | None = None  # the challenger's cross-validated standard error on `metric`
    # a tie on `metric`: the second metric's comparison that decided (metric, challenger,
    # champion, delta, interval)
    tie_break: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Paired bootstrap of the test split: enough resamples for a steady 95% interval, seeded so a
# verdict can be reproduced.
BOOTSTRAP_RESAMPLES = 1000
# Gains on the promotion metric at most this large either way are a tie (both models at
# ROC-AUC 1.0 on the test split), which the TIE_BREAKERS metric then decides.
TIE = 1e-9
BOOTSTRAP_SEED = 0
# Resample weights are built in blocks of at most this many cells (resamples x rows).
BOOTSTRAP_BLOCK_CELLS = 4_000_000


def resample_weights(rows: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of bootstrap weights: row i's weight in a resample is how often it was drawn."""
    rng = np.random.default_rng(seed)
    block = max(1, BOOTSTRAP_BLOCK_CELLS // max(rows, 1))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        drawn = rng.integers(0, rows, size=(size, rows)) + (np.arange(size) * rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=size * rows).reshape(size, rows)


def weighted_auc(positive: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of `scores` for the boolean labels `positive`, once per row of `weights` (the
    Mann-Whitney statistic with weighted rows, ties counted half). One sort serves every
    resample; a resample without both labels gives NaN."""
    order = np.argsort(scores, kind="stable")
    ordered, labels = scores[order], positive[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    w = weights[:, order].astype(float)
    pos = np.add.reduceat(w * labels, starts, axis=1)
    neg = np.add.reduceat(w * ~labels, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(
            (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
        )


def resampled_metric(
    metric: str, y: np.ndarray, output: np.ndarray, classes: list[Any], weights: np.ndarray
) -> np.ndarray:
    """A promotion metric once per row of `weights`: RMSE and MAE from predictions; ROC-AUC
    (one-vs-rest macro for several classes, as `score`), log loss and accuracy from class
    probabilities in `classes`' order."""
    if metric in ("rmse", "mae"):
        error = output.astype(float) - y.astype(float)
        if metric == "mae":
            return np.asarray(weights @ np.abs(error) / weights.sum(axis=1))
        return np.asarray(np.sqrt(weights @ error**2 / weights.sum(axis=1)))
    if metric in ("log_loss", "accuracy"):
        position = {c: i for i, c in enumerate(label_array(classes))}
        truth = np.array([position[v] for v in y])
        if metric == "accuracy":
            per_row = (output.argmax(axis=1) == truth).astype(float)
        else:  # as scikit-learn's log_loss: probabilities clipped at the dtype's epsilon
            eps = np.finfo(output.dtype).eps
            per_row = -np.log(np.clip(output[np.arange(len(truth)), truth], eps, 1.0))
        return np.asarray(weights @ per_row / weights.sum(axis=1))
    if len(classes) == 2:
        return weighted_auc(y == classes[1], output[:, 1], weights)
    per_class = [weighted_auc(y == c, output[:, i], weights) for i, c in enumerate(classes)]
    return np.asarray(np.mean(per_class, axis=0))


def bootstrap_interval(
    metric: str,
    y: pd.Series,
    challenger: np.ndarray,
    champion: np.ndarray,
    classes: list[Any],
    confidence: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> list[float]:
    """Percentile interval of the challenger's improvement over the champion, both scored on
    the same resamples of the test split (a paired bootstrap: what varies is the test rows)."""
    values = y.to_numpy(dtype=float) if metric in ("rmse", "mae") else label_array(y)
    gains = []
    for weights in resample_weights(len(values), resamples, seed):
        ours = resampled_metric(metric, values, challenger, classes, weights)
        theirs = resampled_metric(metric, values, champion, classes, weights)
        gains.append(theirs - ours if metric in LOWER_IS_BETTER else ours - theirs)
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(np.concatenate(gains), [tail, 100 - tail])
    return [float(low), float(high)]


def model_output(model: Any, X: pd.DataFrame, task: str, classes: list[Any]) -> np.ndarray:
    """Predictions (regression) or probabilities with columns in `classes`' order."""
    if task == "regression":
        return np.asarray(model.predict(X), dtype=float)
    proba = model.predict_proba(X)
    position = {c: i for i, c in enumerate(model.classes_)}
    return np.asarray(proba[:, [position[c] for c in classes]])


class WithHistory:
    """A forecasting champion given the challenger's training history as context: its lags
    for the test rows then come from the same values as the challenger's, however old the
    champion's own history is."""

    def __init__(self, model: Any, context: pd.DataFrame) -> None:
        self.model, self.context = model, context

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        context = self.context.reindex(columns=X.columns)
        joined = pd.concat([context.astype(X.dtypes.to_dict(), errors="ignore"), X])
        return np.asarray(self.model.predict(joined.reset_index(drop=True)))[len(context) :]


def forecast_difference(champion: Any, challenger: Any) -> str:
    """How the two models' forecasting setups differ ('' when they match or neither is a
    forecast): a champion forecasting another horizon answers another question."""
    from components.core.transformers.timeseries import forecasting_step

    mine, theirs = forecasting_step(champion), forecasting_step(challenger)
    if mine is None and theirs is None:
        return ""
    if mine is None or theirs is None:
        return "one of champion and challenger is a forecast, the other is not"
    for name in ("horizon", "time_column", "series_keys", "frequency", "season", "known_ahead"):
        if getattr(mine, name) != getattr(theirs, name):
            return (
                f"the champion forecasts with {name} {getattr(mine, name)!r}, this run with "
                f"{getattr(theirs, name)!r}"
            )
    same_row = mine.same_row_covariates()
    if same_row:
        return (
            f"the champion (an earlier stablepipe) reads {', '.join(map(repr, same_row[:3]))} "
            "from the row it forecasts, which a real forecast does not know, so its test score "
            "is not comparable"
        )
    return ""


def with_history(champion: Any, challenger: Any) -> Any:
    """The champion, with the challenger's history as context when both are forecasts."""
    from components.core.transformers.timeseries import forecasting_step

    mine, theirs = forecasting_step(champion), forecasting_step(challenger)
    if mine is None or theirs is None:
        return champion
    return WithHistory(champion, theirs.history_frame())


def judge(
    challenger_model: Any,
    challenger_metrics: dict[str, float],
    champion: LoadedModel | None,
    test: pd.DataFrame,
    X: pd.DataFrame,
    task: str,
    target: str,
    min_improvement: float,
    confidence: float = 0.95,
    chosen_metric: str = "auto",
    noise: dict[str, float] | None = None,
) -> Verdict:
    """Compare challenger and champion on the same test split: promote only a gain above
    `min_improvement` and above the metric's `noise` (the standard error of the challenger's
    cross-validated score, see `search_noise`; no bar for a metric without one) whose
    paired-bootstrap interval at `confidence` lies above zero. The metric is `chosen_metric`
    (--metric, by default the task's primary one); a tie on it is judged by its TIE_BREAKERS
    metric under the same rule."""
    if min_improvement < 0:
        raise BadInputError(f"min_improvement must be >= 0; got {min_improvement!r}")
    if not 0.5 <= confidence < 1:
        raise BadInputError(f"confidence must be in [0.5, 1); got {confidence!r}")
    metric = primary_metric(task, chosen_metric)
    challenger = challenger_metrics[metric]
    if champion is None:
        return Verdict(
            "promote", "no champion yet: the first model becomes champion", metric, challenger
        )
    card = champion.card
    if card["target"] != target or card["task"] != task:
        return Verdict(
            "keep",
            f"the champion predicts {card['target']!r} ({card['task']}), this run {target!r} "
            f"({task}); use another --registry or --model-name",
            metric,
            challenger,
            champion_version=champion.version,
        )
    if champion.pipeline is None:  # a legacy pickle: never unpickled, so it cannot be scored
        return Verdict(
            "promote",
            f"the champion {champion.version} is {champion.refused}, which this stablepipe "
            "does not load, so it cannot be compared: the new model replaces it (the old "
            "version stays in the registry)",
            metric,
            challenger,
            champion_version=champion.version,
        )
    missing = [c for c in card["input_columns"] if c not in test.columns]
    if missing:
        return Verdict(
            "keep",
            f"the champion needs columns this data lacks: {missing[:5]}",
            metric,
            challenger,
            champion_version=champion.version,
        )
    different = forecast_difference(champion.pipeline, challenger_model)
    if different:
        return Verdict(
            "keep",
            f"{different}: not comparable; use another --model-name",
            metric,
            challenger,
            champion_version=champion.version,
        )
    X_champion, y = test[card["input_columns"]], test[target]
    champion_model = with_history(champion.pipeline, challenger_model)
    classes: list[Any] = list(getattr(challenger_model, "classes_", []))
    if task != "regression" and set(champion.pipeline.classes_) != set(classes):
        return Verdict(
            "keep",
            f"the champion knows the classes {sorted(map(str, champion.pipeline.classes_))}, "
            f"this run {sorted(map(str, classes))}: not comparable",
            metric,
            challenger,
            champion_version=champion.version,
        )
    ours = model_output(challenger_model, X, task, classes)
    theirs = model_output(champion_model, X_champion, task, classes)
    champion_metrics = score(champion_model, X_champion, y, task)

    def compared(name: str) -> dict[str, Any]:
        floor = (noise or {}).get(name)
        mine, other = challenger_metrics[name], champion_metrics[name]
        gain = improvement(name, mine, other)
        interval = bootstrap_interval(name, y, ours, theirs, classes, confidence)
        numbers = (
            f"{name} {mine:.4f} vs champion {other:.4f} on this test split: {gain:+.4f} "
            f"({confidence:.0%} interval {interval[0]:+.4f} to {interval[1]:+.4f})"
        )
        if gain <= min_improvement:
            decision, why = "keep", f"promotion needs a gain of more than +{min_improvement:g}"
        elif floor is not None and gain <= floor:
            decision, why = (
                "keep",
                (
                    f"within the search's own noise (its cross-validated {name} has a standard "
                    f"error of {floor:.4f}): another seed could have picked this model"
                ),
            )
        elif interval[0] <= 0:
            decision, why = "keep", "the interval reaches zero: the gain is not credible"
        else:
            beyond = "" if floor is None else f", above the search's noise ({floor:.4f})"
            decision, why = "promote", f"above +{min_improvement:g}{beyond} and credibly above zero"
        return {
            "metric": name,
            "challenger": mine,
            "champion": other,
            "delta": gain,
            "interval": interval,
            "noise": floor,
            "decision": decision,
            "reason": f"{numbers}; {why}",
        }

    first = compared(metric)
    tie = None
    reason = first["reason"]
    if abs(first["delta"]) <= TIE and first["interval"][0] <= 0 <= first["interval"][1]:
        tie = compared(TIE_BREAKERS[metric])
        reason = f"{metric} ties ({first['reason']}); broken by {tie['reason']}"
    decided = tie or first
    return Verdict(
        decided["decision"],
        reason,
        metric,
        challenger,
        first["champion"],
        champion.version,
        first["delta"],
        first["interval"],
        confidence,
        min_improvement,
        first["noise"],
        {k: decided[k] for k in ("metric", "challenger", "champion", "delta", "interval", "noise")}
        if tie
        else None,
    )


def search_noise(best: dict[str, Any]) -> dict[str, float]:
    """Metric -> the standard error of the chosen trial's cross-validated score on it (fold std
    / sqrt(folds)), for every metric the search scored on two folds or more. The search cannot
    tell apart trials whose scores differ by less: a reseeded search may pick any of them, so
    a gain this small is the search's noise, not a better model."""
    chosen = best.get("ensemble") or best  # the ensemble's folds when it is the model
    measured = dict(chosen.get("fold_metrics") or {})
    if best.get("metric") and chosen.get("fold_scores"):
        measured.setdefault(best["metric"], chosen["fold_scores"])
    noise = {}
    for name, folds in measured.items():
        values = np.asarray(folds, dtype=float)
        if len(values) >= 2 and np.isfinite(values).all():
            noise[name] = float(np.std(values) / np.sqrt(len(values)))
    return noise


def roc_points(y: pd.Series, proba: np.ndarray, classes: list[Any]) -> dict[str, list[float]]:
    """ROC curve of a binary model (finite thresholds, as KFP's ClassificationMetrics wants)."""
    fpr, tpr, thresholds = skm.roc_curve(label_array(y) == classes[1], proba[:, 1])
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}


def confusion(y: pd.Series, predicted: np.ndarray, classes: list[Any]) -> list[list[int]]:
    matrix = skm.confusion_matrix(label_array(y), predicted, labels=classes)
    return matrix.astype(int).tolist()


def trial_table(studies: list[Any]) -> pd.DataFrame:
    """One row per trial: number, state, model family and (for pruned ones, last partial) score."""
    rows = []
    trials = [t for study in studies for t in study.get_trials(deepcopy=False)]
    for number, trial in enumerate(
        sorted(trials, key=lambda t: (t.datetime_start or datetime.min, t.number))
    ):
        value = trial.value
        if value is None and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        rows.append(
            {
                "number": number,
                "state": trial.state.name,
                "model": trial.params.get("model", "?"),
                "value": value,
            }
        )
    return pd.DataFrame(rows, columns=["number", "state", "model", "value"])


def parameter_importances(studies: list[Any], family: str) -> dict[str, float]:
    """How much each hyperparameter of `family` mattered to the cross-validated score (fANOVA
    over the family's complete trials, seeded), most important first; empty with fewer than
    three such trials."""
    import optuna
    from optuna.trial import TrialState

    from components.core.study import param_prefix

    def trials_of(study: Any) -> list[Any]:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return [t for t in complete if t.params.get("model") == family]

    study = max(studies, key=lambda s: len(trials_of(s)))
    trials = trials_of(study)
    if len(trials) < 3:
        return {}
    # the parameters every trial of the family has (CatBoost's learning rate is searched only
    # when the automatic one is not used: its importance is that choice's)
    names = [n for n in trials[0].params if n != "model" and all(n in t.params for t in trials)]
    with warnings.catch_warnings():  # a parameter with one value left: its importance is 0
        warnings.simplefilter("ignore")
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=names
        )
    prefix = param_prefix(family)
    return {name.removeprefix(prefix): float(value) for name, value in found.items()}


@dataclass
class Evaluation:
    """Everything evaluate publishes."""

    metrics: dict[str, float]
    verdict: Verdict
    report_html: str
    classes: list[str]
    confusion_matrix: list[list[int]] | None
    roc: dict[str, list[float]] | None
    baseline: dict[str, float] | None = None  # a forecast's seasonal-naive test metrics

    def as_dict(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {"test": self.metrics}
        if self.baseline is not None:
            metrics["baseline"] = self.baseline
        return {"metrics": metrics, "verdict": self.verdict.as_dict()}


def baseline_metrics(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float] | None:
    """A forecast's seasonal-naive metrics on the same rows (None for other models). The
    forecast repeats the value one season (at least the horizon) earlier, from the same
    history the model's lags come from."""
    from components.core.transformers.timeseries import forecasting_step, seasonal_naive

    if forecasting_step(model) is None:
        return None
    naive = seasonal_naive(model, X)
    known = ~np.isnan(naive)
    if not known.any():
        return None

    class Naive:  # score() needs an object with predict()
        @staticmethod
        def predict(_: Any) -> np.ndarray:
            return naive[known]

    return score(Naive(), X[known], y[known], "regression")


def evaluate_run(
    model_dir: str | Path,
    test: pd.DataFrame,
    studies: list[Any],
    best: dict[str, Any],
    champion: LoadedModel | None,
    min_improvement: float,
    confidence: float = 0.95,
    chosen_metric: str = "auto",
    refit: bool = False,
) -> Evaluation:
    """Score the model on the test split, judge it against the champion and render the report
    (which says, with `refit`, that the model served is this one refitted on all rows)."""
    from components.core.model_file import load_model
    from components.core.scoring import model_input
    from components.evaluate.report import (
        classification_plots,
        importance_plot,
        regression_plots,
        render_report,
        search_history_plot,
    )

    loaded = load_model(model_dir)
    card, pipeline = loaded.card, loaded.pipeline
    task, target = card["task"], card["target"]
    X, y = model_input(test, card), test[target]
    test_metrics = score(pipeline, X, y, task)
    baseline = baseline_metrics(pipeline, X, y)
    verdict = judge(
        pipeline,
        test_metrics,
        champion,
        test,
        X,
        task,
        target,
        min_improvement,
        confidence,
        chosen_metric,
        search_noise(best),
    )
    classes: list[Any] = list(getattr(pipeline, "classes_", []))
    matrix = roc = None
    if task == "regression":
        plots = regression_plots(y, pipeline.predict(X))
    else:
        proba = pipeline.predict_proba(X)
        plots = classification_plots(y, proba, classes)
        matrix = confusion(y, label_array(classes)[proba.argmax(axis=1)], classes)
        if task == "binary":
            roc = roc_points(y, proba, classes)
    direction = "minimize" if best["metric"] in LOWER_IS_BETTER else "maximize"
    history = trial_table(studies)
    plots.append(search_history_plot(history, direction))
    importances = parameter_importances(studies, best["model"])
    if importances:
        complete = history[(history["state"] == "COMPLETE") & (history["model"] == best["model"])]
        plots.append(importance_plot(importances, best["model"], len(complete)))
    facts = [
        ("target", target),
        ("task", task),
        ("training rows", card["training_rows"]),
        ("test rows", len(test)),
        (
            "model served",
            f"this configuration refitted on all {card['training_rows'] + len(test)} rows "
            "(refit; the metrics above are of the model fitted without the test rows)"
            if refit
            else "the model these metrics measured (--no-refit)",
        ),
        ("input columns", len(card["input_columns"])),
        ("seed", card["seed"]),
    ]
    if baseline is not None:
        facts.insert(
            2,
            (
                "seasonal-naive forecast (test)",
                " · ".join(f"{name} {value:.4f}" for name, value in baseline.items()),
            ),
        )
    html = render_report(
        title=f"stablepipe · {target} ({task})",
        subtitle=(
            f"best model: {best['model']} · {card['training_rows']} training rows, "
            f"{len(test)} test rows · seed {card['seed']}"
        ),
        test_metrics=test_metrics,
        verdict=verdict.as_dict(),
        best=best,
        plots=plots,
        facts=facts,
        roles=card.get("roles") or [],
    )
    return Evaluation(test_metrics, verdict, html, [str(c) for c in classes], matrix, roc, baseline)


def evaluate_model(
    model_dir: str | Path,
    test: pd.DataFrame,
    study_dir: str | Path,
    best: dict[str, Any],
    settings: RunConfig,
) -> tuple[Evaluation, pd.DataFrame]:
    """The evaluate stage: the model's test metrics, the verdict against the registry's
    champion (promote only when the gain's bootstrap interval lies above zero and beyond
    `min_improvement`) and the report; with the test rows' predictions as serving gives them."""
    studies = [load_study(study_dir, name) for name in best["studies"]]
    result = evaluate_run(
        model_dir,
        test,
        studies,
        best,
        load_champion(settings_registry(settings), settings.s3_endpoint),
        settings.min_improvement,
        settings.confidence,
        settings.metric,
        settings.refit,
    )
    # through the serving path: the model file loaded again, as predict loads it
    return result, score_rows(load_model(model_dir), test, "test")
