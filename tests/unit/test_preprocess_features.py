from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.common.errors import BadInputError
from components.core.transformers.outliers import OutlierClipper
from components.features.logic import build_features, feature_pipeline
from components.preprocess.logic import build_preprocessor
from components.split.logic import split_frame
from components.validate.logic import infer_table_schema


@pytest.fixture()
def titanic_split(titanic: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    schema = infer_table_schema(titanic, "survived", "auto")
    train, test = split_frame(titanic, "survived", "binary", 0.2)
    return train, test, schema


def test_preprocessor_imputes_encodes_and_scales(titanic_split) -> None:
    train, test, schema = titanic_split
    transformer = build_preprocessor(schema)
    X_train = transformer.fit_transform(train.drop(columns=["survived"]))
    X_test = transformer.transform(test.drop(columns=["survived"]))
    assert not np.isnan(X_train).any() and not np.isnan(X_test).any()
    names = list(transformer.get_feature_names_out())
    assert any("missingindicator_age" in n for n in names), names
    assert any(n.startswith("categorical__pclass_") for n in names)
    numeric = [i for i, n in enumerate(names) if n == "numeric__sibsp"]
    assert abs(X_train[:, numeric].mean()) < 1e-9  # scaled with training statistics


def test_preprocessor_learns_its_statistics_from_train_only(titanic_split) -> None:
    train, test, schema = titanic_split
    fitted = build_preprocessor(schema).fit(train.drop(columns=["survived"]))
    numeric = fitted.named_transformers_["numeric"]
    columns = fitted.transformers_[0][2]
    age, sibsp = columns.index("age"), columns.index("sibsp")
    clipper = numeric.named_steps["clip"]
    clipped_age = train["age"].clip(clipper.lower_[age], clipper.upper_[age])
    assert numeric.named_steps["impute"].statistics_[age] == pytest.approx(clipped_age.median())
    clipped = train["sibsp"].clip(clipper.lower_[sibsp], clipper.upper_[sibsp])
    assert numeric.named_steps["scale"].mean_[sibsp] == pytest.approx(clipped.mean())
    everything = pd.concat([train, test])["sibsp"].clip(
        clipper.lower_[sibsp], clipper.upper_[sibsp]
    )
    assert everything.mean() != pytest.approx(clipped.mean())  # the test rows would change it


def test_unseen_category_at_predict_time_does_not_fail(titanic_split) -> None:
    train, test, schema = titanic_split
    transformer = build_preprocessor(schema).fit(train.drop(columns=["survived"]))
    out = transformer.transform(test.drop(columns=["survived"]).assign(pclass="4th"))
    assert out.shape[0] == len(test)


def test_sparse_and_indicator_columns_survive_clipping(titanic_split) -> None:
    train, _, schema = titanic_split
    transformer = build_preprocessor(schema).fit(train.drop(columns=["survived"]))
    out = transformer.transform(train.drop(columns=["survived"]))
    names = list(transformer.get_feature_names_out())
    for name in ("numeric__parch", "numeric__missingindicator_age"):
        assert len(np.unique(out[:, names.index(name)])) > 1, name


def test_outlier_clipper_clips_to_far_out_fences() -> None:
    values = np.array([[1.0], [2.0], [3.0], [4.0], [1000.0]])
    clipper = OutlierClipper(k=3.0).fit(values)
    q1, q3 = 2.0, 4.0
    assert clipper.transform(values).max() == pytest.approx(q3 + 3 * (q3 - q1))
    assert clipper.transform(np.array([[3.0]]))[0, 0] == 3.0


def test_pca_features_reduce_breast_cancer(breast_cancer: pd.DataFrame) -> None:
    schema = infer_table_schema(breast_cancer, "target", "auto")
    steps = feature_pipeline(build_preprocessor(schema), build_features("pca", 0.9, seed=0))
    out = steps.fit_transform(breast_cancer.drop(columns=["target"]))
    assert 1 < out.shape[1] < 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outliers": "winsorize"}, "outliers must be one of"),
        ({"scaling": "minmax"}, "scaling must be one of"),
        ({"max_categories": 1}, "--max-categories must be at least 2; got 1"),
    ],
)
def test_bad_preprocess_options(titanic_split, kwargs, message) -> None:
    with pytest.raises(BadInputError, match=message):
        build_preprocessor(titanic_split[2], **kwargs)


def test_bad_feature_method() -> None:
    with pytest.raises(BadInputError, match="features must be one of"):
        build_features("umap", 0.9, seed=0)
