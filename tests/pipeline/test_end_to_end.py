"""The whole pipeline through the `stablepipe` command on real data sets shipped in packages."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from components.core.model_file import load_model
from tests.pipeline.conftest import QUICK, latest_summary, only_summary, stablepipe

SUMMARY_KEYS = {
    "run_id",
    "status",
    "task",
    "target",
    "data",
    "best",
    "metrics",
    "promoted",
    "stages",
    "artifacts",
}
STAGES = [
    "ingest",
    "validate",
    "check_quality",
    "split",
    "preprocess",
    "features",
    "create_study",
    "tune",
    "collect",
    "train",
    "refit",
    "evaluate",
    "promote",
]


def test_titanic_binary_run_predict_and_rerun(workdir: Path, titanic: pd.DataFrame) -> None:
    data = titanic.copy()
    data.loc[:4, "survived"] = None  # five rows without a target: dropped and counted
    csv = workdir / "titanic.csv"
    data.to_csv(csv, index=False)
    args = [
        "run",
        "--data",
        str(csv),
        "--target",
        "survived",
        "--runs-dir",
        str(workdir / "runs"),
        "--registry",
        str(workdir / "models"),
        "--trials",
        "8",
        "--workers",
        "2",
        "--cv-folds",
        "3",
        "--seed",
        "3",
    ]
    first = stablepipe(*args)
    assert first.code == 0, first.stderr
    summary = only_summary(workdir / "runs")
    assert set(summary) >= SUMMARY_KEYS
    assert summary["status"] == "succeeded" and summary["task"] == "binary"
    assert summary["data"]["rows"] == len(titanic) - 5
    assert summary["data"]["rows_dropped_missing_target"] == 5
    assert summary["data"]["columns"] == 6 and len(summary["data"]["sha256"]) == 64
    assert set(summary["best"]) >= {"model", "params", "cv_score", "metric"}
    assert summary["best"]["metric"] == "roc_auc" and summary["best"]["cv_score"] > 0.75
    assert list(summary["metrics"]["test"]) == ["roc_auc", "accuracy", "f1_macro", "log_loss"]
    assert summary["metrics"]["test"]["roc_auc"] > 0.75
    assert summary["promoted"] is True
    # the served model is refitted on every row; the test metrics are of the one without the
    # test split, which the registry keeps beside it for the next run's comparison
    model_files = sorted(p.name for p in Path(summary["artifacts"]["model"]).iterdir())
    assert model_files == ["judged.skops", "model.json", "model.skops"]
    served = summary["served"]
    assert served["refit"] is True and served["rows"] == summary["data"]["rows"]
    assert served["judged_rows"] == pytest.approx(0.8 * served["rows"], abs=2)
    assert "served     refitted on all" in first.stderr
    assert [s["name"] for s in summary["stages"]] == STAGES
    assert all(s["status"] == "succeeded" for s in summary["stages"])
    for path in summary["artifacts"].values():
        assert Path(path).exists(), path
    assert "✓ tune" in first.stderr and "PROMOTED" in first.stderr
    stage_events = [
        json.loads(line)
        for line in (Path(summary["artifacts"]["logs"]) / "stages.jsonl").read_text().splitlines()
    ]
    assert {e["stage"] for e in stage_events} == set(STAGES)
    assert all(e["run_id"] == summary["run_id"] for e in stage_events)

    # predict: input order kept, unseen columns ignored, one probability column per class
    rows = (
        titanic.sample(frac=1.0, random_state=1)
        .assign(ticket_office="x")
        .drop(columns=["survived"])
    )
    rows.to_csv(workdir / "new.csv", index=False)
    model_dir = summary["artifacts"]["model"]
    predicted = stablepipe(
        "predict",
        "--model",
        model_dir,
        "--data",
        str(workdir / "new.csv"),
        "--output",
        str(workdir / "pred.csv"),
    )
    assert predicted.code == 0, predicted.stderr
    out = pd.read_csv(workdir / "pred.csv")
    assert list(out.columns) == ["prediction", "proba_died", "proba_survived"]
    pipeline = load_model(model_dir).pipeline
    expected = pipeline.predict_proba(rows[["pclass", "sex", "age", "sibsp", "parch"]])[:, 1]
    assert out["proba_survived"].to_numpy() == pytest.approx(expected, abs=1e-12)
    champion = stablepipe(
        "predict",
        "--model",
        str(workdir / "models" / "survived" / "champion"),
        "--data",
        str(workdir / "new.csv"),
        "--output",
        str(workdir / "c.csv"),
    )
    assert champion.code == 0 and pd.read_csv(workdir / "c.csv").equals(out)

    # the same run again: finished stages come from the cache, the numbers are identical, and
    # an equal model does not replace the champion
    pointer = (workdir / "models" / "survived" / "champion.json").read_bytes()
    second = stablepipe(*args)
    assert second.code == 0, second.stderr
    again = latest_summary(workdir / "runs")
    statuses = {s["name"]: s["status"] for s in again["stages"]}
    # check_quality re-runs: its reference (the champion) changed with the first promotion
    assert all(statuses[name] == "cached" for name in STAGES[:11] if name != "check_quality")
    assert statuses["check_quality"] == "succeeded", statuses
    assert again["metrics"] == summary["metrics"] and again["best"] == summary["best"]
    assert again["promoted"] is False and statuses["promote"] == "skipped"
    assert again["promotion"]["decision"] == "keep" and again["promotion"]["delta"] == 0.0
    assert (workdir / "models" / "survived" / "champion.json").read_bytes() == pointer


def test_diamonds_regression_run(workdir: Path, diamonds_sample: pd.DataFrame) -> None:
    path = workdir / "diamonds.parquet"
    diamonds_sample.to_parquet(path, index=False)
    result = stablepipe(
        "run",
        "--data",
        str(path),
        "--target",
        "price",
        "--runs-dir",
        str(workdir / "runs"),
        "--registry",
        str(workdir / "models"),
        "--trials",
        "6",
        "--workers",
        "1",
        "--cv-folds",
        "3",
    )
    assert result.code == 0, result.stderr
    summary = only_summary(workdir / "runs")
    assert summary["task"] == "regression" and summary["best"]["metric"] == "rmse"
    assert list(summary["metrics"]["test"]) == ["rmse", "mae", "r2"]
    assert summary["metrics"]["test"]["r2"] > 0.85
    assert summary["promoted"] is True
    report = Path(summary["artifacts"]["report"]).read_text()
    assert report.count("<img") >= 2  # residual plots and search history


def test_demo_runs_with_no_arguments(workdir: Path) -> None:
    result = stablepipe("run", "--trials", "6", cwd=workdir)
    assert result.code == 0, result.stderr
    summary = only_summary(workdir / "runs")
    assert summary["data"]["source"] == "demo:breast_cancer" and summary["task"] == "binary"
    assert (workdir / "models" / "target" / "champion.json").is_file()


def test_a_folder_of_mixed_formats_runs(workdir: Path, titanic: pd.DataFrame) -> None:
    folder = workdir / "drops"
    folder.mkdir()
    titanic.iloc[:600].to_json(folder / "part-1.jsonl", orient="records", lines=True)
    titanic.iloc[600:].to_csv(folder / "part-2.csv.gz", index=False, sep=";")
    result = stablepipe(
        "run",
        "--data",
        str(folder),
        "--target",
        "survived",
        *QUICK,
        cwd=workdir,
    )
    assert result.code == 0, result.stderr
    assert only_summary(workdir / "runs")["data"]["rows"] == len(titanic)
