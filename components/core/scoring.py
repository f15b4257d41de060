"""Scoring rows with a saved model: one path for every consumer.

`stablepipe predict`, the batch-predict stage and evaluate's saved test-split predictions all go
through `score_rows`, so they give the same numbers, bit for bit, for the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common.errors import BadInputError
from components.common.frames import write_frame
from components.core.model_file import LoadedModel

PARQUET_SUFFIXES = (".parquet", ".pq")
FORECAST_COLUMN = "forecast"  # in a forecast's predictions: true where the target was empty
PREDICTION_SUFFIXES = (*PARQUET_SUFFIXES, ".csv")  # what `stablepipe predict --output` writes


def model_input(frame: pd.DataFrame, card: dict[str, Any]) -> pd.DataFrame:
    """The columns the model was trained on, in training order; extra columns are ignored.
    Infinite numbers become missing values, as ingest made them for training."""
    needed = list(card["input_columns"])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BadInputError(
            f"--data lacks {len(missing)} column(s) the model was trained on: {shown}"
        )
    X = frame[needed]
    numeric = X.select_dtypes("number").columns
    infinite = [c for c in numeric if np.isinf(X[c].to_numpy(dtype=float, na_value=np.nan)).any()]
    if infinite:
        X = X.copy()
        X[infinite] = X[infinite].replace([np.inf, -np.inf], np.nan)
    return X


def predict_frame(model: Any, X: pd.DataFrame, task: str) -> pd.DataFrame:
    """`prediction` plus, for classification, one `proba_<class>` column per class, in row order."""
    if task == "regression":
        return pd.DataFrame({"prediction": model.predict(X)}, index=X.index)
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    out = pd.DataFrame({"prediction": [classes[i] for i in proba.argmax(axis=1)]}, index=X.index)
    for column, cls in enumerate(classes):
        out[f"proba_{cls}"] = proba[:, column]
    return out


def score_rows(model: LoadedModel, frame: pd.DataFrame, source: str = "--data") -> pd.DataFrame:
    """`prediction` (and `proba_<class>` per class) for each row of `frame`, in row order;
    BadInputError naming `source` when the rows do not fit the model."""
    settings = model.card.get("timeseries")
    if settings and model.card["target"] not in frame.columns:
        raise BadInputError(
            f"{source} lacks the column {model.card['target']!r}: a forecast reads the "
            "target's recent history from it (leave it empty on the rows to forecast)"
        )
    X = model_input(frame, model.card)
    if settings:
        check_history(model, X, source)
    try:
        scored = predict_frame(model.pipeline, X, model.card["task"])
    except (ValueError, TypeError) as error:  # e.g. text in a column trained as numeric
        text = str(error).strip()
        detail = text.splitlines()[0] if text else type(error).__name__
        raise BadInputError(f"{source} cannot be scored by the model: {detail}") from error
    scored = scored.reset_index(drop=True)
    if not settings:
        return scored
    return with_forecast_columns(scored, X.reset_index(drop=True), settings, model.card["target"])


def with_forecast_columns(
    scored: pd.DataFrame, X: pd.DataFrame, settings: Any, target: str
) -> pd.DataFrame:
    """A forecast's predictions led by the time column and the series keys, and `forecast`:
    true on the rows whose target was empty (forecasts), false on rows scored against a known
    value (a backtest), so the output lines up with the input."""
    lead = [c for c in (settings["time_column"], *settings["series_keys"]) if c not in scored]
    out = X[lead].copy()
    if FORECAST_COLUMN not in scored.columns:
        out[FORECAST_COLUMN] = X[target].isna().to_numpy()
    return pd.concat([out, scored], axis=1)


def check_history(model: LoadedModel, X: pd.DataFrame, source: str) -> None:
    """A forecast needs the target one season (at least the horizon) before each row it
    forecasts (the rows with an empty target), from the rows given or the history kept in the
    model. BadInputError says which rows lack it. Rows with a target (a backtest, evaluate's
    test split) are scored whatever their history: a gap in a series is no error."""
    from components.core.transformers.timeseries import forecasting_step

    step = forecasting_step(model.pipeline)
    if step is None:
        return
    wanted = X[model.card["target"]].isna().to_numpy()
    if not wanted.any():
        return
    try:
        short = step.missing_history(X) & wanted
    except BadInputError as error:
        raise BadInputError(f"{source}: {error}") from error
    if short.any():
        first = X.iloc[int(short.argmax())]
        raise BadInputError(
            f"{source} gives too short a history for {int(short.sum())} row(s) to forecast "
            f"(the first at {step.time_column}={first[step.time_column]}): each needs the "
            f"target {step.horizon} and {step.base_offset} step(s) earlier (a forecast reaches "
            f"at most {step.horizon} step(s) past the last known value), and the lags reach "
            f"{step.history_needed()} steps back; give the recent history as rows with the "
            f"target filled in"
        )


def write_predictions(predictions: pd.DataFrame, path: str | Path) -> None:
    """Parquet for a .parquet/.pq name (exact values and types), else CSV; atomically."""
    target = Path(path)
    if target.suffix.lower() in PARQUET_SUFFIXES:
        write_frame(predictions, target)
        return
    partial = target.with_name(target.name + ".partial")
    predictions.to_csv(partial, index=False)
    partial.replace(target)
