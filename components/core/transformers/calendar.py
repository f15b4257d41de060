"""Datetime columns as calendar features, inside the model: the year, month, day of week, hour
and the day of the year as a sine/cosine pair (so 31 December sits next to 1 January)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

FIELDS = ("year", "month", "day_of_week", "hour", "year_sin", "year_cos")


def as_datetimes(column: pd.Series) -> pd.Series:
    """Dates from dates or strings (unparseable values become missing); tz-aware ones in UTC
    without the zone."""
    if not pd.api.types.is_datetime64_any_dtype(column):
        with warnings.catch_warnings():  # "could not infer format": mixed formats are parsed
            warnings.simplefilter("ignore")
            # utc: offsets that change (daylight saving) are one column, not "mixed timezones"
            column = pd.to_datetime(
                column.astype("string"), errors="coerce", format="mixed", utc=True
            )
    if getattr(column.dt, "tz", None) is not None:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    return column


class CalendarFeatures(TransformerMixin, BaseEstimator):
    """Each datetime column becomes FIELDS (missing where the date is); the hour only when a
    training value has a time of day. Stateless apart from that choice."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> CalendarFeatures:
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.with_hour_ = [
            bool((as_datetimes(frame[c]).dropna().dt.hour != 0).any()) for c in frame.columns
        ]
        return self

    def fields(self, position: int) -> list[str]:
        return [f for f in FIELDS if f != "hour" or self.with_hour_[position]]

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        parts = []
        for position, name in enumerate(frame.columns):
            dates = as_datetimes(frame[name])
            values = {
                "year": dates.dt.year,
                "month": dates.dt.month,
                "day_of_week": dates.dt.day_of_week,
                "hour": dates.dt.hour,
            }
            angle = 2 * np.pi * (dates.dt.day_of_year.astype(float) - 1) / 365.25
            values["year_sin"], values["year_cos"] = np.sin(angle), np.cos(angle)
            for field in self.fields(position):
                parts.append(pd.Series(values[field]).to_numpy(dtype=float, na_value=np.nan))
        return np.column_stack(parts) if parts else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray(
            [f"{name}_{field}" for i, name in enumerate(names) for field in self.fields(i)],
            dtype=object,
        )
