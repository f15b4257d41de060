"""load_rows: the rows batch prediction scores, read as `stablepipe predict --data` reads them."""

from __future__ import annotations

import pandas as pd

from components.common.settings import RunConfig
from components.core.source.files import ReadOptions, read_table

__all__ = ["load_scoring_rows"]


def load_scoring_rows(settings: RunConfig) -> pd.DataFrame:
    """The load_rows stage: every row of the settings' `data` (a file, folder, s3:// object or
    prefix, or a database table or query), read with the reading settings the model's data was
    read with."""
    return read_table(settings.data, settings.s3_endpoint, ReadOptions.of(settings))
