"""Model families: the search space of each, and the seeded estimator and whole Pipeline it
builds (the same for a search trial and for the final model)."""

from __future__ import annotations

from typing import Any

import optuna
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from components.common.errors import BadInputError
from components.core.study import param_prefix
from components.core.transformers.categories import (
    CatBoostCategories,
    NativeCategories,
    category_codes,
)
from components.core.transformers.target import LogTarget
from components.core.transformers.timeseries import SeasonalResidual, forecasting_step

# k-nearest neighbours and kernel SVMs scale badly with rows; offered only below these sizes.
KNN_MAX_ROWS = 20_000


SVM_MAX_ROWS = 3_000


FAMILIES = (
    "linear",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "lightgbm",
    "catboost",
    "knn",
    "svm",
)
# The families whose trees split natively on categorical codes.
NATIVE_CATEGORICAL = ("hist_gradient_boosting", "lightgbm", "catboost")
# The tree families: they split on the order of a column's values, so clipping outliers
# (--outliers clip) only merges values they could tell apart; they get the numeric columns
# unclipped (suit_family).
TREES = ("random_forest", "extra_trees", *NATIVE_CATEGORICAL)


# Histogram gradient boosting's library defaults, as searched parameters.
HGB_DEFAULT = {
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 1e-6,
}


# LightGBM's library defaults, as searched parameters.
LIGHTGBM_DEFAULT = {
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 20,
    "colsample_bytree": 1.0,
    "reg_lambda": 1e-3,
    "extra_trees": False,
}
LIGHTGBM_STOPPING = {
    **LIGHTGBM_DEFAULT,
    "early_stopping": True,
    "learning_rate": 0.05,
    "colsample_bytree": 0.8,
}


# Tried first (after the champion's configuration), cheapest first: the library defaults of
# the families that fit fast at any size (then ENSEMBLE_DEFAULTS). TPE's random
# start-up trials otherwise spend a short budget on forests, and the search may end below what
# a default model scores. They are never pruned (components/tune/logic.py).
DEFAULT_CONFIGURATIONS = (
    ("linear", {"C": 1.0}),
    ("lightgbm", {**LIGHTGBM_DEFAULT, "early_stopping": False, "n_estimators": 100}),
    ("hist_gradient_boosting", {**HGB_DEFAULT, "early_stopping": True}),
    # scikit-learn's own default below 10,000 rows: 100 iterations, no early stopping (see
    # hgb_estimator)
    ("hist_gradient_boosting", {**HGB_DEFAULT, "early_stopping": False, "max_iter": 100}),
    # LightGBM as AutoGluon's default fits it: a lower rate, trees added until 50 rounds
    # without gain on held-out rows, four fifths of the columns per tree (see lightgbm_model);
    # then the same with random split thresholds, as AutoGluon's first model
    ("lightgbm", LIGHTGBM_STOPPING),
    ("lightgbm", {**LIGHTGBM_STOPPING, "extra_trees": True}),
    # CatBoost at its own default depth, L2 and learning rate (which it sets from the rows and
    # iterations), with 300 of its 1,000 default iterations: on four small tables outside the
    # benchmark the automatic rate scored best or within 0.001 of fixed rates of 0.05 and 0.1
    # on three
    (
        "catboost",
        {
            "iterations": 300,
            "depth": 6,
            "l2_leaf_reg": 3.0,
            "auto_learning_rate": True,
            "early_stopping": False,
        },
    ),
)

# CatBoost's default configuration on training splits of LARGE_DEFAULT_ROWS rows or more, in
# place of the one above: early-stopped on held-out rows (up to 2,000 iterations) at a rate of
# 0.1, as AutoGluon fits it (at 0.05). One fit on 75% of four public tables outside the
# benchmark (one thread; RMSE on the other 25%) against the 300 iterations at the automatic
# rate: modeldata hotel_rates (11,551 rows) 12.15 against 15.47 (LightGBM early-stopped:
# 12.50), ggplot2movies 0.7216 against 0.7443 (0.7258), AER CPS1988 392.5 against 392.7,
# stevedata gss_wages 24,127 against 24,166; at 1.0-4.3 times the seconds. Below that size
# the automatic rate scored best (DEFAULT_CONFIGURATIONS).
CATBOOST_STOPPING = {"depth": 6, "l2_leaf_reg": 3.0, "learning_rate": 0.1, "early_stopping": True}
LARGE_DEFAULT_ROWS = 10_000

