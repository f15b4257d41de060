"""train: fit the search's choice on the training split as one servable Pipeline (the model
evaluate scores on the test split)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from components.common.settings import DEFAULTS, RunConfig
from components.core.fitting import fit_choice
from components.core.schema import TableSchema

__all__ = ["train_model"]


def train_model(
    train: pd.DataFrame,
    feature_steps: Pipeline,
    best: dict[str, Any],
    schema: TableSchema,
    settings: RunConfig = DEFAULTS,
) -> tuple[Pipeline, dict[str, Any]]:
    """The train stage: preprocessing + features + the best configuration's estimator fitted
    on the whole training split (every member of the ensemble, when the search chose one), as
    one servable Pipeline, with its model card."""
    return fit_choice(train, feature_steps, best, schema, settings.seed)
