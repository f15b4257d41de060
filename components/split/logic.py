"""Split: a seeded hold-out test split, stratified on the target for classification."""

from __future__ import annotations

import math

import pandas as pd
from sklearn.model_selection import train_test_split

from components.common.errors import BadInputError


def split_frame(
    frame: pd.DataFrame, target: str, task: str, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, test); the test split is never seen by fitting or search."""
    if not 0.05 <= test_size <= 0.5:
        raise BadInputError(f"test_size must be between 0.05 and 0.5; got {test_size!r}")
    stratify = frame[target] if task != "regression" else None
    if stratify is not None:
        classes, test_rows = stratify.nunique(), math.ceil(test_size * len(frame))
        if test_rows < classes:
            raise BadInputError(
                f"a test split of {test_rows} rows cannot hold all {classes} classes of "
                f"{target!r}; raise --test-size (got {test_size}) or add rows"
            )
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, shuffle=True, stratify=stratify
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)
