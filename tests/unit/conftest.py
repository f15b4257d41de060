"""Fixtures the unit tests of several stages share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from components.common.settings import RunConfig
from components.core.model_file import save_model
from components.features.logic import feature_pipeline
from components.preprocess.logic import build_preprocessor
from components.split.logic import split_frame
from components.train.logic import train_model
from components.validate.logic import infer_table_schema

# The best configuration of a search that picked scikit-learn's default logistic regression.
BEST_LINEAR: dict[str, Any] = {
    "model": "linear",
    "params": {"C": 1.0},
    "metric": "roc_auc",
    "cv_score": 0.8,
    "cv_std": 0.01,
}


@pytest.fixture()
def trained(titanic: pd.DataFrame, tmp_path: Path):
    """A linear model trained on titanic's training split and saved: (model, card, the test
    split, the model folder)."""
    schema = infer_table_schema(titanic, "survived", "auto")
    train, test = split_frame(titanic, "survived", "binary", 0.2)
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    model, card = train_model(train, steps, BEST_LINEAR, schema, RunConfig(seed=0))
    save_model(tmp_path / "model", model, card)
    return model, card, test, tmp_path / "model"


# One configuration per family, from the search space (small forests for speed).
PARAMS: dict[str, dict[str, Any]] = {
    "linear": {"C": 1.0},
    "random_forest": {
        "n_estimators": 50,
        "max_depth": 4,
        "min_samples_leaf": 2,
        "max_features": 0.5,
    },
    "extra_trees": {"n_estimators": 50, "max_depth": 4, "min_samples_leaf": 2, "max_features": 0.5},
    "hist_gradient_boosting": {
        "learning_rate": 0.1,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 10,
        "l2_regularization": 1e-6,
    },
    "lightgbm": {
        "n_estimators": 10,
        "learning_rate": 0.1,
        "num_leaves": 8,
        "min_child_samples": 5,
        "colsample_bytree": 0.8,
        "reg_lambda": 1e-3,
    },
    "catboost": {"iterations": 20, "depth": 4, "l2_leaf_reg": 3.0, "auto_learning_rate": True},
    "knn": {"n_neighbors": 7, "weights": "distance"},
    "svm": {"C": 1.0, "gamma": 0.1},
}


@pytest.fixture(scope="module")
def passengers(titanic: pd.DataFrame) -> pd.DataFrame:
    """300 titanic rows (categoricals, missing ages) plus a free-text column, so every
    preprocessing branch (numeric, categorical, text) is built."""
    rows = titanic.sample(n=300, random_state=0).reset_index(drop=True)
    note = (
        "a "
        + rows["sex"].astype(str)
        + " passenger of "
        + rows["pclass"].astype(str)
        + " class travelling with "
        + rows["sibsp"].astype(str)
        + " siblings and "
        + rows["parch"].astype(str)
        + " parents"
    )
    return rows.assign(note=note)
