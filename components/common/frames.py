"""Reading and writing the tables that travel between stages (Parquet keeps the types)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks so large files need no extra memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_frame(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a stage's table as Parquet (atomically: a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    frame.to_parquet(partial, index=False)
    partial.replace(target)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a table written by `write_frame`."""
    return pd.read_parquet(path)


def count_duplicates(frame: pd.DataFrame) -> int:
    """Rows equal to an earlier row (over every row: one hash per row)."""
    return int(pd.util.hash_pandas_object(frame, index=False).duplicated().sum())
