from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from components.common.errors import BadInputError
from components.evaluate.logic import improvement, judge, primary_metric, score
from components.features.logic import feature_pipeline
from components.preprocess.logic import build_preprocessor
from components.promote.logic import champion_pointer, fetch_model, history, load_champion, promote
from components.split.logic import split_frame
from components.train.logic import train_model
from components.train.model_io import load_model, model_input, predict_frame, save_model
from components.validate.logic import validate

BEST_LINEAR = {
    "model": "linear",
    "params": {"C": 1.0},
    "metric": "roc_auc",
    "cv_score": 0.8,
    "cv_std": 0.01,
}


@pytest.fixture()
def trained(titanic: pd.DataFrame, tmp_path: Path):
    schema = validate(titanic, "survived", "auto")
    train, test = split_frame(titanic, "survived", "binary", 0.2)
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    model, card = train_model(train, steps, BEST_LINEAR, schema, seed=0)
    save_model(tmp_path / "model", model, card)
    return model, card, test, tmp_path / "model"


def test_scores_have_the_contract_names(trained) -> None:
    model, card, test, _ = trained
    metrics = score(model, model_input(test, card), test["survived"], "binary")
    assert list(metrics) == ["roc_auc", "accuracy", "f1_macro", "log_loss"]
    assert 0.75 < metrics["roc_auc"] <= 1.0


def test_regression_scores(diamonds_sample: pd.DataFrame) -> None:
    from sklearn.linear_model import LinearRegression

    X = diamonds_sample[["carat", "depth"]]
    model = LinearRegression().fit(X, diamonds_sample["price"])
    metrics = score(model, X, diamonds_sample["price"], "regression")
    assert list(metrics) == ["rmse", "mae", "r2"] and metrics["r2"] > 0.8


def test_first_model_is_promoted_then_a_worse_one_is_kept(trained, tmp_path: Path) -> None:
    model, card, test, model_dir = trained
    metrics = score(model, model_input(test, card), test["survived"], "binary")
    verdict = judge(metrics, None, test, "binary", "survived", 0.0)
    assert verdict.decision == "promote"
    registry = tmp_path / "registry"
    promote(registry, model_dir, "v1", {"verdict": verdict.as_dict()})
    champion = load_champion(registry)
    assert champion is not None and champion.version == "v1"

    worse = Pipeline([("model", DummyClassifier(strategy="prior"))]).fit(
        model_input(test, card), test["survived"]
    )
    worse_metrics = score(worse, model_input(test, card), test["survived"], "binary")
    kept = judge(worse_metrics, champion, test, "binary", "survived", 0.0)
    assert kept.decision == "keep"
    assert kept.delta is not None and kept.delta < 0
    assert kept.champion == pytest.approx(metrics["roc_auc"])


def test_equal_model_is_not_promoted_and_margin_is_respected(trained, tmp_path: Path) -> None:
    model, card, test, model_dir = trained
    registry = tmp_path / "registry"
    promote(registry, model_dir, "v1", {"verdict": {"metric": "roc_auc", "challenger": 0.8}})
    metrics = score(model, model_input(test, card), test["survived"], "binary")
    same = judge(metrics, load_champion(registry), test, "binary", "survived", 0.0)
    assert same.decision == "keep" and same.delta == 0.0
    with pytest.raises(BadInputError, match="min_improvement"):
        judge(metrics, None, test, "binary", "survived", -0.1)


def test_champion_for_another_target_is_not_replaced(trained, tmp_path: Path) -> None:
    _model, _card, test, model_dir = trained
    registry = tmp_path / "registry"
    promote(registry, model_dir, "v1", {"verdict": {"metric": "roc_auc", "challenger": 0.8}})
    verdict = judge({"rmse": 1.0}, load_champion(registry), test, "regression", "age", 0.0)
    assert verdict.decision == "keep" and "use another --registry" in verdict.reason


def test_promotion_switches_pointer_last_and_keeps_history(trained, tmp_path: Path) -> None:
    _, _, _, model_dir = trained
    registry = tmp_path / "registry"
    promote(registry, model_dir, "v1", {"verdict": {"metric": "roc_auc", "challenger": 0.8}})
    promote(
        registry,
        model_dir,
        "v2",
        {"verdict": {"metric": "roc_auc", "challenger": 0.9, "champion_version": "v1"}},
    )
    pointer = champion_pointer(registry)
    assert pointer is not None and pointer["version"] == "v2" and pointer["previous"] == "v1"
    assert (registry / "versions" / "v1" / "model" / "model.joblib").is_file()
    assert [entry["version"] for entry in history(registry)] == ["v1", "v2"]
    assert not list(registry.rglob(".*"))  # no temporary files left behind
    assert (registry / "versions" / "v2" / "version.json").is_file()
    assert (
        "# survived (binary) — version v2"
        in (registry / "versions" / "v2" / "MODEL_CARD.md").read_text()
    )
    assert fetch_model(str(registry / "champion")).version == "v2"


def test_failed_copy_leaves_the_registry_untouched(trained, tmp_path: Path) -> None:
    _, _, _, model_dir = trained
    registry = tmp_path / "registry"
    promote(registry, model_dir, "v1", {"verdict": {"metric": "roc_auc", "challenger": 0.8}})
    before = (registry / "champion.json").read_bytes()
    with pytest.raises(FileNotFoundError):
        promote(
            registry,
            tmp_path / "missing",
            "v2",
            {"verdict": {"metric": "roc_auc", "challenger": 0.9}},
        )
    assert (registry / "champion.json").read_bytes() == before
    assert not (registry / "versions" / "v2").exists()


def test_saved_model_predicts_like_the_fitted_one(trained, titanic: pd.DataFrame) -> None:
    model, card, test, model_dir = trained
    loaded = load_model(model_dir)
    shuffled = test.sample(frac=1.0, random_state=3).assign(unused_column=1)
    out = predict_frame(loaded.pipeline, model_input(shuffled, loaded.card), "binary")
    expected = model.predict_proba(model_input(shuffled, card))
    assert list(out.columns) == ["prediction", "proba_died", "proba_survived"]
    assert (out.index == shuffled.index).all()
    pd.testing.assert_series_equal(
        out["proba_survived"],
        pd.Series(expected[:, 1], index=shuffled.index, name="proba_survived"),
    )


def test_missing_input_column_is_bad_input(trained) -> None:
    _, card, test, _ = trained
    with pytest.raises(BadInputError, match=r"lacks 1 column.*'age'"):
        model_input(test.drop(columns=["age"]), card)


def test_metric_direction() -> None:
    assert primary_metric("regression") == "rmse" and primary_metric("multiclass") == "roc_auc"
    assert improvement("rmse", 1.0, 2.0) == 1.0 and improvement(
        "roc_auc", 0.9, 0.8
    ) == pytest.approx(0.1)