# Tried after the defaults when the search keeps out-of-fold predictions for an ensemble (no
# text, no forecast) and the training split has at most ENSEMBLE_DEFAULT_MAX_ROWS rows: deep
# extra trees, rarely the best alone, but they err unlike boosted trees, which is what an
# ensemble needs, and the search's own forest trials are mostly pruned before they keep
# predictions. On 40,455 diamonds (75/25 split): 545 RMSE alone, histogram gradient boosting
# 540, their average 530 (AutoGluon's ensembles hold a forest for the same reason). Fifty trees
# with leaves of at least three rows: 43 MB fitted there (100 trees with single-row leaves:
# 228 MB); its size grows with the rows, hence the limit.
ENSEMBLE_DEFAULTS = (
    (
        "extra_trees",
        {"n_estimators": 50, "max_depth": 20, "min_samples_leaf": 3, "max_features": 0.5},
    ),
)
ENSEMBLE_DEFAULT_MAX_ROWS = 50_000

# Tried after the defaults when the search offers a log target (`log_target`: a regression
# whose target is never negative, not a forecast): the linear model and 100 iterations of
# histogram gradient boosting fitted on log(1 + y), the log members an ensemble drew on most
# in make_estimator's measurement.
LOG_TARGET_DEFAULTS = (
    ("linear", {"C": 1.0, "log_target": True}),
    (
        "hist_gradient_boosting",
        {**HGB_DEFAULT, "early_stopping": False, "max_iter": 100, "log_target": True},
    ),
)


def families_for(rows: int) -> list[str]:
    """Model families worth searching for a training split of `rows` rows: every family, but
    k-nearest neighbours and SVMs only on tables small enough for them."""
    limits = {"knn": KNN_MAX_ROWS, "svm": SVM_MAX_ROWS}
    return [f for f in FAMILIES if rows <= limits.get(f, rows)]


def suggest_config(
    trial: optuna.Trial, families: list[str], log_target: bool = False
) -> tuple[str, dict[str, Any]]:
    """Sample a family, then its hyperparameters (names are prefixed to keep spaces apart),
    and, when `log_target` is offered, whether it is fitted on log(1 + y)."""
    family, params = suggest_family(trial, families)
    if log_target:
        name = f"{param_prefix(family)}log_target"
        params["log_target"] = trial.suggest_categorical(name, [False, True])
    return family, params


