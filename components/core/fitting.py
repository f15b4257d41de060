"""Fitting the search's choice: the servable Pipeline (the best trial's configuration, or the
ensemble of the best trials) fitted on given rows, with its model card. The train stage fits
it on the training split; the refit stage fits the same choice on all rows."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pandas as pd
from joblib import parallel_config
from sklearn.pipeline import Pipeline

from components.core.ensemble import ensemble_model
from components.core.families import make_model
from components.core.schema import TableSchema, input_columns

__all__ = ["column_roles", "fit_choice", "preprocessing_of", "served_model"]

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
    if "ensemble" in steps:  # the heaviest member's
        steps = steps["ensemble"].estimators_[0].named_steps
    if "forecast" in steps:
        steps = steps["forecast"].regressor_.named_steps
    return steps.get("preprocess")


def column_roles(model: Any, schema: TableSchema) -> list[dict[str, str]]:
    """Each column's role and what the fitted model does with it."""
    used: dict[str, str] = {}
    preprocessing = preprocessing_of(model)
    for name, part, columns in getattr(preprocessing, "transformers_", []):
        use = ENCODINGS.get(name, name)
        steps = getattr(part, "named_steps", {})
        if name == "numeric" and steps.get("clip") in (None, "passthrough"):
            use = use.removeprefix("clipped, ")  # --outliers none, or a tree family's input
        for column in columns if isinstance(columns, list) else []:
            used[column] = "TF-IDF terms" if name.startswith("text_") else use
    settings = schema.get("timeseries")
    if settings:
        used[settings["time_column"]] = "time: lags, windows, calendar and seasonal terms"
    return [
        {"column": c["name"], "role": c["role"], "use": used.get(c["name"], "not used")}
        for c in schema["columns"]
    ]


def served_model(feature_steps: Pipeline, best: dict[str, Any], task: str, seed: int) -> Pipeline:
    """The unfitted model: the best trial's configuration, or the ensemble of the best trials
    when the search found one that beats it (the members weighted, heaviest first)."""
    ensemble = best.get("ensemble")
    if not ensemble:
        return make_model(feature_steps, best["model"], best["params"], task, seed, jobs=None)
    members = [
        (
            f"trial{m['trial']}",
            make_model(feature_steps, m["model"], m["params"], task, seed, jobs=None),
            float(m["weight"]),
        )
        for m in ensemble["members"]
    ]
    return ensemble_model(members, task)


def fit_choice(
    rows: pd.DataFrame,
    feature_steps: Pipeline,
    best: dict[str, Any],
    schema: TableSchema,
    seed: int,
) -> tuple[Pipeline, dict[str, Any]]:
    """Preprocessing + features + the chosen estimator (every member of the ensemble, when the
    search chose one) fitted on `rows`, as one servable Pipeline, with its model card."""
    target, task = schema["target"], schema["task"]
    columns = input_columns(schema)
    model = served_model(feature_steps, best, task, seed)
    # every core for the forests' trees (make_model's `jobs`) and the ColumnTransformer's
    # parts, in threads: no process to start, nothing copied
    with parallel_config(backend="threading", n_jobs=-1):
        model.fit(rows[columns], rows[target])
    card = {
        "target": target,
        "task": task,
        "input_columns": columns,
        "classes": [str(c) for c in getattr(model, "classes_", [])],
        "best": {k: best[k] for k in ("model", "params", "metric", "cv_score", "cv_std")},
        "ensemble": best.get("ensemble"),
        "training_rows": len(rows),
        "seed": seed,
        "timeseries": schema.get("timeseries"),
        "roles": column_roles(model, schema),
        "versions": {p: version(p) for p in ("stablepipe", "scikit-learn", "pandas", "numpy")},
    }
    return model, card
