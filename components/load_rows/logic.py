"""load_rows: the rows batch prediction scores, read as `stablepipe predict --data` reads them."""

from __future__ import annotations

import pandas as pd

from components.common.settings import DEFAULTS
from components.core.source.files import ReadOptions, read_table

__all__ = ["load_scoring_rows"]


def load_scoring_rows(
    *,
    data: str,
    table: str = DEFAULTS.table,
    query: str = DEFAULTS.query,
    delimiter: str = DEFAULTS.delimiter,
    encoding: str = DEFAULTS.encoding,
    header: str = DEFAULTS.header,
    sheet: str = DEFAULTS.sheet,
    decimal: str = DEFAULTS.decimal,
    s3_endpoint: str = DEFAULTS.s3_endpoint,
) -> pd.DataFrame:
    """The load_rows stage: every row of `data` (a file, folder, s3:// object or prefix, or a
    database table or query), read with the reading settings the model's data was read with."""
    return read_table(data, s3_endpoint, ReadOptions.pick(locals()))
