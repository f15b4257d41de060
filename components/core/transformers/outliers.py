"""Outlier clipping to Tukey's far-out fences, learnt on the training rows."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class OutlierClipper(TransformerMixin, BaseEstimator):
    """Clip each column to Tukey's far-out fences (Q1 - k*IQR, Q3 + k*IQR) learnt in `fit`."""

    def __init__(self, k: float = 3.0) -> None:
        self.k = k

    def fit(self, X: Any, y: Any = None) -> OutlierClipper:
        values = np.asarray(X, dtype=float)
        with warnings.catch_warnings():  # an all-missing column has no quartiles: left as is
            warnings.simplefilter("ignore", RuntimeWarning)
            q1, q3 = np.nanpercentile(values, [25, 75], axis=0)
        iqr = q3 - q1
        # A column whose middle half is one value (a sparse count, a flag) has no spread to
        # judge outliers by: clipping it would flatten it to a constant, so it is left alone.
        keep = ~(iqr > 0)
        self.lower_ = np.where(keep, -np.inf, q1 - self.k * iqr)
        self.upper_ = np.where(keep, np.inf, q3 + self.k * iqr)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.clip(np.asarray(X, dtype=float), self.lower_, self.upper_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray(input_features, dtype=object)
