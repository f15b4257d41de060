"""Categorical columns inside the model: as strings (missing values a category of their own),
or as integer codes for histogram gradient boosting's native categorical splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import OrdinalEncoder

MISSING_CATEGORY = "__missing__"


def category_codes(max_categories: int = 250) -> OrdinalEncoder:
    """Categories as integer codes, for histogram gradient boosting's native categorical splits
    (it takes at most 255 categories: the rarest beyond `max_categories` share one code; a
    category not seen in training becomes missing)."""
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        max_categories=max_categories,
        dtype=np.float64,
    )


def as_category_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as strings, missing values as their own category."""
    return frame.astype("string").fillna(MISSING_CATEGORY).astype(object)
