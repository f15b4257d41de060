"""Split: hold out a test split chosen by each row's content, stratified for classification.

The rows held out are those whose content hashes lowest (within each class for classification),
so the split depends on the data alone: not on the seed, not on the rows' order. A rerun with
another seed, or on the same rows delivered in another order, holds out the same rows. That is
what makes the champion comparison fair: the champion, trained on earlier data, never trained
on the rows it is judged on.

Identical rows are told apart by their occurrence (the first copy, the second, ...), so the
copies of a row spread over both splits as a random split would spread them. Keeping them
together instead would hold out whole groups of identical rows: in data with few columns
(Titanic's passengers share class, sex and age by the dozen) the test split then consists of a
few large groups and its scores mean little.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from components.common.errors import BadInputError
from components.common.settings import RunConfig, check_setting

__all__ = ["split_data"]


def split_frame(
    frame: pd.DataFrame, target: str, task: str, test_size: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, test), each in the frame's row order; the test split is never seen by the
    search or the model evaluate scores (refit fits the served model on both afterwards)."""
    check_setting("test_size", test_size)
    keys = row_keys(frame)
    held_out = np.zeros(len(frame), dtype=bool)
    if task == "regression":
        groups = [np.arange(len(frame))]
    else:
        classes, test_rows = frame[target].nunique(), math.ceil(test_size * len(frame))
        if test_rows < classes:
            raise BadInputError(
                f"a test split of {test_rows} rows cannot hold all {classes} classes of "
                f"{target!r}; raise --test-size (got {test_size}) or add rows"
            )
        codes = pd.factorize(frame[target])[0]
        groups = [np.flatnonzero(codes == code) for code in range(codes.max() + 1)]
    for rows in groups:
        wanted = max(1, round(test_size * len(rows)))
        threshold = np.partition(keys[rows], wanted - 1)[wanted - 1]
        held_out[rows[keys[rows] <= threshold]] = True  # 64-bit keys: ties are ~impossible
    train, test = frame[~held_out], frame[held_out]
    return train.reset_index(drop=True), test.reset_index(drop=True)


def row_keys(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit key per row from its content and its occurrence among identical rows: the
    same for the same rows in any order."""
    content = pd.util.hash_pandas_object(frame, index=False)
    occurrence = content.groupby(content.to_numpy(), sort=False).cumcount()
    return np.asarray(
        pd.util.hash_pandas_object(
            pd.DataFrame({"content": content.to_numpy(), "occurrence": occurrence.to_numpy()}),
            index=False,
        ).to_numpy()
    )


def split_by_time(
    frame: pd.DataFrame, time_column: str, test_size: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of a forecast: the test split is the latest `test_size` share of the
    distinct times, across all series, so every test row comes strictly after every training
    row. Both come sorted by time (stable: series keep their order)."""
    from components.core.transformers.timeseries import parse_times

    check_setting("test_size", test_size)
    times = parse_times(frame[time_column].reset_index(drop=True), time_column)
    distinct = np.sort(times.unique())
    held = max(1, round(test_size * len(distinct)))
    if held >= len(distinct):
        raise BadInputError(
            f"--time-column {time_column!r} has {len(distinct)} distinct time(s): too few to "
            f"hold out the latest {test_size:.0%}"
        )
    cutoff = distinct[len(distinct) - held]
    order = np.argsort(times.to_numpy(), kind="stable")
    ordered, later = frame.iloc[order], (times >= cutoff).to_numpy()[order]
    return ordered[~later].reset_index(drop=True), ordered[later].reset_index(drop=True)


def split_data(frame: pd.DataFrame, settings: RunConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split stage: (train, test), the test split held out by content (stratified for
    classification), or for a forecast (`time_column`) the latest period."""
    if settings.time_column:
        return split_by_time(frame, settings.time_column, settings.test_size)
    return split_frame(frame, settings.target, settings.task, settings.test_size)
