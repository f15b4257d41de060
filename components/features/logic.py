"""Features: what follows preprocessing inside the model (pass-through by default, or PCA)."""

from __future__ import annotations

from typing import Any

from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline

from components.common.config import FEATURE_CHOICES
from components.common.errors import BadInputError


def build_features(method: str, pca_variance: float, seed: int) -> Any:
    """'passthrough' or a seeded PCA keeping `pca_variance` of the variance."""
    if method not in FEATURE_CHOICES:
        raise BadInputError(f"features must be one of {FEATURE_CHOICES}; got {method!r}")
    if method == "none":
        return "passthrough"
    if not 0.0 < pca_variance < 1.0:
        raise BadInputError(f"pca_variance must be between 0 and 1; got {pca_variance!r}")
    return PCA(n_components=pca_variance, svd_solver="full", random_state=seed)


def feature_pipeline(preprocessor: Any, features: Any) -> Pipeline:
    """The model's front half: preprocessing then feature extraction."""
    return Pipeline([("preprocess", preprocessor), ("features", features)])
