"""Truncated SVD that adapts its size to the data: `--features svd` inside the model."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD


class LatentComponents(TransformerMixin, BaseEstimator):
    """Seeded truncated SVD to at most `n_components` dimensions: fewer when the input has
    fewer columns or rows (scikit-learn's TruncatedSVD refuses those), so one setting serves
    every fold and data set. Unlike PCA it does not centre, so sparse input stays sparse
    until it is projected."""

    def __init__(self, n_components: int = 100, random_state: int = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> LatentComponents:
        rows, columns = X.shape
        size = max(1, min(self.n_components, columns - 1, rows - 1))
        self.svd_ = TruncatedSVD(n_components=size, random_state=self.random_state).fit(X)
        self.n_features_in_ = columns
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(self.svd_.transform(X))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"svd{i}" for i in range(self.svd_.n_components)], dtype=object)
