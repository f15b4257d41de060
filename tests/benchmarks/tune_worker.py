"""One search worker as its own process, for the parallel-search benchmark:

python -m tests.benchmarks.tune_worker STUDY_DIR CSV TARGET TRIALS INDEX WORKERS
"""

from __future__ import annotations

import sys

import optuna
import pandas as pd

from components.core.study import load_study
from components.features.logic import feature_pipeline
from components.ingest.logic import read_training_rows
from components.preprocess.logic import build_preprocessor
from components.split.logic import split_frame
from components.tune.logic import SearchData, run_worker
from components.validate.logic import infer_table_schema

SEED = 42


def prepare(csv: str, target: str) -> tuple[dict, pd.DataFrame, pd.DataFrame, SearchData]:
    """What the pipeline does before the search: (schema, train, test, the search's data)."""
    frame = read_training_rows(csv, target).frame
    schema = infer_table_schema(frame, target, "auto")
    train, test = split_frame(frame, target, schema["task"], 0.2)
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    data = SearchData(
        X=train.drop(columns=[target]),
        y=train[target],
        feature_steps=steps,
        task=schema["task"],
        folds=5,
        seed=SEED,
    )
    return schema, train, test, data


def search_data(csv: str, target: str) -> SearchData:
    return prepare(csv, target)[3]


if __name__ == "__main__":
    study_dir, csv, target, trials, index, workers = sys.argv[1:7]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    outcome = run_worker(
        load_study(study_dir),
        search_data(csv, target),
        int(trials),
        3600.0,
        int(index),
        int(workers),
    )
    print(outcome)
