"""predict: score rows with a saved model.

One path for every consumer: `stablepipe predict`, the batch-predict component and evaluate's
saved test-split predictions all go through `score_rows`, so they give the same numbers, bit
for bit, for the same rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.common.errors import BadInputError
from components.common.frames import write_frame
from components.train.model_io import LoadedModel, model_input, predict_frame

PARQUET_SUFFIXES = (".parquet", ".pq")


def score_rows(model: LoadedModel, frame: pd.DataFrame, source: str = "--data") -> pd.DataFrame:
    """`prediction` (and `proba_<class>` per class) for each row of `frame`, in row order;
    BadInputError naming `source` when the rows do not fit the model."""
    X = model_input(frame, model.card)
    try:
        scored = predict_frame(model.pipeline, X, model.card["task"])
    except (ValueError, TypeError) as error:  # e.g. text in a column trained as numeric
        text = str(error).strip()
        detail = text.splitlines()[0] if text else type(error).__name__
        raise BadInputError(f"{source} cannot be scored by the model: {detail}") from error
    return scored.reset_index(drop=True)


def write_predictions(predictions: pd.DataFrame, path: str | Path) -> None:
    """Parquet for a .parquet/.pq name (exact values and types), else CSV; atomically."""
    target = Path(path)
    if target.suffix.lower() in PARQUET_SUFFIXES:
        write_frame(predictions, target)
        return
    partial = target.with_name(target.name + ".partial")
    predictions.to_csv(partial, index=False)
    partial.replace(target)
