"""Parallel search: the tune step with 2 workers against 1 worker, same number of trials, same
data, in the same session. Target: at least 1.6x faster on 2 cores."""

from __future__ import annotations

from pathlib import Path

from tests.benchmarks.conftest import read_summary, report, timed_cli

TRIALS = 40


def tune_seconds(csv: Path, workers: int, workdir: Path) -> tuple[float, dict]:
    runs = workdir / f"runs-{workers}"
    timed_cli(
        "run",
        "--data",
        str(csv),
        "--target",
        "price",
        "--trials",
        str(TRIALS),
        "--workers",
        str(workers),
        "--runs-dir",
        str(runs),
        "--registry",
        str(workdir / f"models-{workers}"),
        "--no-cache",
    )
    summary = read_summary(runs)
    stage = next(s for s in summary["stages"] if s["name"] == "tune")
    return float(stage["seconds"]), summary["best"]["trials"]


def test_two_workers_against_one(diamonds_6k: Path, tmp_path: Path) -> None:
    one, trials_one = tune_seconds(diamonds_6k, 1, tmp_path)
    two, trials_two = tune_seconds(diamonds_6k, 2, tmp_path)
    speedup = one / two
    report(
        f"parallel tune (diamonds 6,000 rows, {TRIALS} trials)",
        [
            ("1 worker", f"{one:.1f} s  trials {trials_one}"),
            ("2 workers", f"{two:.1f} s  trials {trials_two}"),
            (
                "speed-up",
                f"{speedup:.2f}x  (target >= 1.6: {'met' if speedup >= 1.6 else 'MISSED'})",
            ),
        ],
    )
