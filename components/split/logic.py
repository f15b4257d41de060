"""Split: hold out a test split chosen by each row's content, stratified for classification.

The rows held out are those whose content hashes lowest (within each class for classification),
so the split depends on the data alone: not on the seed, not on the rows' order. A rerun with
another seed, or on the same rows delivered in another order, holds out the same rows. That is
what makes the champion comparison fair: the champion, trained on earlier data, never trained
on the rows it is judged on. Identical rows share a hash and so fall on the same side: a
duplicate cannot leak a training row into the test split.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from components.common.errors import BadInputError


def split_frame(
    frame: pd.DataFrame, target: str, task: str, test_size: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, test), each in the frame's row order; the test split is never seen by
    fitting or search."""
    if not 0.05 <= test_size <= 0.5:
        raise BadInputError(f"test_size must be between 0.05 and 0.5; got {test_size!r}")
    keys = pd.util.hash_pandas_object(frame, index=False).to_numpy()
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
        # every row hashing at or below the wanted-th lowest hash: ties (duplicates) stay together
        threshold = np.partition(keys[rows], wanted - 1)[wanted - 1]
        held_out[rows[keys[rows] <= threshold]] = True
    train, test = frame[~held_out], frame[held_out]
    return train.reset_index(drop=True), test.reset_index(drop=True)
