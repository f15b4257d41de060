"""The metrics of the contract (roc_auc, accuracy, f1_macro, log_loss; rmse, mae, r2): their
direction, the search's metric, the promotion's metric, and scoring a model with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

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


def primary_metric(task: str) -> str:
    """The metric promotion compares: ROC-AUC for classification, RMSE for regression."""
    return "rmse" if task == "regression" else "roc_auc"


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


def scorer_name(metric: str, task: str) -> str:
    """scikit-learn's scorer for a metric (multiclass ROC-AUC is one-vs-rest)."""
    if metric == "roc_auc" and task == "multiclass":
        return "roc_auc_ovr"
    return {"rmse": "neg_root_mean_squared_error"}.get(metric, metric)
