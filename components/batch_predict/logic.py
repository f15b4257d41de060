"""batch_predict: score every row of a table with a model, through the one scoring path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.core.model_file import load_model
from components.core.scoring import score_rows

__all__ = ["predict_batch"]


def predict_batch(model_dir: str | Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The batch_predict stage: `prediction` (and `proba_<class>` per class) for each row, in
    row order: the columns and values `stablepipe predict` gives for the same rows."""
    return score_rows(load_model(model_dir), rows, "data")
