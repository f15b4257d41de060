"""evaluate: score the trained model on the held-out test split and judge it against the champion.

The verdict is what promotion is gated on: the challenger is promoted when there is no champion,
or when it beats the champion on the primary metric, both scored on this run's test split, by
more than `min_improvement`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from components.common.errors import BadInputError
from components.train.model_io import LoadedModel

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "f1_macro", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


def primary_metric(task: str) -> str:
    """The metric promotion compares: ROC-AUC for classification, RMSE for regression."""
    return "rmse" if task == "regression" else "roc_auc"


def score(model: Any, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Test metrics with the contract's names."""
    if task == "regression":
        predicted = model.predict(X)
        return {
            "rmse": float(skm.root_mean_squared_error(y, predicted)),
            "mae": float(skm.mean_absolute_error(y, predicted)),
            "r2": float(skm.r2_score(y, predicted)),
        }
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    y_values = y.astype(object).to_numpy()
    result = {
        "accuracy": float(skm.accuracy_score(y_values, predicted)),
        "f1_macro": float(skm.f1_score(y_values, predicted, average="macro")),
        "log_loss": float(skm.log_loss(y_values, proba, labels=classes)),
    }
    if len(set(y_values)) < 2:
        return result
    if task == "binary":
        result["roc_auc"] = float(skm.roc_auc_score(y_values == classes[1], proba[:, 1]))
    else:
        result["roc_auc"] = float(
            skm.roc_auc_score(y_values, proba, multi_class="ovr", labels=classes)
        )
    return {name: result[name] for name in CLASSIFICATION_METRICS if name in result}


def improvement(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is (positive = better), whatever the metric's direction."""
    return champion - challenger if metric in LOWER_IS_BETTER else challenger - champion


@dataclass
class Verdict:
    """The promotion decision and the numbers behind it."""

    decision: str  # "promote" or "keep"
    reason: str
    metric: str
    challenger: float
    champion: float | None = None
    champion_version: str | None = None
    delta: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def judge(
    challenger_metrics: dict[str, float],
    champion: LoadedModel | None,
    test: pd.DataFrame,
    task: str,
    target: str,
    min_improvement: float,
) -> Verdict:
    """Compare challenger and champion on the same test split."""
    if min_improvement < 0:
        raise BadInputError(f"min_improvement must be >= 0; got {min_improvement!r}")
    metric = primary_metric(task)
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
    missing = [c for c in card["input_columns"] if c not in test.columns]
    if missing:
        return Verdict(
            "keep",
            f"the champion needs columns this data lacks: {missing[:5]}",
            metric,
            challenger,
            champion_version=champion.version,
        )
    champion_score = score(champion.pipeline, test[card["input_columns"]], test[target], task)[
        metric
    ]
    delta = improvement(metric, challenger, champion_score)
    better = delta > min_improvement
    reason = (
        f"{metric} {challenger:.4f} vs champion {champion_score:.4f} on this test split "
        f"({delta:+.4f}; promotion needs more than +{min_improvement:g})"
    )
    return Verdict(
        "promote" if better else "keep",
        reason,
        metric,
        challenger,
        champion_score,
        champion.version,
        delta,
    )


def roc_points(y: pd.Series, proba: np.ndarray, classes: list[Any]) -> dict[str, list[float]]:
    """ROC curve of a binary model (finite thresholds, as KFP's ClassificationMetrics wants)."""
    fpr, tpr, thresholds = skm.roc_curve(y.astype(object) == classes[1], proba[:, 1])
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}


def confusion(y: pd.Series, predicted: np.ndarray, classes: list[Any]) -> list[list[int]]:
    matrix = skm.confusion_matrix(y.astype(object), predicted, labels=classes)
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


@dataclass
class Evaluation:
    """Everything evaluate publishes."""

    metrics: dict[str, float]
    verdict: Verdict
    report_html: str
    classes: list[str]
    confusion_matrix: list[list[int]] | None
    roc: dict[str, list[float]] | None

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": {"test": self.metrics}, "verdict": self.verdict.as_dict()}


def evaluate_run(
    model_dir: str | Path,
    test: pd.DataFrame,
    studies: list[Any],
    best: dict[str, Any],
    champion: LoadedModel | None,
    min_improvement: float,
) -> Evaluation:
    """Score the model on the test split, judge it against the champion and render the report."""
    from components.evaluate.report import (
        classification_plots,
        regression_plots,
        render_report,
        search_history_plot,
    )
    from components.train.model_io import load_model, model_input

    loaded = load_model(model_dir)
    card, pipeline = loaded.card, loaded.pipeline
    task, target = card["task"], card["target"]
    X, y = model_input(test, card), test[target]
    test_metrics = score(pipeline, X, y, task)
    verdict = judge(test_metrics, champion, test, task, target, min_improvement)
    classes: list[Any] = list(getattr(pipeline, "classes_", []))
    matrix = roc = None
    if task == "regression":
        plots = regression_plots(y, pipeline.predict(X))
    else:
        proba = pipeline.predict_proba(X)
        plots = classification_plots(y, proba, classes)
        matrix = confusion(y, np.asarray(classes, dtype=object)[proba.argmax(axis=1)], classes)
        if task == "binary":
            roc = roc_points(y, proba, classes)
    direction = "minimize" if best["metric"] in LOWER_IS_BETTER else "maximize"
    plots.append(search_history_plot(trial_table(studies), direction))
    facts = [
        ("target", target),
        ("task", task),
        ("training rows", card["training_rows"]),
        ("test rows", len(test)),
        ("input columns", len(card["input_columns"])),
        ("seed", card["seed"]),
    ]
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
    )
    return Evaluation(test_metrics, verdict, html, [str(c) for c in classes], matrix, roc)
