"""Preprocess: impute, clip outliers, scale and encode, as an scikit-learn transformer.

The transformer is built from the schema's column roles and fitted on the training split only;
the same (unfitted) blueprint is cloned inside every cross-validation fold of the search and into
the final model, so no statistic of held-out rows ever reaches a fitted step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)

from components.common.settings import DEFAULTS, RunConfig, check_settings
from components.core.schema import TableSchema, feature_columns, natural_order
from components.core.transformers.calendar import CalendarFeatures
from components.core.transformers.categories import as_category_strings
from components.core.transformers.outliers import OutlierClipper
from components.core.transformers.text import TextFeatures, check_text_options
from components.core.transformers.timeseries import model_inputs, with_forecasting

__all__ = ["fit_preprocessing"]

# A categorical column with more distinct values than this (and than --max-categories) is
# target-encoded: one column of cross-fitted target means instead of a one-hot block whose rare
# values all land in one "infrequent" column.
HIGH_CARDINALITY = 50


def categorical_columns(schema: TableSchema, max_categories: int) -> tuple[list[str], list[str]]:
    """(few-valued, many-valued) categorical columns; the series keys of a forecast stay
    few-valued (one-hot or native codes), whatever their count."""
    limit = max(max_categories, HIGH_CARDINALITY)
    forecast = schema.get("timeseries")
    keys = set(forecast["series_keys"]) if forecast else set()
    few: list[str] = []
    many: list[str] = []
    for column in schema["columns"]:
        if column["role"] == "categorical":
            wide = column.get("distinct", 0) > limit and column["name"] not in keys
            (many if wide else few).append(column["name"])
    return few, many


def target_encoder(task: str) -> TargetEncoder:
    """Cross-fitted (5 seeded folds, stratified for classes) target means per category; for
    multiclass, one column per class."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "regression":
        return TargetEncoder(target_type="continuous", cv=KFold(5, shuffle=True, random_state=0))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return TargetEncoder(target_type="binary" if task == "binary" else "multiclass", cv=folds)


def ordinal_encoder(schema: TableSchema) -> tuple[OrdinalEncoder, list[str]]:
    """Ordinal columns as their level's position (the schema's `order`, else the natural
    order of the levels seen); an unseen level is missing, then imputed."""
    columns = [c for c in schema["columns"] if c["role"] == "ordinal"]
    known = all(c.get("order") or c.get("categories") for c in columns)  # else: sorted as seen
    categories: Any = (
        [[str(v) for v in (c.get("order") or natural_order(c["categories"]))] for c in columns]
        if columns and known
        else "auto"
    )
    encoder = OrdinalEncoder(
        categories=categories,
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        dtype=np.float64,
    )
    return encoder, [c["name"] for c in columns]


def datetime_columns(schema: TableSchema) -> list[str]:
    """Date columns that become calendar features (a forecast's time column has its own)."""
    forecast = schema.get("timeseries")
    time_column = forecast["time_column"] if forecast else None
    return [c for c in feature_columns(schema, "datetime") if c != time_column]


def numeric_columns(schema: TableSchema) -> list[str]:
    """The schema's numeric columns; in a forecast, without the time column (it becomes
    calendar terms) and with the lag and window features the forecasting step adds."""
    from components.core.transformers.timeseries import from_settings

    numeric = feature_columns(schema, "numeric")
    settings = schema.get("timeseries")
    if not settings:
        return numeric
    added = from_settings(settings, schema["target"]).feature_names()
    return [c for c in numeric if c != settings["time_column"]] + added


