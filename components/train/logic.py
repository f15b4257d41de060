"""train: refit the best configuration on the whole training split as one servable Pipeline."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from components.common.settings import DEFAULTS, RunConfig
from components.core.families import make_model
from components.core.schema import TableSchema, input_columns

__all__ = ["train_model"]

# What each part of the fitted preprocessing does to its columns, for the run report.
ENCODINGS = {
    "numeric": "clipped, imputed, scaled",
    "categorical": "one-hot (rare values pooled) or native codes",
    "high_cardinality": "target-encoded (many values)",
    "ordinal": "level positions",
    "datetime": "calendar features",
}


def preprocessing_of(model: Any) -> Any:
    """The fitted ColumnTransformer inside a model (also behind a forecast's wrapper)."""
    steps = model.named_steps
    if "forecast" in steps:
        steps = steps["forecast"].regressor_.named_steps
    return steps.get("preprocess")


def column_roles(model: Any, schema: TableSchema) -> list[dict[str, str]]:
    """Each column's role and what the fitted model does with it."""
    used: dict[str, str] = {}
    preprocessing = preprocessing_of(model)
    for name, _, columns in getattr(preprocessing, "transformers_", []):
        for column in columns if isinstance(columns, list) else []:
            used[column] = "TF-IDF terms" if name.startswith("text_") else ENCODINGS.get(name, name)
    settings = schema.get("timeseries")
    if settings:
        used[settings["time_column"]] = "time: lags, windows, calendar and seasonal terms"
    return [
        {"column": c["name"], "role": c["role"], "use": used.get(c["name"], "not used")}
        for c in schema["columns"]
    ]


def train_model(
    train: pd.DataFrame,
    feature_steps: Pipeline,
    best: dict[str, Any],
    schema: TableSchema,
    settings: RunConfig = DEFAULTS,
) -> tuple[Pipeline, dict[str, Any]]:
    """The train stage: preprocessing + features + the best configuration's estimator fitted
    on the whole training split, as one servable Pipeline, with its model card."""
    target, task = schema["target"], schema["task"]
    columns = input_columns(schema)
    model = make_model(feature_steps, best["model"], best["params"], task, settings.seed)
    model.fit(train[columns], train[target])
    card = {
        "target": target,
        "task": task,
        "input_columns": columns,
        "classes": [str(c) for c in getattr(model, "classes_", [])],
        "best": {k: best[k] for k in ("model", "params", "metric", "cv_score", "cv_std")},
        "training_rows": len(train),
        "seed": settings.seed,
        "timeseries": schema.get("timeseries"),
        "roles": column_roles(model, schema),
        "versions": {p: version(p) for p in ("stablepipe", "scikit-learn", "pandas", "numpy")},
    }
    return model, card
