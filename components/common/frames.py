"""Reading and writing the tables that travel between stages (Parquet keeps the types)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as ptypes


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
    """Rows equal to an earlier row, by one 64-bit hash per row.

    On a million rows the count is bound by memory: hashing strings, and looking a million
    hashes up in a table that does not fit in the cache. So the numeric columns are hashed
    first, and a row whose numbers no other row shares cannot repeat: those rows are told
    apart with a 4M-bucket count of the hashes' top bits (a quarter of unique rows collide
    there), then exactly among the colliding ones. Only the rows left (all of them when the
    numbers repeat a lot) have their other columns hashed and compared whole. On the
    benchmark's diamonds (1M rows) this about halves the count's time."""
    numeric = [name for name in frame.columns if ptypes.is_numeric_dtype(frame[name])]
    counted = set(numeric)
    others = [name for name in frame.columns if name not in counted]
    if not numeric or len(frame) < CANDIDATE_ROWS:
        return int(pd.util.hash_pandas_object(frame, index=False).duplicated().sum())
    numbers = pd.util.hash_pandas_object(frame[numeric], index=False).to_numpy()
    candidates = repeated_hashes(numbers)
    if not others:
        numbers = numbers[candidates]
    elif candidates.sum() <= len(frame) // 2:
        rest = pd.util.hash_pandas_object(frame.loc[candidates, others], index=False)
        numbers = mix(numbers[candidates], rest.to_numpy())
    else:
        numbers = mix(numbers, pd.util.hash_pandas_object(frame[others], index=False).to_numpy())
    return int(pd.Series(numbers).duplicated().sum())


CANDIDATE_ROWS = 100_000  # below this many rows a table is hashed whole at once
BUCKET_BITS = 22


def repeated_hashes(hashes: np.ndarray) -> np.ndarray:
    """Which of `hashes` occur more than once (exact): a bucket count on the top bits rules
    out most unique ones cheaply; a hash table decides among the rest."""
    buckets = (hashes >> np.uint64(64 - BUCKET_BITS)).astype(np.intp)
    crowded = np.bincount(buckets, minlength=1 << BUCKET_BITS)[buckets] > 1
    if crowded.sum() > len(hashes) // 2:  # the hash table alone is quicker
        return pd.Series(hashes).duplicated(keep=False).to_numpy()
    repeated = np.zeros(len(hashes), dtype=bool)
    repeated[crowded] = pd.Series(hashes[crowded]).duplicated(keep=False).to_numpy()
    return repeated


def mix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One 64-bit hash of two (uint64 arithmetic wraps, as a hash's should)."""
    with np.errstate(over="ignore"):
        return first ^ (second * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019))


@functools.lru_cache(maxsize=8)
def seeded_positions(length: int, rows: int) -> np.ndarray:
    """`rows` distinct positions out of `length`, sorted, the same every time (numpy's
    Generator draws them without shuffling all `length`). Cached: every column of a table
    samples the same rows; the array is read-only so no caller can change it for the next."""
    positions = np.sort(np.random.default_rng(0).choice(length, size=rows, replace=False))
    positions.flags.writeable = False
    return positions
