"""Features: what follows preprocessing inside the model. Pass-through by default; for wide
data a variance filter, PCA, truncated SVD or a model-based selection of columns. Each is fitted
on the training rows only (inside every cross-validation fold of the search, too)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import SelectFromModel, VarianceThreshold
from sklearn.pipeline import Pipeline

from components.common.errors import BadInputError
from components.common.settings import DEFAULTS, TASKS, RunConfig, check_setting
from components.core.transformers.latent import LatentComponents
from components.core.transformers.timeseries import model_inputs

__all__ = ["fit_feature_steps"]

# Trees of the ensemble whose impurity importances pick the columns `select` keeps.
SELECTION_TREES = 100


def selection_model(task: str, seed: int) -> SelectFromModel:
    """Keep the columns whose importance in a seeded extremely-randomised-trees ensemble is
    above the mean importance. Trees judge every column on any scale and any kind of
    relation; on breast_cancer widened by 300 noise columns they kept 24 of the 30 real ones
    and no noise column (an L1-logistic kept 58 noise columns at C=1, and 6 real at C=0.1)."""
    if task not in TASKS:
        raise BadInputError(
            f"features 'select' needs the task, one of {', '.join(TASKS)}; got {task!r}"
        )
    trees = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
    return SelectFromModel(
        # sqrt(columns) candidates per split, for regression too: wide data stays fast
        trees(n_estimators=SELECTION_TREES, max_features="sqrt", n_jobs=1, random_state=seed),
        threshold="mean",
    )


def build_features(
    method: str,
    pca_variance: float,
    seed: int,
    *,
    task: str = DEFAULTS.task,
    svd_components: int = DEFAULTS.svd_components,
    variance_threshold: float = DEFAULTS.variance_threshold,
) -> Any:
    """The unfitted features step of `method`:

    - none: 'passthrough';
    - variance: drop columns whose variance on the training rows is at most
      `variance_threshold` (0: the constant ones);
    - pca: a seeded PCA keeping `pca_variance` of the variance (dense input);
    - svd: seeded truncated SVD to at most `svd_components` dimensions (sparse input too);
    - select: the columns a seeded tree ensemble finds more important than average (needs
      the resolved `task`).
    """
    check_setting("features", method)
    if method == "none":
        return "passthrough"
    if method == "variance":
        check_setting("variance_threshold", variance_threshold)
        return VarianceThreshold(threshold=variance_threshold)
    if method == "svd":
        check_setting("svd_components", svd_components)
        return LatentComponents(n_components=svd_components, random_state=seed)
    if method == "select":
        return selection_model(task, seed)
    check_setting("pca_variance", pca_variance)
    return PCA(n_components=pca_variance, svd_solver="full", random_state=seed)


def fit_features(steps: Pipeline, X: Any, y: Any) -> Any:
    """Fit the feature steps on the training rows (the target is what `select` ranks columns
    by) and return what they make of them."""
    try:
        return steps.fit_transform(X, y)
    except ValueError as error:
        features = steps.named_steps.get("features")
        if isinstance(features, VarianceThreshold):
            raise BadInputError(
                f"--variance-threshold {features.threshold!r} leaves no column: every "
                "preprocessed column's variance on the training rows is at or below it"
            ) from error
        raise


def feature_pipeline(preprocessor: Any, features: Any) -> Pipeline:
    """The model's front half: preprocessing then feature extraction (after the forecasting
    step, when the preprocess stage put one in front of its transformer)."""
    if isinstance(preprocessor, Pipeline) and "timeseries" in preprocessor.named_steps:
        return Pipeline([*preprocessor.steps, ("features", features)])
    return Pipeline([("preprocess", preprocessor), ("features", features)])


def fit_feature_steps(
    train: pd.DataFrame, preprocessor: Any, settings: RunConfig
) -> tuple[Pipeline, dict[str, Any]]:
    """The features stage: the Pipeline [preprocess, features] fitted on the training rows
    (the search and train clone it, so it is refitted inside every fold), with the facts the
    run reports."""
    s = settings
    chosen = build_features(
        s.features,
        s.pca_variance,
        s.seed,
        task=s.task,
        svd_components=s.svd_components,
        variance_threshold=s.variance_threshold,
    )
    steps = feature_pipeline(preprocessor, chosen)
    out = fit_features(steps, model_inputs(train, s.target, steps), train[s.target])
    facts: dict[str, Any] = {"method": s.features, "features_out": int(out.shape[1])}
    if s.features != "none":  # the width it reduced, for the record
        facts["features_in"] = int(steps.named_steps["features"].n_features_in_)
    return steps, facts
