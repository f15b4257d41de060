"""One servable model: what `stablepipe predict` and the batch-predict pipeline give for the test
split is, bit for bit, what evaluate computed (and scored) for it, on titanic (categoricals,
missing ages), after a real `stablepipe run`."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
import skops.io as sio
from sklearn import metrics as skm

from components.core.model_file import LEGACY_MODEL_FILE, MODEL_FILE, TRUSTED_TYPES
from tests.pipeline.conftest import only_summary, stablepipe

# --no-refit: the model the run serves is then the one evaluate scored (a refit, the default,
# is fitted on the test rows too: tests/pipeline/test_end_to_end.py)
RUN = (
    *("--target", "survived", "--trials", "3", "--workers", "1", "--cv-folds", "2", "--seed", "3"),
    "--no-refit",
)


@dataclass
class TitanicRun:
    workdir: Path
    summary: dict[str, Any]
    test_rows: Path  # the run's test split, as the split stage wrote it (Parquet)
    evaluated: pd.DataFrame  # evaluate's saved predictions for those rows

    def run_args(self, registry: Path) -> list[str]:
        return [
            "run",
            "--data",
            str(self.workdir / "titanic.csv"),
            "--runs-dir",
            str(self.workdir / "runs"),
            "--registry",
            str(registry),
            *RUN,
        ]


def kfp_output(runs: Path, task: str, name: str) -> Path:
    """An output of the (only) pipeline run under kfp.local's root in the runs folder."""
    found = sorted((runs / ".kfp" / "outputs").glob(f"*/{task}/{name}"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def titanic_run(tmp_path_factory: pytest.TempPathFactory, titanic: pd.DataFrame) -> TitanicRun:
    workdir = tmp_path_factory.mktemp("parity")
    (workdir / "runs").mkdir()
    titanic.to_csv(workdir / "titanic.csv", index=False)
    run = TitanicRun(workdir, {}, workdir / "test.parquet", pd.DataFrame())
    done = stablepipe(*run.run_args(workdir / "models"))
    assert done.code == 0, done.stderr
    run.summary = only_summary(workdir / "runs")
    shutil.copyfile(kfp_output(workdir / "runs", "split", "test"), run.test_rows)
    run.evaluated = pd.read_parquet(kfp_output(workdir / "runs", "evaluate", "test_predictions"))
    return run


def test_evaluate_saved_the_predictions_it_scored(titanic_run: TitanicRun) -> None:
    test = pd.read_parquet(titanic_run.test_rows)
    evaluated, metrics = titanic_run.evaluated, titanic_run.summary["metrics"]["test"]
    assert list(evaluated.columns) == ["prediction", "proba_died", "proba_survived"]
    assert len(evaluated) == len(test) and test["age"].isna().any()
    truth = test["survived"].astype(object)
    assert (
        skm.accuracy_score(truth, evaluated["prediction"].astype(object)) == (metrics["accuracy"])
    )
    assert (
        skm.roc_auc_score(truth == "survived", evaluated["proba_survived"]) == (metrics["roc_auc"])
    )


def test_predict_gives_exactly_what_evaluate_computed(titanic_run: TitanicRun) -> None:
    """From the run's model folder and from the registry's champion, as Parquet and as CSV."""
    workdir, evaluated = titanic_run.workdir, titanic_run.evaluated
    model_dir = Path(titanic_run.summary["artifacts"]["model"])
    # --no-refit: train's folder as it is, no refit and no judged model beside it
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.json", MODEL_FILE]
    served = titanic_run.summary["served"]
    assert served["refit"] is False and served["rows"] == served["judged_rows"]
    assert served["rows"] == titanic_run.summary["data"]["rows"] - len(evaluated)
    champion = workdir / "models" / "survived" / "champion"
    for model, output in ((model_dir, "run.parquet"), (champion, "champion.parquet")):
        done = stablepipe(
            "predict",
            "--model",
            str(model),
            "--data",
            str(titanic_run.test_rows),
            "--output",
            str(workdir / output),
        )
        assert done.code == 0, done.stderr
        predicted = pd.read_parquet(workdir / output)
        pd.testing.assert_frame_equal(predicted, evaluated, check_exact=True)
    done = stablepipe(
        "predict",
        "--model",
        str(champion),
        "--data",
        str(titanic_run.test_rows),
        "--output",
        str(workdir / "champion.csv"),
    )
    assert done.code == 0, done.stderr
    exact = {} if pd.__version__ >= "3" else {"float_precision": "round_trip"}
    as_csv = pd.read_csv(workdir / "champion.csv", **exact)
    pd.testing.assert_frame_equal(as_csv, evaluated, check_exact=True, check_dtype=False)


def test_the_batch_predict_pipeline_gives_the_same_predictions(titanic_run: TitanicRun) -> None:
    """The pipeline resolves the registry's champion, reads the rows and scores them under
    kfp.local: the same values as evaluate and `stablepipe predict`."""
    from kfp import local

    from pipelines.batch_predict import batch_predict_pipeline

    workdir = titanic_run.workdir
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(workdir / "batch"),
        enable_caching=False,
    )
    run = batch_predict_pipeline(
        data=str(titanic_run.test_rows),
        model=str(workdir / "models" / "survived" / "champion"),
        s3_endpoint="",
    )
    predictions = pd.read_parquet(run.output.path)
    pd.testing.assert_frame_equal(predictions, titanic_run.evaluated, check_exact=True)
    assert run.output.metadata["rows"] == len(predictions)
    assert run.output.metadata["model_version"] == titanic_run.summary["run_id"]


def test_a_legacy_champion_is_replaced_by_the_next_run(titanic_run: TitanicRun) -> None:
    """A registry whose champion an earlier stablepipe saved as a pickle: the run does not
    crash on it, never unpickles it, and promotes its own model in its place; the old version
    stays; predict then serves the new champion."""
    workdir = titanic_run.workdir
    registry = workdir / "legacy-models"
    shutil.copytree(workdir / "models", registry)
    old = titanic_run.summary["run_id"]
    old_model = registry / "survived" / "versions" / old / "model"
    pipeline = sio.load(old_model / MODEL_FILE, trusted=sorted(TRUSTED_TYPES))
    joblib.dump(pipeline, old_model / LEGACY_MODEL_FILE)
    (old_model / MODEL_FILE).unlink()

    refused = stablepipe(
        "predict",
        "--model",
        str(registry / "survived" / "champion"),
        "--data",
        str(titanic_run.test_rows),
        "--output",
        str(workdir / "legacy.csv"),
    )
    assert refused.code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert LEGACY_MODEL_FILE in refused.stderr and "retrain" in refused.stderr

    done = stablepipe(*titanic_run.run_args(registry), "--json")
    assert done.code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["promoted"] is True, summary["promotion"]
    assert "cannot be compared" in summary["promotion"]["reason"]
    pointer = json.loads((registry / "survived" / "champion.json").read_text())
    assert pointer["version"] == summary["run_id"] and pointer["previous"] == old
    assert (old_model / LEGACY_MODEL_FILE).is_file()
    served = stablepipe(
        "predict",
        "--model",
        str(registry / "survived" / "champion"),
        "--data",
        str(titanic_run.test_rows),
        "--output",
        str(workdir / "new.parquet"),
    )
    assert served.code == 0, served.stderr
    # the new run's own model: what its evaluate computed for the same test rows (not the old
    # run's: the old champion's configuration, read from its card, starts the new search, so
    # the two searches and their models may differ)
    new_run = Path(summary["artifacts"]["model"]).parent
    pd.testing.assert_frame_equal(
        pd.read_parquet(workdir / "new.parquet"),
        pd.read_parquet(new_run / "test_predictions.parquet"),
        check_exact=True,
    )
