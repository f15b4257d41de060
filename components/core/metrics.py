"""The metrics of the contract (roc_auc, accuracy, f1_macro, log_loss; rmse, mae, r2): their
direction, the search's metric, the promotion's metric, and scoring a model with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from components.common.errors import BadInputError
from components.common.settings import PROMOTION_METRICS

if TYPE_CHECKING:  # the stages that only read a study (collect) do not import pandas
    import pandas as pd

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "f1_macro", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


def cv_metric(task: str) -> str:
    """The score the search optimises."""
    return {"binary": "roc_auc", "multiclass": "roc_auc", "regression": "rmse"}[task]


def study_direction(metric: str) -> str:
    """Error metrics are minimised, scores maximised."""
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def label_array(labels: Any) -> np.ndarray:
    """Class labels as scikit-learn's metrics take them: numbers as a numeric array, text as
    text. An object array of integers is of type 'unknown' to their checks, which refuse it
    (a target of 0/1 codes)."""
    return np.asarray(list(labels))


# --metric's choices (PROMOTION_METRICS) by the kind of task they fit
REGRESSION_PROMOTION = ("rmse", "mae")
CLASSIFICATION_PROMOTION = tuple(
    m for m in PROMOTION_METRICS if m not in ("auto", *REGRESSION_PROMOTION)
)
# the metric that breaks a tie on each (two models both at ROC-AUC 1.0 may still differ clearly
# in log loss)
TIE_BREAKERS = {
    "roc_auc": "log_loss",
    "accuracy": "log_loss",
    "log_loss": "roc_auc",
    "rmse": "mae",
    "mae": "rmse",
}


def primary_metric(task: str, chosen: str = "auto") -> str:
    """The metric promotion compares: `chosen` (--metric), or by default ROC-AUC for
    classification and RMSE for regression; BadInputError for one of the other kind."""
    if chosen == "auto":
        return "rmse" if task == "regression" else "roc_auc"
    allowed = REGRESSION_PROMOTION if task == "regression" else CLASSIFICATION_PROMOTION
    if chosen not in allowed:
        raise BadInputError(
            f"--metric {chosen} does not fit this run's {task} task; it takes auto or "
            f"{', '.join(allowed)}"
        )
    return chosen


def model_output(model: Any, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray]:
    """What the metrics are computed from: the predictions (regression) or the class
    probabilities with their classes, in the model's column order (no classes: empty)."""
    if task == "regression":
        return np.asarray(model.predict(X), dtype=float), np.array([])
    return np.asarray(model.predict_proba(X)), label_array(model.classes_)


def score(model: Any, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Test metrics with the contract's names."""
    output, classes = model_output(model, X, task)
    return metrics_of(y, output, classes, task)


def metrics_of(y: Any, output: np.ndarray, classes: np.ndarray, task: str) -> dict[str, float]:
    """The contract's metrics of predictions (regression) or of class probabilities whose
    columns follow `classes` (classification); ROC-AUC only when `y` holds two classes or more."""
    names: tuple[str, ...] = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    y_values = label_array(y)
    if task != "regression" and len(set(y_values)) < 2:
        names = tuple(name for name in names if name != "roc_auc")
    return {name: metric_of(name, y_values, output, classes, task) for name in names}


def metric_of(
    name: str, y: np.ndarray, output: np.ndarray, classes: np.ndarray, task: str
) -> float:
    """One metric of `metrics_of` (`y` as label_array gives it)."""
    # here, not at the top: the stages that only read a study skip scikit-learn's import
    from sklearn import metrics as skm

    if task == "regression":
        regression = {
            "rmse": skm.root_mean_squared_error,
            "mae": skm.mean_absolute_error,
            "r2": skm.r2_score,
        }
        return float(regression[name](y, output))
    if name == "log_loss":
        return float(skm.log_loss(y, output, labels=classes))
    if name == "roc_auc" and task == "binary":
        return float(skm.roc_auc_score(y == classes[1], output[:, 1]))
    if name == "roc_auc":
        return float(skm.roc_auc_score(y, output, multi_class="ovr", labels=classes))
    predicted = classes[output.argmax(axis=1)]
    if name == "accuracy":
        return float(skm.accuracy_score(y, predicted))
    return float(skm.f1_score(y, predicted, average="macro"))


def improvement(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is (positive = better), whatever the metric's direction."""
    return champion - challenger if metric in LOWER_IS_BETTER else challenger - champion