def build_preprocessor(
    schema: TableSchema,
    outliers: str = DEFAULTS.outliers,
    scaling: str = DEFAULTS.scaling,
    max_categories: int = DEFAULTS.max_categories,
    text_vectorizer: str = DEFAULTS.text_vectorizer,
    text_word_ngrams: int = DEFAULTS.text_word_ngrams,
    text_char_ngrams: int = DEFAULTS.text_char_ngrams,
    text_max_terms: int = DEFAULTS.text_max_terms,
    text_components: int = DEFAULTS.text_components,
) -> ColumnTransformer:
    """An unfitted transformer for the schema's numeric, categorical and text columns (each
    text column through its own TextFeatures with the `text_*` options)."""
    check_settings(
        {
            "outliers": outliers,
            "scaling": scaling,
            "max_categories": max_categories,
            "text_components": text_components,
        }
    )
    check_text_options(text_vectorizer, text_word_ngrams, text_char_ngrams, text_max_terms)
    # Clip before imputing: the fences come from observed values only, and the missing-value
    # indicators the imputer adds are never clipped.
    numeric_steps: list[tuple[str, Any]] = (
        [("clip", OutlierClipper())] if outliers == "clip" else []
    )
    numeric_steps.append(
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))
    )
    if scaling != "none":
        numeric_steps.append(
            ("scale", StandardScaler() if scaling == "standard" else RobustScaler())
        )
    categorical = Pipeline(
        [
            (
                "as_strings",
                FunctionTransformer(as_category_strings, feature_names_out="one-to-one"),
            ),
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=max_categories,
                    min_frequency=5,
                    sparse_output=False,
                ),
            ),
        ]
    )
    text_features = TextFeatures(
        components=text_components,
        max_terms=text_max_terms,
        vectorizer=text_vectorizer,
        word_ngrams=text_word_ngrams,
        char_ngrams=text_char_ngrams,
    )
    text = [
        (f"text_{name}", clone(text_features), [name]) for name in feature_columns(schema, "text")
    ]
    few, many = categorical_columns(schema, max_categories)
    ordinal, ordinal_names = ordinal_encoder(schema)

    def then_scaled(*steps: tuple[str, Any]) -> Pipeline:
        """Steps, then the median imputation and the scaling the numeric columns get."""
        tail: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if scaling != "none":
            tail.append(("scale", StandardScaler() if scaling == "standard" else RobustScaler()))
        return Pipeline([*steps, *tail])

    def as_strings() -> tuple[str, Any]:
        return (
            "as_strings",
            FunctionTransformer(as_category_strings, feature_names_out="one-to-one"),
        )

    parts: list[tuple[str, Any, list[str]]] = [
        ("numeric", Pipeline(numeric_steps), numeric_columns(schema)),
        ("categorical", categorical, few),
    ]
    if many:  # cross-fitted on the training rows: a row's own target never encodes it
        encoded = target_encoder(schema["task"])
        parts.append(("high_cardinality", then_scaled(as_strings(), ("encode", encoded)), many))
    if ordinal_names:
        parts.append(("ordinal", then_scaled(as_strings(), ("encode", ordinal)), ordinal_names))
    if dates := datetime_columns(schema):
        parts.append(("datetime", then_scaled(("calendar", CalendarFeatures())), dates))
    return ColumnTransformer(
        [*parts, *text],
        remainder="drop",
        verbose_feature_names_out=True,
        # sparse whenever a part is (sparse TF-IDF for linear models): never densified
        sparse_threshold=1.0,
    )


def fit_preprocessing(
    train: pd.DataFrame, table_schema: TableSchema, settings: RunConfig
) -> tuple[Any, dict[str, int]]:
    """The preprocess stage: the imputing, clipping, scaling and encoding transformer of the
    schema's columns (behind the forecasting step for a forecast), fitted on the training
    rows; with the facts the run reports."""
    s, target = settings, settings.target
    columns = build_preprocessor(
        table_schema,
        s.outliers,
        s.scaling,
        s.max_categories,
        text_vectorizer=s.text_vectorizer,
        text_word_ngrams=s.text_word_ngrams,
        text_char_ngrams=s.text_char_ngrams,
        text_max_terms=s.text_max_terms,
        text_components=s.text_components,
    )
    transformer = with_forecasting(table_schema, columns)
    transformed = transformer.fit_transform(model_inputs(train, target, transformer), train[target])
    facts = {
        "rows": len(train),
        "features_out": int(transformed.shape[1]),
        "missing_values_imputed": int(train.drop(columns=[target]).isna().sum().sum()),
    }
    return transformer, facts
