"""Categorical columns inside the model: as strings (missing values a category of their own),
or as integer codes for the native categorical splits of histogram gradient boosting, LightGBM
and CatBoost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils.metaestimators import available_if
from threadpoolctl import threadpool_info

MISSING_CATEGORY = "__missing__"


def category_codes(max_categories: int = 250) -> OrdinalEncoder:
    """Categories as integer codes, for histogram gradient boosting's native categorical splits
    (it takes at most 255 categories: the rarest beyond `max_categories` share one code; a
    category not seen in training becomes missing)."""
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        max_categories=max_categories,
        dtype=np.float64,
    )


def as_category_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as strings, missing values as their own category."""
    return frame.astype("string").fillna(MISSING_CATEGORY).astype(object)


class NativeCategories(MetaEstimatorMixin, BaseEstimator):
    """A LightGBM model told which of its input columns are categorical codes. LightGBM takes
    them as an argument of `fit`, not of the constructor, which a Pipeline step cannot pass:
    this step passes them (`categorical_features`, column positions; empty: none) and
    otherwise is the model it wraps."""

    def __init__(self, estimator: Any, categorical_features: Sequence[int] = ()) -> None:
        self.estimator = estimator
        self.categorical_features = categorical_features

    def fit(self, X: Any, y: Any) -> NativeCategories:
        columns = [int(c) for c in self.categorical_features]
        self.estimator_ = clone(self.estimator).fit(X, y, categorical_feature=columns or "auto")
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict(X))

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(X))

    def __sklearn_tags__(self) -> Any:
        return self.estimator.__sklearn_tags__()


class CatBoostCategories(NativeCategories):
    """A CatBoost model told which of its input columns are categorical codes. CatBoost takes
    categories as whole numbers (or strings) in a table, not as floats: this step hands it the
    codes as integers (a category not seen in training, NaN, as -1) and their positions as
    `cat_features`.

    - Labels: fitted as their positions in `classes_` (sorted as numpy sorts them), so that
      `predict_proba`'s columns follow `classes_` as everywhere else; CatBoost itself orders
      labels such as "10", "9", "2" by number.
    - Threads: CatBoost runs its own pool, which threadpoolctl cannot cap; it is given as many
      threads as OpenMP may use where it fits or predicts (a search worker's share).
    - A fit CatBoost refuses (a constant target, every feature constant) is a ValueError, a
      failed trial like any other family's, not a crashed search worker."""

    def fit(self, X: Any, y: Any) -> CatBoostCategories:
        from catboost import CatBoostError

        columns = [int(c) for c in self.categorical_features]
        estimator = clone(self.estimator).set_params(thread_count=openmp_threads())
        target = np.asarray(y)
        if hasattr(estimator, "predict_proba"):
            self.classes_, target = np.unique(target, return_inverse=True)
        try:
            self.estimator_ = estimator.fit(self._table(X), target, cat_features=columns or None)
        except CatBoostError as error:
            raise ValueError(f"CatBoost: {error}") from error
        return self

    def predict(self, X: Any) -> np.ndarray:
        # CatBoost's classifier gives a column of labels; the Pipeline's contract is a vector
        output = self.estimator_.predict(self._table(X), thread_count=openmp_threads())
        if hasattr(self, "classes_"):
            return np.asarray(self.classes_[np.asarray(output, dtype=np.int64).ravel()])
        return np.asarray(output).ravel()

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        table = self._table(X)
        return np.asarray(self.estimator_.predict_proba(table, thread_count=openmp_threads()))

    def _table(self, X: Any) -> Any:
        values = X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=np.float64)
        if not len(self.categorical_features):
            return values
        table = pd.DataFrame(values)
        for column in self.categorical_features:
            table[int(column)] = table[int(column)].fillna(-1).astype(np.int64)
        return table


def openmp_threads() -> int:
    """The threads OpenMP may use in this process now (threadpoolctl's limit, when one is
    set), or -1 (every core) when no OpenMP runtime is loaded."""
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp"]
    return min(counts) if counts else -1