def suggest_family(trial: optuna.Trial, families: list[str]) -> tuple[str, dict[str, Any]]:
    """Sample a family, then its own hyperparameters."""
    family = trial.suggest_categorical("model", families)
    params: dict[str, Any]
    if family == "linear":
        params = {"C": trial.suggest_float("linear_C", 1e-3, 1e3, log=True)}
    elif family in ("random_forest", "extra_trees"):
        params = {
            "n_estimators": trial.suggest_int(f"{family}_n_estimators", 50, 300, step=50),
            "max_depth": trial.suggest_int(f"{family}_max_depth", 3, 20),
            "min_samples_leaf": trial.suggest_int(f"{family}_min_samples_leaf", 1, 10),
            "max_features": trial.suggest_float(f"{family}_max_features", 0.2, 1.0),
        }
    elif family == "hist_gradient_boosting":
        params = {
            "learning_rate": trial.suggest_float("hgb_learning_rate", 0.02, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("hgb_max_leaf_nodes", 8, 64, log=True),
            "min_samples_leaf": trial.suggest_int("hgb_min_samples_leaf", 5, 50, log=True),
            "l2_regularization": trial.suggest_float("hgb_l2_regularization", 1e-6, 10.0, log=True),
            "early_stopping": trial.suggest_categorical("hgb_early_stopping", [True, False]),
        }
        if not params["early_stopping"]:
            params["max_iter"] = trial.suggest_int("hgb_max_iter", 50, HGB_MAX_ITER, log=True)
    elif family == "lightgbm":
        params = {
            "learning_rate": trial.suggest_float("lightgbm_learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("lightgbm_num_leaves", 4, 256, log=True),
            "min_child_samples": trial.suggest_int("lightgbm_min_child_samples", 2, 100, log=True),
            "colsample_bytree": trial.suggest_float("lightgbm_colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("lightgbm_reg_lambda", 1e-3, 10.0, log=True),
            "extra_trees": trial.suggest_categorical("lightgbm_extra_trees", [True, False]),
            "early_stopping": trial.suggest_categorical("lightgbm_early_stopping", [True, False]),
        }
        if not params["early_stopping"]:
            trees = trial.suggest_int("lightgbm_n_estimators", 20, LIGHTGBM_MAX_TREES, log=True)
            params["n_estimators"] = trees
    elif family == "catboost":
        params = {
            "depth": trial.suggest_int("catboost_depth", 4, 8),
            "l2_leaf_reg": trial.suggest_float("catboost_l2_leaf_reg", 1.0, 30.0, log=True),
            "early_stopping": trial.suggest_categorical("catboost_early_stopping", [True, False]),
        }
        if params["early_stopping"]:
            # a rate of its own: CatBoost's automatic one is set for the iteration cap, which
            # early stopping does not reach
            params["learning_rate"] = trial.suggest_float(
                "catboost_learning_rate", 0.01, 0.3, log=True
            )
            return family, params
        params["iterations"] = trial.suggest_int("catboost_iterations", 100, 1000, log=True)
        params["auto_learning_rate"] = trial.suggest_categorical(
            "catboost_auto_learning_rate", [True, False]
        )
        if not params["auto_learning_rate"]:
            params["learning_rate"] = trial.suggest_float(
                "catboost_learning_rate", 0.01, 0.3, log=True
            )
    elif family == "knn":
        params = {
            "n_neighbors": trial.suggest_int("knn_n_neighbors", 3, 50, log=True),
            "weights": trial.suggest_categorical("knn_weights", ["uniform", "distance"]),
        }
    elif family == "svm":
        params = {
            "C": trial.suggest_float("svm_C", 1e-2, 1e2, log=True),
            "gamma": trial.suggest_float("svm_gamma", 1e-4, 1.0, log=True),
        }
    else:  # pragma: no cover - families come from FAMILIES
        raise ValueError(f"unknown model family {family!r}")
    return family, params


def make_estimator(
    family: str, params: dict[str, Any], task: str, seed: int, jobs: int | None = 1
) -> Any:
    """A seeded scikit-learn estimator of the family for the task; with `log_target` (a
    regression whose target is never negative), fitted on log(1 + y) and predicting
    exp(prediction) - 1 within the training target's range (LogTarget). Measured outside the
    product on eight public regressions (75/25 splits, three seeds, two on the 8,000-row
    samples): greedy ensemble selection over 5-fold out-of-fold predictions of the default
    configurations drew on log-target members on every table, and raw + log members against
    raw ones alone scored RMSE -0.9% on Ames, -0.7% on CPS1985, -4.5% on ggplot2 mpg, -2.6%
    on 8,000 diamonds (-0.5% on all 53,940), within 0.1% on AER HousePrices, Boston, ISLR
    Wage and 8,000 of AER CPS1988. A log target alone was better on about half of them and
    worse on the rest: so it is searched, not imposed."""
    settings = {key: value for key, value in params.items() if key != "log_target"}
    estimator = family_estimator(family, settings, task, seed, jobs)
    if task == "regression" and params.get("log_target"):
        return TransformedTargetRegressor(
            regressor=estimator, transformer=LogTarget(), check_inverse=False
        )
    return estimator


def family_estimator(
    family: str, params: dict[str, Any], task: str, seed: int, jobs: int | None = 1
) -> Any:
    """The family's estimator (make_estimator without the target's transform). `jobs`: a
    forest's n_jobs (see make_model)."""
    classify = task != "regression"
    if family == "linear":
        if classify:
            return LogisticRegression(C=params["C"], max_iter=2000, random_state=seed)
        return standardised_target(Ridge(alpha=1.0 / params["C"], random_state=seed))
    if family in ("random_forest", "extra_trees"):
        forest = {
            ("random_forest", True): RandomForestClassifier,
            ("random_forest", False): RandomForestRegressor,
            ("extra_trees", True): ExtraTreesClassifier,
            ("extra_trees", False): ExtraTreesRegressor,
        }[(family, classify)]
        return forest(**params, n_jobs=jobs, random_state=seed)
    if family == "hist_gradient_boosting":
        return hgb_estimator(params, classify, seed)
    if family == "lightgbm":
        return lightgbm_model(params, classify, seed)
    if family == "catboost":
        return catboost_model(params, classify, seed)
    if family == "knn":
        return (KNeighborsClassifier if classify else KNeighborsRegressor)(**params)
    if family == "svm":
        if classify:
            # Platt-scaled probabilities, as SVC(probability=True) gave before its deprecation.
            return CalibratedClassifierCV(
                SVC(**params, random_state=seed), method="sigmoid", cv=3, ensemble=False
            )
        # On a raw target (prices in thousands) SVR's solver crawls; on a standardised one the
        # same C and gamma mean the same thing whatever the target's unit.
        return standardised_target(SVR(C=params["C"], gamma=params["gamma"], cache_size=500))
    raise BadInputError(f"model family must be one of {FAMILIES}; got {family!r}")


# The boosted families searched with and without early stopping: their iterations parameter,
# searched when early stopping is off, and the iterations early stopping may run to (it ends
# them sooner). LightGBM's cap is the top of its searched trees, so that a model file is no
# larger either way (a multiclass model holds a tree per class and round).
HGB_MAX_ITER = 500
LIGHTGBM_MAX_TREES = 1000
EARLY_STOPPING = {
    "hist_gradient_boosting": ("max_iter", 300),
    "lightgbm": ("n_estimators", LIGHTGBM_MAX_TREES),
    "catboost": ("iterations", 2000),
}
# LightGBM (and CatBoost) with early stopping stop after this many rounds without gain on their
# held-out rows.
LIGHTGBM_PATIENCE = 50


def hgb_estimator(params: dict[str, Any], classify: bool, seed: int) -> Any:
    """Histogram gradient boosting, with or without early stopping (`early_stopping`; a
    configuration saved before it was searched had it on). Early stopping holds out 10% of the
    rows and stops after 10 iterations without gain: that suits ROC-AUC on small tables, but
    on regression it often stops early and fits on fewer rows. Measured with the library
    defaults on 75/25 splits (six seeds): off with 100 iterations, RMSE -2.2% on Ames, -3.5%
    on Boston, -1.7% on AER HousePrices, +1.9% on ISLR Wage, +3.8% on CPS1985; ROC-AUC -0.013
    on Titanic, -0.011 on Chile. On 40,455 diamonds, off with 300 iterations: 540 against 548.
    So both are searched, with the iterations when it is off."""
    boosting = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    settings = searched_settings("hist_gradient_boosting", params)
    return boosting(
        **settings,
        max_iter=iterations("hist_gradient_boosting", params),
        early_stopping=stops_early("hist_gradient_boosting", params),
        random_state=seed,
    )


def lightgbm_model(params: dict[str, Any], classify: bool, seed: int) -> NativeCategories:
    """LightGBM, with or without early stopping (`early_stopping`; a configuration saved
    before it was searched had it off): with it, 10% of the rows are held out and trees are
    added until LIGHTGBM_PATIENCE rounds bring no gain on them (NativeCategories), as
    AutoGluon fits LightGBM. Measured against LightGBM's defaults (100 trees at 0.1) on 75/25
    splits (four seeds; two on the two largest), with a rate of 0.05 and 0.8 of the columns:
    ROC-AUC +0.010 on Titanic, +0.022 on AER HMDA, +0.013 on AER SwissLabor, +0.012 on Chile,
    +0.014 on AER SmokeBan (10,000 rows); RMSE -1.7% on diamonds, -1.5% on ISLR Wage, -5.9% on
    CPS1985, -0.4% on AER CPS1988 (28,155 rows), but +3.5% on Ames, +1.1% on Boston, +0.6% on
    AER HousePrices, +12% on ggplot2 mpg (234 rows). So both are searched, with the trees
    when it is off. Random split thresholds (`extra_trees`) are searched too: early-stopped as
    above, they scored better on all six classification tables (ROC-AUC +0.013 on Chile,
    +0.019 on SwissLabor, +0.007 on SmokeBan, +0.006 on HMDA, +0.003 on Titanic) and on four
    regressions of six (RMSE -1.8% on CPS1985, -1.0% on HousePrices, -0.6% on Ames, -0.5% on
    Wage; +2.8% on Boston, +5% on mpg), but ran to the cap on diamonds (551 against 545)."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    booster = LGBMClassifier if classify else LGBMRegressor
    settings = searched_settings("lightgbm", params)
    stopping = stops_early("lightgbm", params)
    # n_jobs=0: OpenMP's default thread count, which a search worker caps at its share
    model = booster(
        **settings,
        n_estimators=iterations("lightgbm", params),
        n_jobs=0,
        random_state=seed,
        verbose=-1,
    )
    return NativeCategories(model, early_stopping_rounds=LIGHTGBM_PATIENCE if stopping else 0)


def stops_early(family: str, params: dict[str, Any]) -> bool:
    """Whether a boosted configuration stops early (as it was fitted, for one saved before
    early stopping was searched: EARLIER_VALUES)."""
    return bool(with_earlier_values(family, params)["early_stopping"])


def searched_settings(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """A boosted configuration's parameters but early stopping and the iterations, which
    `iterations` sets."""
    dropped = ("early_stopping", EARLY_STOPPING[family][0])
    return {key: value for key, value in params.items() if key not in dropped}


def iterations(family: str, params: dict[str, Any]) -> int:
    """A boosted configuration's iterations: the searched count without early stopping, the
    cap with it (where it stops sooner)."""
    name, cap = EARLY_STOPPING[family]
    return cap if stops_early(family, params) else int(params[name])


def catboost_model(params: dict[str, Any], classify: bool, seed: int) -> CatBoostCategories:
    """CatBoost (ordered target statistics for categories, symmetric trees), seeded, writing no
    files. Categories are not combined (max_ctr_complexity=1): on an 80-column table of
    house prices, 300 iterations took 7.4 s per fit with CatBoost's default combinations and
    2.6 s without, at a lower error."""
    from catboost import CatBoostClassifier, CatBoostRegressor

    settings = searched_settings("catboost", params)
    settings.pop("auto_learning_rate", None)
    if params.get("auto_learning_rate"):
        settings.pop("learning_rate", None)
    booster = CatBoostClassifier if classify else CatBoostRegressor
    stopping = stops_early("catboost", params)
    return CatBoostCategories(
        booster(
            **settings,
            iterations=iterations("catboost", params),
            max_ctr_complexity=1,
            random_seed=seed,
            verbose=0,
            allow_writing_files=False,
        ),
        early_stopping_rounds=LIGHTGBM_PATIENCE if stopping else 0,
    )


def standardised_target(regressor: Any) -> TransformedTargetRegressor:
    """Fit the regressor on the standardised target and predict in the original unit."""
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def make_model(
    feature_steps: Pipeline,
    family: str,
    params: dict[str, Any],
    task: str,
    seed: int,
    jobs: int | None = 1,
) -> Pipeline:
    """The whole servable model: an unfitted clone of the feature steps plus the estimator.
    A forecast wraps it: the forecasting step first, then the rest fitted to what the
    seasonal-naive forecast misses (features.timeseries.SeasonalResidual).

    `jobs`: the threads of a random forest or extra trees (n_jobs; the same trees for any
    value). A search trial keeps 1, its worker's share of the cores. The model fitted after the
    search gets None, joblib's setting at the time: every core while fit_choice fits it, as
    boosted trees' OpenMP threads already take (50 extra trees on 40,455 diamonds rows: 7.0-7.2
    s on one core, 3.5-3.8 s on two), and one thread when it predicts, since a forest's
    threads add up their trees' predictions in the order they finish, which changes the last
    bits."""
    forecasting = forecasting_step(feature_steps)
    front = [step for step in clone(feature_steps).steps if step[0] != "timeseries"]
    model = Pipeline([*front, ("model", make_estimator(family, params, task, seed, jobs))])
    suit_family(model, family)
    if forecasting is None:
        return model
    return Pipeline([("timeseries", clone(forecasting)), ("forecast", SeasonalResidual(model))])


def suit_family(model: Pipeline, family: str) -> None:
    """Family-specific inputs, set in place. Linear models take text as the sparse TF-IDF
    matrix itself, not its SVD (unless PCA follows, which needs dense input: then every family
    gets the same dense features); histogram gradient boosting, LightGBM and CatBoost split
    natively on categorical codes; the tree families (TREES) get the numeric columns unclipped
    (the last two only without a features step, which would move or mix the columns)."""
    features = model.named_steps.get("features")
    preprocess = model.named_steps["preprocess"]
    numeric: Any = {name: part for name, part, _ in preprocess.transformers}.get("numeric")
    unmixed = str(features) == "passthrough"  # PCA, SVD and the selections mix or judge columns
    if family in TREES and unmixed and "clip" in getattr(numeric, "named_steps", {}):
        numeric.set_params(clip="passthrough")  # --outliers none has no clip step
    if family == "linear" and not isinstance(features, PCA):
        texts = [name for name, _, _ in preprocess.transformers if name.startswith("text_")]
        model.set_params(**{f"preprocess__{name}__components": 0 for name in texts})
    if family in NATIVE_CATEGORICAL and unmixed:
        categorical: list[str] = next(
            (c for n, _, c in preprocess.transformers if n == "categorical"), []
        )
        if categorical:
            # native categorical splits on integer codes, placed first so that their
            # positions are known before fitting (the numeric block's width is not: it grows
            # by a missing-value indicator per column with gaps)
            first = sorted(preprocess.transformers, key=lambda part: part[0] != "categorical")
            # a log target's estimator sits inside its TransformedTargetRegressor
            inner = "regressor__" if isinstance(model[-1], TransformedTargetRegressor) else ""
            model.set_params(
                preprocess__transformers=first,
                preprocess__categorical__encode=category_codes(),
                **{f"model__{inner}categorical_features": list(range(len(categorical)))},
            )


def fit_size(family: str, params: dict[str, Any]) -> float:
    """How much fitting a configuration asks for, relative to others of its family (the time
    of a fold scales with it, at a given table): a forest's trees times the features each split
    tries times the depth; a boosted model's trees times the square root of a tree's leaves
    (measured, 100 trees on 20,000 rows, one thread: LightGBM with 4, 16, 64, 256 leaves took
    1 : 1.6 : 3.3 : 10.8, CatBoost at depth 4, 6, 8 took 1 : 1.8 : 5.0), times LightGBM's
    share of columns per tree (histogram gradient boosting's trees: its iterations, or with
    early stopping their cap, as LightGBM's); 1 for the families whose cost no parameter sets
    this way."""
    if family in ("random_forest", "extra_trees"):
        return float(params["n_estimators"] * params["max_features"] * params["max_depth"])
    if family == "lightgbm":
        leaves = params["num_leaves"] ** 0.5
        return float(iterations(family, params) * leaves * params["colsample_bytree"])
    if family == "catboost":
        return float(iterations(family, params) * 2 ** (params["depth"] / 2))
    if family == "hist_gradient_boosting":
        # with early stopping its cap: the size errs long, as the deadline check wants
        return float(iterations(family, params) * params["max_leaf_nodes"] ** 0.5)
    return 1.0


def fitted_size(family: str, params: dict[str, Any], estimator: Any) -> float:
    """`fit_size` of a fitted estimator: with the iterations an early-stopped boosted model
    actually ran, where fit_size counts its cap. Timing a fold by the cap would make a later
    configuration of the family that runs all its iterations seem quick."""
    if family not in EARLY_STOPPING or not stops_early(family, params):
        return fit_size(family, params)
    name, cap = EARLY_STOPPING[family]
    inner = getattr(estimator, "regressor_", None)  # a forecast's SeasonalResidual
    if isinstance(inner, Pipeline):
        estimator = inner[-1]
    if isinstance(estimator, TransformedTargetRegressor):  # a log target
        estimator = estimator.regressor_
    ran = getattr(estimator, "n_iter_", 0)  # histogram gradient boosting: the patience's too
    best = getattr(getattr(estimator, "estimator_", None), "best_iteration_", 0)
    if best:  # LightGBM and CatBoost keep their trees up to the best, after LIGHTGBM_PATIENCE more
        ran = min(best + LIGHTGBM_PATIENCE, cap)
    if not ran:  # an estimator not of the family's known shapes: its cap
        return fit_size(family, params)
    return fit_size(family, {**params, "early_stopping": False, name: int(ran)})


# Parameters searched since a version of the search space, with the value a configuration saved
# before then (an older champion's) was fitted with.
EARLIER_VALUES = {
    "hist_gradient_boosting": {"early_stopping": True},
    "lightgbm": {"early_stopping": False, "extra_trees": False},
    "catboost": {"early_stopping": False},
}


def with_earlier_values(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """A saved configuration's parameters, completed with what it was fitted with for the
    parameters searched since it was saved."""
    return {**EARLIER_VALUES.get(family, {}), **params}


def trial_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """The study's flat, prefixed parameters of a configuration (config_from_trial's inverse)."""
    prefix = param_prefix(family)
    return {"model": family, **{prefix + name: value for name, value in params.items()}}
