"""Categorical columns inside the model: as strings (missing values a category of their own),
or as integer codes for the native categorical splits of histogram gradient boosting, LightGBM
and CatBoost."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils import _safe_indexing
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
    otherwise is the model it wraps.

    With `early_stopping_rounds`, it holds out VALIDATION_FRACTION of the rows (stratified for
    a classifier, seeded by the model's random_state), fits on the rest and stops adding trees
    after that many rounds without gain on them (LightGBM's early_stopping callback); the model
    then predicts with its best iteration."""

    def __init__(
        self,
        estimator: Any,
        categorical_features: Sequence[int] = (),
        early_stopping_rounds: int = 0,
    ) -> None:
        self.estimator = estimator
        self.categorical_features = categorical_features
        self.early_stopping_rounds = early_stopping_rounds

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a model saved before early stopping was searched has no `early_stopping_rounds`
        # (clone and get_params would fail on it): it was fitted without
        state.setdefault("early_stopping_rounds", 0)
        super().__setstate__(state)

    def fit(self, X: Any, y: Any) -> NativeCategories:
        columns = [int(c) for c in self.categorical_features]
        estimator = clone(self.estimator)
        if not self.early_stopping_rounds:
            self.estimator_ = estimator.fit(X, y, categorical_feature=columns or "auto")
        else:
            import lightgbm

            classify = hasattr(estimator, "predict_proba")
            seed = estimator.get_params().get("random_state") or 0
            fit_rows, held = held_out_rows(np.asarray(y), classify, seed)
            with warnings.catch_warnings():
                # LightGBM 4.7 deprecates eval_set for eval_X and eval_y, but its classifier
                # does not encode eval_y's labels (string labels fail): eval_set it is
                warnings.filterwarnings("ignore", "The argument 'eval_set' is deprecated")
                self.estimator_ = estimator.fit(
                    _safe_indexing(X, fit_rows),
                    _safe_indexing(y, fit_rows),
                    eval_set=[(_safe_indexing(X, held), _safe_indexing(y, held))],
                    categorical_feature=columns or "auto",
                    callbacks=[lightgbm.early_stopping(self.early_stopping_rounds, verbose=False)],
                )
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


# The share of the rows an early-stopped model holds out to judge when to stop (as histogram
# gradient boosting's validation_fraction).
VALIDATION_FRACTION = 0.1


def held_out_rows(y: np.ndarray, classify: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows to fit on and the VALIDATION_FRACTION held out to judge early stopping, the
    classes' shares kept for a classifier. Where a class is too rare to be split that way, the
    held-out rows are drawn at random and those of a class no fit row has go back to the fit
    rows (every class is fitted); with no row left to hold out, it is judged on the fit rows."""
    rows = np.arange(len(y))
    if len(rows) < 2:
        return rows, rows
    try:
        fit, held = train_test_split(
            rows, test_size=VALIDATION_FRACTION, random_state=seed, stratify=y if classify else None
        )
    except ValueError:
        fit, held = train_test_split(rows, test_size=VALIDATION_FRACTION, random_state=seed)
        fitted = np.isin(y[held], y[fit]) if classify else np.ones(len(held), dtype=bool)
        fit, held = np.concatenate([fit, held[~fitted]]), held[fitted]
    return np.sort(fit), np.sort(held if len(held) else fit)


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
      failed trial like any other family's, not a crashed search worker.
    - With `early_stopping_rounds`, as NativeCategories: VALIDATION_FRACTION of the rows held
      out, iterations added until that many bring no gain on them, the model cut back to its
      best iteration (CatBoost's overfitting detector, `od_type="Iter"`)."""

    def fit(self, X: Any, y: Any) -> CatBoostCategories:
        from catboost import CatBoostError

        columns = [int(c) for c in self.categorical_features]
        estimator = clone(self.estimator).set_params(thread_count=openmp_threads())
        target = np.asarray(y)
        classify = hasattr(estimator, "predict_proba")
        if classify:
            self.classes_, target = np.unique(target, return_inverse=True)
        table = self._table(X)
        fit: dict[str, Any] = {"cat_features": columns or None}
        if self.early_stopping_rounds:
            seed = estimator.get_params().get("random_seed") or 0
            fit_rows, held = held_out_rows(target, classify, seed)
            estimator.set_params(
                od_type="Iter", od_wait=self.early_stopping_rounds, use_best_model=True
            )
            fit["eval_set"] = (_safe_indexing(table, held), target[held])
            table, target = _safe_indexing(table, fit_rows), target[fit_rows]
        try:
            self.estimator_ = estimator.fit(table, target, **fit)
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
