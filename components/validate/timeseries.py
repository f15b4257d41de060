"""The checks a forecasting run needs before anything is fitted: a time column that parses,
series in time order without repeated times, and a horizon the history can serve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from components.common.errors import BadInputError
from components.common.settings import check_settings
from components.core.schema import TimeSeriesSetup

# A forecast needs this many seasons-or-horizons of history per series, at the least.
MIN_HISTORY_FACTOR = 2


def split_keys(series_key: str) -> list[str]:
    """--series-key 'store,item' -> ['store', 'item']."""
    return [key.strip() for key in series_key.split(",") if key.strip()]


def check_time_series(
    frame: pd.DataFrame,
    target: str,
    time_column: str,
    series_key: str,
    horizon: int,
    season: int,
    known_ahead: str = "",
) -> TimeSeriesSetup:
    """The schema's `timeseries` entry; BadInputError names the first problem."""
    # here, not at the top: that module holds scikit-learn transformers, and a validate that
    # forecasts nothing should not pay scikit-learn's import (0.8 s per stage process)
    from components.core.transformers.timeseries import (
        infer_frequency,
        parse_times,
        season_of,
        time_steps,
    )

    keys = split_keys(series_key)
    ahead = split_keys(known_ahead)
    named = [("--time-column", time_column)] + [("--series-key", k) for k in keys]
    for flag, name in named + [("--known-ahead", k) for k in ahead]:
        if name not in frame.columns:
            raise BadInputError(
                f"{flag} names a column the data lacks: {name!r}; columns: "
                + ", ".join(repr(c) for c in list(frame.columns)[:20])
            )
    if target in (time_column, *keys):
        raise BadInputError(f"--target {target!r} cannot also be the time column or a series key")
    if target in ahead:
        raise BadInputError(
            f"--known-ahead names the target {target!r}: its future is what is forecast"
        )
    check_settings({"horizon": horizon, "season": season})
    times = parse_times(frame[time_column].reset_index(drop=True), time_column)
    groups = (
        pd.Series(np.zeros(len(frame), dtype=int))
        if not keys
        else frame[keys].astype(str).agg("\x1f".join, axis=1).reset_index(drop=True)
    )
    check_order(times, groups, time_column, bool(keys))
    frequency, step = infer_frequency(times, groups if keys else None)
    season = season or season_of(frequency)
    steps = pd.Series(time_steps(times, frequency, step))
    crowded = pd.DataFrame({"series": groups, "step": steps}).duplicated()
    if crowded.any():
        row = int(np.argmax(crowded.to_numpy()))
        raise BadInputError(
            f"--time-column {time_column!r} has two times in one step of "
            f"{frequency_label(frequency, step)} (row {row + 1}, {shown(times[row])}); the "
            "series needs one value per step"
        )
    spans = steps.groupby(groups).agg(lambda s: int(s.max() - s.min()) + 1)
    shortest = spans.idxmin()
    needed = MIN_HISTORY_FACTOR * max(horizon, season) + horizon
    if horizon >= int(spans.min()) or int(spans.min()) < needed:
        where = f"series {str(shortest).replace(chr(31), ' / ')!r}" if keys else "the series"
        raise BadInputError(
            f"--horizon {horizon} is too long for the history: {where} spans "
            f"{int(spans.min())} steps of {frequency_label(frequency, step)}; a forecast "
            f"{horizon} steps ahead with a season of {season} needs at least {needed}"
        )
    return {
        "time_column": time_column,
        "series_keys": keys,
        "horizon": horizon,
        "season": season,
        "frequency": frequency,
        "step": step,
        "series": int(groups.nunique()),
        "known_ahead": [k for k in ahead if k not in (time_column, *keys)],
    }


def check_order(times: pd.Series, groups: pd.Series, name: str, keyed: bool) -> None:
    """Times strictly increase within each series, in the table's row order."""
    for label, positions in groups.groupby(groups, sort=False).indices.items():
        series = times.iloc[positions]
        where = f" within series {str(label).replace(chr(31), ' / ')!r}" if keyed else ""
        repeated = series.duplicated()
        if repeated.any():
            row = int(positions[int(np.argmax(repeated.to_numpy()))])
            raise BadInputError(
                f"--time-column {name!r} repeats the time {shown(series[row])}{where} "
                f"(row {row + 1}); each time may appear once per series "
                "(give --series-key for several series)"
            )
        back = series.diff().iloc[1:] < (pd.Timedelta(0) if series.dtype.kind == "M" else 0)
        if back.any():
            row = int(positions[1 + int(np.argmax(back.to_numpy()))])
            raise BadInputError(
                f"--time-column {name!r} is not in time order{where}: row {row + 1} holds "
                f"{shown(times[row])}, earlier than the row before it; sort the data by time"
            )


def shown(value: Any) -> str:
    """A time as a user wrote it: a date without a midnight clock, a year without '.0'."""
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return str(value.date())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def frequency_label(frequency: str, step: float) -> str:
    return f"{step:g}" if frequency == "number" else frequency
