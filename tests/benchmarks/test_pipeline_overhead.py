"""Pipeline overhead: `stablepipe run` (kfp.local, one subprocess per task) against a plain
in-process script doing the same work: same data, split, trials, models and report.

Target: ratio <= 1.25 on a data set of at least 5,000 rows. Also times the demo run
(`stablepipe run` with no arguments: the default 60 s search, whose tune stage must take it
within 5%, plus the other stages)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna

from tests.benchmarks.conftest import frame_rows, read_summary, report, timed_cli

TRIALS = 40
SEED = 42


def in_process(csv: Path, target: str, workdir: Path) -> dict:
    """The pipeline's work as one plain script: the same logic functions, no KFP."""
    from components.collect.logic import best_configuration
    from components.common.settings import RunConfig
    from components.core.metrics import cv_metric
    from components.core.model_file import MODEL_FILE, save_model
    from components.core.study import create_study, load_study
    from components.evaluate.logic import evaluate_run
    from components.refit.logic import refit_model
    from components.train.logic import train_model
    from components.tune.logic import run_worker
    from tests.benchmarks.tune_worker import prepare

    schema, train, test, data = prepare(str(csv), target)
    steps = data.feature_steps
    steps.fit(train.drop(columns=[target]))  # as the features stage does
    create_study(workdir / "study", "bench", cv_metric(schema["task"]))
    study = load_study(workdir / "study")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_worker(study, data, TRIALS, 3600.0, 0)
    best = best_configuration([study], cv_metric(schema["task"]))
    model, card = train_model(train, steps, best, schema, RunConfig(seed=SEED))
    save_model(workdir / "model", model, card)
    result = evaluate_run(workdir / "model", test, [study], best, None, 0.0, refit=True)
    (workdir / "report.html").write_text(result.report_html)
    served, served_card = refit_model(train, test, steps, best, schema, RunConfig(seed=SEED))
    save_model(workdir / "served", served, served_card, judged=workdir / "model" / MODEL_FILE)
    return {"best": best, "metrics": result.metrics}


def test_pipeline_overhead(diamonds_6k: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    baseline = in_process(diamonds_6k, "price", tmp_path)
    baseline_seconds = time.perf_counter() - started

    runs = tmp_path / "runs"
    pipeline_seconds = timed_cli(
        "run",
        "--data",
        str(diamonds_6k),
        "--target",
        "price",
        "--trials",
        str(TRIALS),
        "--workers",
        "1",
        "--seed",
        str(SEED),
        "--runs-dir",
        str(runs),
        "--registry",
        str(tmp_path / "models"),
        "--no-cache",
    )
    summary = read_summary(runs)
    same_work = summary["best"]["params"] == baseline["best"]["params"]
    ratio = pipeline_seconds / baseline_seconds
    report(
        f"pipeline overhead (diamonds, {frame_rows(diamonds_6k)} rows, {TRIALS} trials, 1 worker)",
        [
            ("in-process script", f"{baseline_seconds:.1f} s"),
            ("stablepipe run", f"{pipeline_seconds:.1f} s"),
            ("ratio", f"{ratio:.3f}  (target <= 1.25: {'met' if ratio <= 1.25 else 'MISSED'})"),
            ("same best configuration", str(same_work)),
            ("stages", json.dumps({s["name"]: s["seconds"] for s in summary["stages"]})),
        ],
    )


def test_demo_run_time(tmp_path: Path) -> None:
    seconds = timed_cli("run", cwd=tmp_path)
    summary = read_summary(tmp_path / "runs")
    tune = next(stage for stage in summary["stages"] if stage["name"] == "tune")
    budget = float(summary["config"]["time_budget"])
    report(
        "demo run (`stablepipe run`, no arguments)",
        [
            ("wall time", f"{seconds:.1f} s"),
            (
                "tune stage / its budget",
                f"{tune['seconds']:.1f} s / {budget:g} s = {tune['seconds'] / budget:.3f} "
                "(target within 5%)",
            ),
            ("the other stages", f"{seconds - tune['seconds']:.1f} s"),
            ("trials", f"{summary['best']['trials']['total']}"),
            ("test roc_auc", f"{summary['metrics']['test']['roc_auc']:.4f}"),
        ],
    )
