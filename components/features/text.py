"""Text columns as features, inside the model (fitted on the training split only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class TextFeatures(TransformerMixin, BaseEstimator):
    """One free-text column as features: TF-IDF over words and word pairs, reduced to at most
    `components` dense dimensions by truncated SVD (latent semantic analysis), so every model
    family (and PCA after it) can use them. `components=0` keeps the sparse TF-IDF matrix
    itself: linear models do better on every term than on 100 latent ones (fine-food reviews:
    test ROC-AUC 0.857 against 0.828)."""

    def __init__(self, components: int = 100, max_terms: int = 20000) -> None:
        self.components = components
        self.max_terms = max_terms

    @staticmethod
    def documents(X: Any) -> list[str]:
        column = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.ravel(X))
        return column.fillna("").astype(str).tolist()

    def fit(self, X: Any, y: Any = None) -> TextFeatures:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf_ = TfidfVectorizer(
            ngram_range=(1, 2), min_df=2, max_features=self.max_terms, sublinear_tf=True
        )
        try:
            terms = self.tfidf_.fit_transform(self.documents(X))
        except ValueError:  # no term occurs twice: retry keeping every term
            self.tfidf_.set_params(min_df=1)
            terms = self.tfidf_.fit_transform(self.documents(X))
        self.svd_ = None
        if self.components > 0:
            size = max(1, min(self.components, terms.shape[1] - 1, terms.shape[0] - 1))
            self.svd_ = TruncatedSVD(n_components=size, random_state=0).fit(terms)
        self.n_features_in_ = 1
        return self

    def transform(self, X: Any) -> Any:
        terms = self.tfidf_.transform(self.documents(X))
        return terms if self.svd_ is None else self.svd_.transform(terms)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        name = input_features[0] if input_features is not None else "text"
        if self.svd_ is None:
            terms = self.tfidf_.get_feature_names_out()
            return np.asarray([f"{name}_{term}" for term in terms], dtype=object)
        return np.asarray([f"{name}_lsa{i}" for i in range(self.svd_.n_components)], dtype=object)
