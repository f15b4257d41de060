"""A log target: regression families fitted on log(1 + y) when the search offers it (a target
never negative, not a forecast), searched as a hyperparameter, with two defaults of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from components.core.families import (
    DEFAULT_CONFIGURATIONS,
    FAMILIES,
    LOG_TARGET_DEFAULTS,
    fit_size,
    fitted_size,
    make_model,
    suggest_config,
    trial_params,
)
from components.core.study import config_from_trial, create_study, load_study
from components.core.transformers.target import LogTarget
from components.core.transformers.timeseries import TimeSeriesFeatures
from components.features.logic import feature_pipeline
from components.preprocess.logic import build_preprocessor
from components.tune.logic import SearchData, fixed_configurations, run_worker
from components.validate.logic import infer_table_schema
from tests.unit.conftest import PARAMS


def diamonds_parts(frame: pd.DataFrame) -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    schema = infer_table_schema(frame, "price", "regression")
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    return steps, frame.drop(columns=["price"]), frame["price"]


def test_every_family_fits_the_log_and_predicts_in_the_target_unit(
    diamonds_sample: pd.DataFrame,
) -> None:
    """With `log_target` the estimator learns log(1 + price) and the model predicts prices: on
    its own training rows, at a median price within 20% of the rows' and an error less than
    1.6 times the raw-target model's (the test's small configurations underfit the log
    differently; a prediction left in log units would be off by thousands)."""
    steps, X, y = diamonds_parts(diamonds_sample)
    for family in FAMILIES:
        raw = make_model(steps, family, PARAMS[family], "regression", 0).fit(X, y)
        logged = make_model(steps, family, {**PARAMS[family], "log_target": True},
                            "regression", 0).fit(X, y)  # fmt: skip
        estimator = logged[-1]
        assert isinstance(estimator, TransformedTargetRegressor), family
        assert isinstance(estimator.transformer_, LogTarget)
        inner = estimator.regressor_
        log_prediction = inner.predict(logged[:-1].transform(X))
        assert np.abs(np.median(log_prediction) - np.median(np.log1p(y))) < 0.5, family
        error = {name: float(np.sqrt(np.mean((m.predict(X) - y) ** 2)))
                 for name, m in (("raw", raw), ("log", logged))}  # fmt: skip
        assert error["log"] < 1.6 * error["raw"], (family, error)
        assert abs(np.median(logged.predict(X)) / np.median(y) - 1) < 0.2, family
        # log_target False (or absent) is the family's plain estimator, as before
        plain = make_model(steps, family, {**PARAMS[family], "log_target": False}, "regression", 0)
        assert type(plain[-1]) is type(raw[-1]), family


def test_back_from_the_log_within_the_range_fitted_on() -> None:
    """A prediction past the log of the largest (or smallest) target seen is clipped to it:
    a model on the log extrapolates exponentially."""
    step = LogTarget().fit(np.array([[0.0], [9.0], [99.0]]))
    assert np.allclose(step.transform([[9.0]]), np.log(10.0))
    back = step.inverse_transform(np.log1p([[-0.5], [0.0], [9.0], [99.0], [1e6]]))
    assert np.allclose(back.ravel(), [0.0, 0.0, 9.0, 99.0, 99.0])


def test_native_categories_and_fitted_size_reach_inside_the_log_target(
    diamonds_sample: pd.DataFrame,
) -> None:
    """A boosted family inside the target's transform still splits the categoricals natively
    (placed first), and an early-stopped one's fitted size counts the iterations it ran."""
    steps, X, y = diamonds_parts(diamonds_sample)
    params = {**PARAMS["hist_gradient_boosting"], "log_target": True}
    model = make_model(steps, "hist_gradient_boosting", params, "regression", 0).fit(X, y)
    assert list(model[-1].regressor_.is_categorical_[:3]) == [True, True, True]
    stopping = {**PARAMS["lightgbm"], "early_stopping": True, "log_target": True}
    del stopping["n_estimators"]
    model = make_model(steps, "lightgbm", stopping, "regression", 0).fit(X, y)
    ran = model[-1].regressor_.estimator_.best_iteration_
    assert 0 < ran
    ran_size = fit_size("lightgbm", {**stopping, "early_stopping": False, "n_estimators": ran})
    patience = fit_size("lightgbm", {**stopping, "early_stopping": False, "n_estimators": 50})
    assert fitted_size("lightgbm", stopping, model[-1]) == min(
        ran_size + patience, fit_size("lightgbm", stopping)
    )


