"""refit: the search's choice fitted again on all rows, the test split's included, as the
model the run serves and promotes. The test metrics stay those of train's model, which never
saw the test split; that model is kept beside the refit (model_file.JUDGED_FILE) for later
runs to compare against."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from components.common.settings import DEFAULTS, RunConfig
from components.core.fitting import fit_choice
from components.core.schema import TableSchema

__all__ = ["refit_model"]


def all_rows(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The training split followed by the test split: every row of the run, in time order for a
    forecast (its test split comes strictly after its training rows)."""
    return pd.concat([train, test], ignore_index=True)


def refit_model(
    train: pd.DataFrame,
    test: pd.DataFrame,
    feature_steps: Pipeline,
    best: dict[str, Any],
    schema: TableSchema,
    settings: RunConfig = DEFAULTS,
) -> tuple[Pipeline, dict[str, Any]] | None:
    """The refit stage: the configuration train fitted (the ensemble's every member, when the
    search chose one), fitted on all rows, with its card. The card's `refit` says on how many
    rows and on how many the judged model was fitted. None with --no-refit (`refit` off): the
    run serves train's model as it is."""
    if not settings.refit:
        return None
    model, card = fit_choice(all_rows(train, test), feature_steps, best, schema, settings.seed)
    card["refit"] = {"rows": len(train) + len(test), "judged_rows": len(train)}
    return model, card
