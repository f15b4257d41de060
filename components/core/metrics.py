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


def score(model: Any, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Test metrics with the contract's names."""
    # here, not at the top: the stages that only read a study (collect) skip scikit-learn
    from sklearn import metrics as skm

    if task == "regression":
        predicted = model.predict(X)
        return {
            "rmse": float(skm.root_mean_squared_error(y, predicted)),
            "mae": float(skm.mean_absolute_error(y, predicted)),
            "r2": float(skm.r2_score(y, predicted)),
        }
    proba = model.predict_proba(X)
    classes = label_array(model.classes_)
    predicted = classes[proba.argmax(axis=1)]
    y_values = label_array(y)
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