def search_data(frame: pd.DataFrame, target: str, task: str, steps: Pipeline) -> SearchData:
    return SearchData(X=frame.drop(columns=[target]), y=frame[target], feature_steps=steps,
                      task=task, folds=3, seed=0)  # fmt: skip


def test_offered_for_a_regression_never_negative_and_not_a_forecast(
    diamonds_sample: pd.DataFrame, titanic: pd.DataFrame
) -> None:
    steps, _, _ = diamonds_parts(diamonds_sample)
    assert search_data(diamonds_sample, "price", "regression", steps).log_target
    centred = diamonds_sample.assign(price=diamonds_sample["price"] - 4000)
    assert not search_data(centred, "price", "regression", steps).log_target
    assert not search_data(titanic, "survived", "binary", steps).log_target
    forecast = Pipeline([("timeseries", TimeSeriesFeatures(target="price", time_column="t")),
                         ("preprocess", steps)])  # fmt: skip
    assert not search_data(diamonds_sample, "price", "regression", forecast).log_target


def test_fixed_configurations_say_raw_unless_they_are_the_log_defaults() -> None:
    """Offered, every default and a champion saved before the log target was searched are
    fitted on the raw target, as they were; the log-target defaults follow the defaults.
    Not offered, nothing changes."""
    champion = {"model": "linear", "params": {"C": 2.0}}
    fixed = [params for params, _ in fixed_configurations(champion, 1000, False, True)]
    expected = [("linear", {"C": 2.0}), *DEFAULT_CONFIGURATIONS]
    plain = [trial_params(family, {"log_target": False, **params}) for family, params in expected]
    logged = [trial_params(family, params) for family, params in LOG_TARGET_DEFAULTS]
    assert fixed == plain + logged
    assert all(params["log_target"] for _, params in LOG_TARGET_DEFAULTS)
    fixed = [params for params, _ in fixed_configurations(champion, 1000, False, False)]
    assert fixed == [trial_params(family, params) for family, params in expected]
    # a champion fitted on the log target is warm-started on it
    logged_champion = {"model": "linear", "params": {"C": 2.0, "log_target": True}}
    first, mark = fixed_configurations(logged_champion, 1000, False, True)[0]
    assert (first, mark) == (trial_params("linear", {"C": 2.0, "log_target": True}), "warm_start")


def test_the_search_tries_both_and_the_sampler_searches_it(
    tmp_path: Path, diamonds_sample: pd.DataFrame
) -> None:
    steps, _, _ = diamonds_parts(diamonds_sample)
    data = search_data(diamonds_sample.iloc[:600], "price", "regression", steps)
    fixed = fixed_configurations(None, len(data.X), True, True)
    create_study(tmp_path, "s", "rmse")
    run_worker(load_study(tmp_path), data, len(fixed) + 12, time_budget=300, worker_index=0)
    trials = load_study(tmp_path).trials
    configs = [config_from_trial(t) for t in trials]
    assert all("log_target" in params for _, params in configs)
    assert [params["log_target"] for _, params in configs[: len(fixed)]] == [
        params[next(k for k in params if k.endswith("log_target"))] for params, _ in fixed
    ]
    sampled = {params["log_target"] for _, params in configs[len(fixed) :]}
    assert sampled == {False, True}
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert any(config_from_trial(t)[1]["log_target"] for t in done)
    # not offered (classification), the parameter is never asked
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    assert all("log_target" not in suggest_config(study.ask(), list(FAMILIES))[1]
               for _ in range(20))  # fmt: skip


def test_the_run_summary_names_log_target_models() -> None:
    from pipelines.cli import best_line

    def member(model: str, logged: bool) -> dict:
        return {"model": model, "params": {"C": 1.0, "log_target": logged}, "weight": 0.5}

    best = {"model": "linear", "params": {"C": 1.0, "log_target": True}, "metric": "rmse",
            "cv_score": 10.0, "cv_std": 1.0}  # fmt: skip
    assert best_line(best).startswith("linear on log y  cv rmse 10.0000")
    members = [member("linear", True), member("linear", True), member("linear", False)]
    best["ensemble"] = {"members": members, "cv_score": 9.0, "cv_std": 1.0}
    assert "(linear on log y x2, linear)" in best_line(best)
    assert best_line({**best, "params": {"C": 1.0}, "ensemble": None}).startswith("linear  cv")
