"""Time-series features inside the model, and the seasonal-naive forecast it must beat.

Forecasting `horizon` steps ahead, the row at time t gets features computed from the target at
t - horizon and earlier only: lags, rolling means and spreads, the year-over-year (season-over-
season) change, plus calendar and seasonal (Fourier) terms of t itself. There is deliberately no
running time index: trees would tie their corrections to training-period dates they never see
again. Time is counted in steps
of the data's frequency (pandas period ordinals for dates, multiples of the step for numbers), so
a gap in a series is a missing lag, never a shifted one.

Every other column of the row (a covariate: temperature, price, a sensor reading) is used at its
value `horizon` steps earlier in the same series, as the target is: a forecast made today for
next week does not know next week's temperature. Columns whose future values are known when the
forecast is made (planned promotions, holidays, a price list) are declared `known_ahead` and kept
as same-row values; the series keys are always known. So the test score is what `predict` gets on
future rows whose covariates are empty.

The fitted `TimeSeriesFeatures` keeps the last stretch of each series' training history (target
and covariates), so the rows that follow training (the test period, or new data at prediction
time) get their lags from it; rows given with their own values extend that history.
`SeasonalResidual` fits the model to what the seasonal-naive forecast misses, so trees, which
cannot extrapolate a trend, start from the baseline instead of from the training range.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone

from components.common.errors import BadInputError
from components.core.schema import TableSchema, TimeSeriesSetup
from components.core.transformers.calendar import as_datetimes

NUMBER = "number"  # the frequency of a numeric time column (years as 1990, 1991, ...)
# Steps per season of each frequency (period alias -> steps); yearly data has no season.
SEASONS = {"min": 60, "h": 24, "D": 7, "W": 52, "M": 12, "Q": 4, "Y": 1}
CALENDAR = {  # calendar fields worth a feature at each frequency
    "min": ("hour", "day_of_week"),
    "h": ("hour", "day_of_week"),
    "D": ("day_of_week", "month"),
    "W": ("month",),
    "M": ("month",),
    "Q": ("quarter",),
    "Y": (),
}
FOURIER_TERMS = 2
SEASONAL_NAIVE = "seasonal_naive"


def parse_times(values: pd.Series, name: str) -> pd.Series:
    """Dates (tz-aware ones in UTC, without the zone) or numbers; BadInputError when the
    column is neither or has gaps."""
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise BadInputError(f"--time-column {name!r} has a missing value (row {row + 1})")
    if ptypes.is_bool_dtype(values):
        raise BadInputError(f"--time-column {name!r} holds booleans, not dates or numbers")
    if ptypes.is_numeric_dtype(values):
        return values.astype(float)
    # zone-aware and naive times (a model's kept history) and offsets that change with
    # daylight saving all become one UTC clock
    parsed = as_datetimes(values)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadInputError(
            f"--time-column {name!r} does not parse as dates or numbers: row {row + 1} "
            f"holds {str(values.iloc[row])[:60]!r}"
        )
    return parsed


def infer_frequency(times: pd.Series, keys: pd.Series | None) -> tuple[str, float]:
    """(frequency, step): the commonest gap between consecutive times of a series. Dates get a
    pandas period alias (h, D, W, M, Q, Y, or a multiple such as 15min); numbers get NUMBER and
    the step."""
    groups = [times] if keys is None else [g for _, g in times.groupby(keys, sort=False)]
    gaps = pd.concat([g.sort_values().diff().dropna() for g in groups])
    zero = 0.0 if ptypes.is_numeric_dtype(times) else pd.Timedelta(0)
    gaps = gaps[gaps > zero]
    if gaps.empty:
        raise BadInputError("--time-column needs at least two distinct times in a series")
    common = gaps.mode().iloc[0]
    if ptypes.is_numeric_dtype(times):
        # a rounded step (1/12 written as 0.0833) drifts over a long series: take the step
        # that divides the longest series' span into whole steps
        span = float(max(g.max() - g.min() for g in groups))
        return NUMBER, span / max(1, round(span / float(common)))
    days = common / pd.Timedelta(days=1)
    for low, high, alias in ((27, 32, "M"), (88, 93, "Q"), (364, 367, "Y")):
        if low <= days <= high:
            return alias, 1.0
    if days == 7:
        return "W", 1.0
    minutes = common / pd.Timedelta(minutes=1)
    if minutes >= 1 and minutes == int(minutes):
        for unit, size in (("D", 1440), ("h", 60), ("min", 1)):
            if minutes % size == 0:
                count = int(minutes // size)
                return (unit if count == 1 else f"{count}{unit}"), 1.0
    raise BadInputError(
        f"--time-column gaps of {common} are not a frequency stablepipe can count in "
        "(minutes, hours, days, weeks, months, quarters, years)"
    )


def split_frequency(frequency: str) -> tuple[str, int]:
    """'15min' -> ('min', 15); 'W' -> ('W', 1)."""
    unit = frequency.lstrip("0123456789")
    return unit, int(frequency[: len(frequency) - len(unit)] or 1)


def season_of(frequency: str) -> int:
    """Steps per season: a day of hours, a week of days, a year of weeks, months or quarters;
    a multiple (15min, 2h) divides the next larger unit when it can."""
    if frequency == NUMBER:
        return 1
    unit, count = split_frequency(frequency)
    per_unit = SEASONS[unit]
    if unit == "min":  # minutes: a day's worth
        per_unit = 1440
    return per_unit // count if per_unit % count == 0 else 1


def time_steps(times: pd.Series, frequency: str, step: float) -> np.ndarray:
    """Integer step numbers: period ordinals of dates, multiples of `step` for numbers."""
    if frequency == NUMBER:
        ratio = times.to_numpy(dtype=float) / step
        return np.round(ratio).astype(np.int64)
    unit, count = split_frequency(frequency)
    # periods of the unit (minutes, days, ...), then every `count` of them one step
    return np.asarray(pd.PeriodIndex(times, freq=unit).asi8, dtype=np.int64) // count


class TimeSeriesFeatures(TransformerMixin, BaseEstimator):
    """Lags, rolling windows and calendar terms of the target for a `horizon`-step forecast.

    Takes the table with the target column in it (the history; missing where a value is to be
    forecast) and returns the other columns plus the features, without the target and time.
    """

    def __init__(
        self,
        target: str = "",
        time_column: str = "",
        series_keys: tuple[str, ...] = (),
        horizon: int = 1,
        season: int = 1,
        frequency: str = NUMBER,
        step: float = 1.0,
        known_ahead: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.time_column = time_column
        self.series_keys = series_keys
        self.horizon = horizon
        self.season = season
        self.frequency = frequency
        self.step = step
        self.known_ahead = known_ahead

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a model saved before covariates were lagged has no `known_ahead` (and no
        # `history_covariates_`: it keeps reading its covariates from the same row)
        state.setdefault("known_ahead", ())
        super().__setstate__(state)

    # --- the feature plan -------------------------------------------------------------------
    @property
    def base_offset(self) -> int:
        """How far back the seasonal-naive forecast looks: the same point of the latest season
        at least `horizon` steps back."""
        return self.season * math.ceil(self.horizon / self.season)

    def lag_offsets(self) -> list[int]:
        recent = 12 if self.season == 1 else max(3, min(self.season, 12))
        lags = {self.horizon + j for j in range(recent)}
        if self.season > 1:
            lags |= {self.base_offset, self.base_offset + self.season}
        return sorted(lags)

    def windows(self) -> list[int]:
        return sorted({4, max(4, min(self.season, 52))} | ({12} if self.season == 1 else set()))

    def calendar_fields(self) -> tuple[str, ...]:
        if self.frequency == NUMBER:
            return ()
        return CALENDAR[split_frequency(self.frequency)[0]]

    def feature_names(self) -> list[str]:
        """The columns `transform` adds (all numeric), in order."""
        names = [SEASONAL_NAIVE, "seasonal_change"]
        names += [f"lag_{o}" for o in self.lag_offsets()]
        for w in self.windows():
            names += [f"mean_{w}", f"std_{w}"]
        names += [f"time_{field}" for field in self.calendar_fields()]
        if self.season > 1:
            for k in range(1, FOURIER_TERMS + 1):
                names += [f"season_sin{k}", f"season_cos{k}"]
        return names

    def history_needed(self) -> int:
        """The most steps any feature looks back."""
        longest = max(self.lag_offsets() + [self.horizon + w - 1 for w in self.windows()])
        return max(longest, self.horizon + self.base_offset)

    def same_row_columns(self) -> set[str]:
        """The columns read from the row itself: target, time, series keys, known-ahead."""
        return {self.target, self.time_column, *self.series_keys, *self.known_ahead}

    def lagged_covariates(self) -> list[str]:
        """The fitted model's covariates, each used at its value `horizon` steps earlier
        (none for a model saved before covariates were lagged)."""
        return list(getattr(self, "covariates_", []))

    def same_row_covariates(self) -> list[str]:
        """The covariates a model saved before covariates were lagged reads from the row it
        forecasts (none for any model fitted since)."""
        if hasattr(self, "covariates_") or not hasattr(self, "feature_names_in_"):
            return []
        return [str(c) for c in self.feature_names_in_ if c not in self.same_row_columns()]

    # --- fitting ----------------------------------------------------------------------------
    def series_codes(self, X: pd.DataFrame) -> np.ndarray:
        if not self.series_keys:
            return np.zeros(len(X), dtype=object)
        keys = X[list(self.series_keys)].astype(str)
        return np.asarray(keys.agg("\x1f".join, axis=1), dtype=object)

    def observed(self, X: pd.DataFrame, y: Any = None) -> pd.DataFrame:
        """(series, step, time, value) of X's rows: the target column, else `y`."""
        missing = [c for c in (self.time_column, *self.series_keys) if c not in X.columns]
        if missing:
            raise BadInputError(
                f"time-series input lacks the column(s) {missing}; it needs the time column, "
                "the series keys and the target's recent history"
            )
        times = parse_times(X[self.time_column].reset_index(drop=True), self.time_column)
        if self.target in X.columns:
            values = pd.to_numeric(X[self.target], errors="coerce").to_numpy(dtype=float)
        elif y is not None:
            values = np.asarray(y, dtype=float)
        else:
            values = np.full(len(X), np.nan)
        return pd.DataFrame(
            {
                "series": self.series_codes(X),
                "step": time_steps(times, self.frequency, self.step),
                "time": times.to_numpy(),
                "value": values,
            }
        )

    def fit(self, X: pd.DataFrame, y: Any = None) -> TimeSeriesFeatures:
        """Keep the last `history_needed()` steps of each series (values known only)."""
        rows = self.observed(X, y)
        rows = rows[np.isfinite(rows["value"].to_numpy())]
        last = rows.groupby("series")["step"].transform("max")
        tail = rows[rows["step"] > last - self.history_needed()]
        self.history_series_ = tail["series"].to_numpy(dtype=object)
        self.history_steps_ = tail["step"].to_numpy(dtype=np.int64)
        self.history_values_ = tail["value"].to_numpy(dtype=float)
        positions = tail.index.to_numpy()  # observed() numbers X's rows from 0
        self.covariates_ = [c for c in X.columns if c not in self.same_row_columns()]
        self.history_covariates_ = {c: storable(X[c].iloc[positions]) for c in self.covariates_}
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    # --- transforming -----------------------------------------------------------------------
    def axis(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept history's and the rows' (series, step) as keys of one integer axis on
        which each series is a block, and each row's offset inside its block."""
        names = pd.Index(np.concatenate([self.history_series_, rows["series"].to_numpy()]))
        codes, _ = pd.factorize(names)
        kept = len(self.history_series_)
        lowest = min(int(self.history_steps_.min(initial=0)), int(rows["step"].min()))
        span = max(int(self.history_steps_.max(initial=0)), int(rows["step"].max())) - lowest + 1
        block = span + self.history_needed() + 1
        keys = (
            codes.astype(np.int64) * block
            + np.concatenate([self.history_steps_, rows["step"].to_numpy()])
            - lowest
        )
        offsets_in_block = keys[kept:] - codes[kept:].astype(np.int64) * block
        return keys[:kept], keys[kept:], offsets_in_block

    @staticmethod
    def merged(
        kept_keys: np.ndarray, kept_values: Any, row_keys: np.ndarray, row_values: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """The known (key, value) pairs of the kept history and the rows, sorted by key; a
        row overrides the kept history at its key, even with a missing value."""
        keys = np.concatenate([kept_keys, row_keys])
        values = np.concatenate([np.asarray(kept_values), np.asarray(row_values)])
        known = np.asarray(pd.notna(values), dtype=bool)
        known[: len(kept_keys)] &= ~np.isin(kept_keys, row_keys)
        order = np.argsort(keys[known], kind="stable")
        return keys[known][order], values[known][order]

    @staticmethod
    def positions(
        sorted_keys: np.ndarray, row_keys: np.ndarray, offset: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(where, found): each row's index into the sorted history `offset` steps back, and
        whether the history has it (never reaching into the previous series' block)."""
        wanted = row_keys[0] - offset
        where = np.clip(np.searchsorted(sorted_keys, wanted), 0, max(len(sorted_keys) - 1, 0))
        found = row_keys[1] >= offset
        if len(sorted_keys):
            found &= sorted_keys[where] == wanted
        else:
            found &= False
        return where, found

    def lagged(
        self, sorted_keys: np.ndarray, values: np.ndarray, row_keys: np.ndarray, offset: int
    ) -> np.ndarray:
        """Each row's target `offset` steps back, NaN where the history lacks it."""
        where, found = self.positions(sorted_keys, row_keys, offset)
        out = np.full(len(found), np.nan)
        out[found] = values[where[found]]
        return out

    def covariates(self, X: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        """X's covariate columns, each holding its value `horizon` steps earlier in the
        series (from the rows given, else the kept history; missing where neither has it)."""
        kept_keys, row_keys, offsets = self.axis(rows)
        out: dict[str, Any] = {}
        for column in self.lagged_covariates():
            keys, values = self.merged(
                kept_keys,
                self.history_covariates_[column],
                row_keys,
                storable(X[column]) if column in X.columns else np.full(len(X), np.nan),
            )
            where, found = self.positions(keys, np.stack([row_keys, offsets]), self.horizon)
            taken = pd.Series(values[where] if len(values) else np.full(len(X), np.nan))
            out[column] = taken.where(found).to_numpy()
        return pd.DataFrame(out, index=X.index)

    def features(self, X: pd.DataFrame) -> pd.DataFrame:
        """The added columns, in `feature_names()` order, for X's rows."""
        rows = self.observed(X)
        kept_keys, row_keys_only, offsets = self.axis(rows)
        sorted_keys, values = self.merged(
            kept_keys, self.history_values_, row_keys_only, rows["value"].to_numpy()
        )
        row_keys = np.stack([row_keys_only, offsets])
        cache: dict[int, np.ndarray] = {}

        def lag(offset: int) -> np.ndarray:
            if offset not in cache:
                cache[offset] = self.lagged(sorted_keys, values, row_keys, offset)
            return cache[offset]

        out: dict[str, np.ndarray] = {
            SEASONAL_NAIVE: lag(self.base_offset),
            "seasonal_change": lag(self.horizon) - lag(self.horizon + self.base_offset),
        }
        for offset in self.lag_offsets():
            out[f"lag_{offset}"] = lag(offset)
        with warnings.catch_warnings():  # a window with no known value: NaN, imputed later
            warnings.simplefilter("ignore", RuntimeWarning)
            for w in self.windows():
                window = np.stack([lag(self.horizon + j) for j in range(w)])
                out[f"mean_{w}"] = np.nanmean(window, axis=0)
                out[f"std_{w}"] = np.nanstd(window, axis=0)
        steps = rows["step"].to_numpy()
        times = pd.Series(rows["time"].to_numpy())
        for field in self.calendar_fields():
            out[f"time_{field}"] = getattr(times.dt, field).to_numpy(dtype=float)
        if self.season > 1:
            phase = 2 * np.pi * np.mod(steps, self.season) / self.season
            for k in range(1, FOURIER_TERMS + 1):
                out[f"season_sin{k}"] = np.sin(k * phase)
                out[f"season_cos{k}"] = np.cos(k * phase)
        return pd.DataFrame(out, index=X.index)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        added = self.features(X)
        kept = X.drop(columns=[c for c in (self.target, self.time_column) if c in X.columns])
        lagged = self.lagged_covariates()
        if lagged:
            kept = kept.copy()
            earlier = self.covariates(X, self.observed(X))
            for column in lagged:
                kept[column] = earlier[column]
        return pd.concat([kept, added], axis=1)

    def history_frame(self) -> pd.DataFrame:
        """The kept history as input rows (time, series keys, lagged covariates, target): what
        another forecasting model of the same series can be given as context."""
        steps = self.history_steps_
        if self.frequency == NUMBER:
            times: Any = steps * self.step
        else:
            unit, count = split_frequency(self.frequency)  # a step is `count` unit periods
            periods = pd.PeriodIndex.from_ordinals(steps * count, freq=unit)  # type: ignore[attr-defined]
            times = periods.to_timestamp()
        frame = pd.DataFrame({self.time_column: times})
        if self.series_keys:
            parts = pd.Series(self.history_series_).str.split("\x1f", expand=True)
            for position, key in enumerate(self.series_keys):
                frame[key] = parts[position].to_numpy()
        for column in self.lagged_covariates():
            frame[column] = self.history_covariates_[column]
        frame[self.target] = self.history_values_
        return frame

    def missing_history(self, X: pd.DataFrame) -> np.ndarray:
        """Rows whose seasonal-naive value or latest lag (`horizon` steps back) is not in the
        history: rows too far from the known values (further ahead than the horizon, or after
        a gap) whose forecasts would rest on imputed lags."""
        added = self.features(X)
        latest = added[f"lag_{self.horizon}"].to_numpy()
        return np.asarray(np.isnan(added[SEASONAL_NAIVE].to_numpy()) | np.isnan(latest))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        given = self.feature_names_in_ if input_features is None else input_features
        kept = [c for c in given if c not in (self.target, self.time_column)]
        return np.asarray([*kept, *self.feature_names()], dtype=object)


class SeasonalResidual(RegressorMixin, BaseEstimator):
    """A regressor fitted to the target minus the seasonal-naive forecast (the column
    SEASONAL_NAIVE of its input), predicting that forecast plus the fitted correction.

    Training rows without a seasonal-naive value (the first season of a series) are left out
    of fitting; at prediction time such rows fall back to the latest lag, else the training
    mean, so the output is always a number."""

    def __init__(self, regressor: Any = None) -> None:
        self.regressor = regressor

    @staticmethod
    def base(X: pd.DataFrame, fallback: float) -> np.ndarray:
        base = X[SEASONAL_NAIVE].to_numpy(dtype=float).copy()
        lags = sorted((c for c in X.columns if str(c).startswith("lag_")), key=lambda c: int(c[4:]))
        for column in lags:
            gap = np.isnan(base)
            if not gap.any():
                break
            base[gap] = X[column].to_numpy(dtype=float)[gap]
        base[np.isnan(base)] = fallback
        return base

    def fit(self, X: pd.DataFrame, y: Any) -> SeasonalResidual:
        target = np.asarray(y, dtype=float)
        usable = ~np.isnan(X[SEASONAL_NAIVE].to_numpy(dtype=float))
        if usable.sum() < 2:
            raise BadInputError(
                f"only {int(usable.sum())} training row(s) have a full season of history "
                "before them; give a longer series or a shorter --horizon/--season"
            )
        self.fallback_ = float(np.mean(target[usable]))
        residual = target[usable] - X[SEASONAL_NAIVE].to_numpy(dtype=float)[usable]
        self.regressor_ = clone(self.regressor).fit(X[usable], residual)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.regressor_.predict(X), dtype=float) + self.base(X, self.fallback_)


def storable(values: pd.Series) -> np.ndarray:
    """A column as an array a model file can hold: floats for numbers, UTC datetime64 for
    times, else objects with None where missing."""
    if ptypes.is_bool_dtype(values) or not ptypes.is_numeric_dtype(values):
        if ptypes.is_datetime64_any_dtype(values):
            return np.asarray(as_datetimes(values).to_numpy(dtype="datetime64[ns]"))
        return np.asarray(values.astype(object).where(values.notna(), None), dtype=object)
    return np.asarray(values.to_numpy(dtype=float, na_value=np.nan))


def forecasting_step(model: Any) -> TimeSeriesFeatures | None:
    """The fitted or unfitted TimeSeriesFeatures at the head of a pipeline, if any."""
    steps = getattr(model, "named_steps", {})
    step = steps.get("timeseries") if hasattr(steps, "get") else None
    return step if isinstance(step, TimeSeriesFeatures) else None


def seasonal_naive(model: Any, X: pd.DataFrame) -> np.ndarray:
    """The seasonal-naive forecast of X's rows, from the model's own history (the baseline
    a forecasting model is reported against); NaN where the history lacks it."""
    step = forecasting_step(model)
    if step is None:
        raise ValueError("not a forecasting model")
    return np.asarray(step.features(X)[SEASONAL_NAIVE].to_numpy(dtype=float))


def model_inputs(frame: pd.DataFrame, target: str, steps: Any) -> pd.DataFrame:
    """What a pipeline is fitted on: the table without the target, except for a forecasting
    pipeline, whose lags are computed from the target column."""
    return frame if forecasting_step(steps) is not None else frame.drop(columns=[target])


def with_forecasting(schema: TableSchema, preprocessor: Any) -> Any:
    """The preprocessor, behind the forecasting step when the schema describes a forecast."""
    from sklearn.pipeline import Pipeline

    settings = schema.get("timeseries")
    if not settings:
        return preprocessor
    step = from_settings(settings, schema["target"])
    return Pipeline([("timeseries", step), ("preprocess", preprocessor)])


def from_settings(settings: TimeSeriesSetup, target: str) -> TimeSeriesFeatures:
    """The transformer a schema's `timeseries` entry describes."""
    return TimeSeriesFeatures(
        target=target,
        time_column=settings["time_column"],
        series_keys=tuple(settings["series_keys"]),
        horizon=int(settings["horizon"]),
        season=int(settings["season"]),
        frequency=str(settings["frequency"]),
        step=float(settings["step"]),
        known_ahead=tuple(settings.get("known_ahead", [])),
    )
