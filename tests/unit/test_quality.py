"""Data quality: the schema file, anomalies (all collected), severities, the policy, and the
champion's schema and profile as the reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from components.check_quality.logic import Reference, load_reference, verdict_of
from components.check_quality.report import render_report
from components.common.errors import BadInputError
from components.core.registry import publish_version
from components.core.schema import dump_schema, load_schema, parse_schema
from tests.support.stages import check_data

NO_REFERENCE = Reference(None, None, "none")


def committed_schema(frame: pd.DataFrame, target: str) -> dict:
    """What a user gets after the first run: the inferred schema, through its YAML file."""
    schema, _ = check_data(frame, target, "auto", NO_REFERENCE)
    return parse_schema(dump_schema(schema), "schema.yaml")


def kinds(quality: dict) -> dict[tuple[str, str], str]:
    return {(a["column"], a["kind"]): a["severity"] for a in quality["anomalies"]}


def test_schema_file_is_readable_yaml_that_round_trips(titanic: pd.DataFrame) -> None:
    schema, _ = check_data(titanic, "survived", "auto", NO_REFERENCE)
    text = dump_schema(schema)
    assert text.startswith("# stablepipe data schema")
    document = yaml.safe_load(text)
    age = next(c for c in document["columns"] if c["name"] == "age")
    assert age["type"] == "number" and age["role"] == "numeric" and age["nullable"]
    assert 0.2 < age["max_null_fraction"] <= 0.31
    assert age["min"] == pytest.approx(titanic["age"].min())
    sex = next(c for c in document["columns"] if c["name"] == "sex")
    assert sex["categories"] == ["female", "male"]
    again = parse_schema(text, "schema.yaml")
    assert [c["name"] for c in again["columns"]] == [c["name"] for c in schema["columns"]]
    assert again["target"] == "survived" and again["task"] == "binary"


def test_the_same_data_passes_its_own_schema(titanic: pd.DataFrame) -> None:
    reference = Reference(committed_schema(titanic, "survived"), None, "schema.yaml")
    _, quality = check_data(titanic, "survived", "auto", reference)
    schema_kinds = {"missing_column", "extra_column", "type_change", "out_of_range"}
    assert not [a for a in quality["anomalies"] if a["kind"] in schema_kinds]
    assert quality["verdict"] in ("pass", "warn")  # titanic repeats rows: a warning


def test_every_failure_is_collected_not_just_the_first(titanic: pd.DataFrame) -> None:
    reference = Reference(committed_schema(titanic, "survived"), None, "schema.yaml")
    broken = titanic.drop(columns=["parch"]).assign(cabin_deck="C")
    broken.loc[:4, "age"] = 150.0
    broken.loc[:2, "sex"] = "unknown"
    broken["sibsp"] = broken["sibsp"].astype(str) + "x"
    broken.loc[: len(broken) // 2, "pclass"] = None
    _, quality = check_data(broken, "survived", "auto", reference)
    found = kinds(quality)
    assert found[("parch", "missing_column")] == "error"
    assert found[("cabin_deck", "extra_column")] == "warning"
    assert found[("sibsp", "type_change")] == "error"
    assert found[("age", "out_of_range")] == "warning"
    assert found[("sex", "unseen_category")] == "warning"
    assert found[("pclass", "null_fraction")] == "warning"
    assert quality["verdict"] == "fail"
    age = next(a for a in quality["anomalies"] if a["kind"] == "out_of_range")
    assert age["detail"].startswith("5 value(s) outside") and "150.0" in age["detail"]
    assert all(set(a) == {"column", "kind", "severity", "detail"} for a in quality["anomalies"])


def test_severities_and_policy_decide_the_verdict(titanic: pd.DataFrame) -> None:
    schema = committed_schema(titanic, "survived")
    shifted = titanic.assign(age=titanic["age"] + 100)
    _, warned = check_data(shifted, "survived", "auto", Reference(schema, None, "s"))
    assert kinds(warned)[("age", "out_of_range")] == "warning" and warned["verdict"] == "warn"
    _, strict = check_data(shifted, "survived", "auto", Reference(schema, None, "s"), "warning")
    assert strict["verdict"] == "fail"
    schema["severities"] = {"out_of_range": "error", "duplicate_rows": "info"}
    _, edited = check_data(shifted, "survived", "auto", Reference(schema, None, "s"))
    assert kinds(edited)[("age", "out_of_range")] == "error" and edited["verdict"] == "fail"
    _, report_only = check_data(shifted, "survived", "auto", Reference(schema, None, "s"), "never")
    assert report_only["verdict"] == "warn"


def test_roles_edited_in_the_schema_win(titanic: pd.DataFrame) -> None:
    schema = committed_schema(titanic, "survived")
    next(c for c in schema["columns"] if c["name"] == "sibsp")["role"] = "id"
    inferred, _ = check_data(titanic, "survived", "auto", Reference(schema, None, "s"))
    assert {c["name"]: c["role"] for c in inferred["columns"]}["sibsp"] == "id"


def test_table_anomalies_without_a_reference(titanic: pd.DataFrame) -> None:
    frame = titanic.assign(
        leak=titanic["survived"].map({"survived": "yes", "died": "no"}),
        blank=np.nan,
        same="x",
    )
    _, quality = check_data(frame, "survived", "auto", NO_REFERENCE, "error", 7)
    found = kinds(quality)
    assert found[("leak", "target_leak")] == "error"
    assert found[("blank", "empty_column")] == "warning"
    assert found[("same", "constant_column")] == "warning"
    assert found[("*", "duplicate_rows")] == "warning"
    assert found[("survived", "missing_target")] == "info"
    assert quality["verdict"] == "fail" and quality["drift"]["verdict"] == "no_reference"


def test_numeric_leak_and_label_imbalance(diamonds_sample: pd.DataFrame) -> None:
    frame = diamonds_sample.assign(price_copy=diamonds_sample["price"] * 1.01 + 3)
    _, quality = check_data(frame, "price", "auto", NO_REFERENCE)
    assert kinds(quality)[("price_copy", "target_leak")] == "error"
    rare = diamonds_sample.assign(premium=np.where(diamonds_sample.index < 40, "yes", "no"))
    _, imbalanced = check_data(rare, "premium", "auto", NO_REFERENCE)
    assert kinds(imbalanced)[("premium", "label_imbalance")] == "warning"


def test_leak_correlation_equals_pandas() -> None:
    """The elementwise Pearson r (no BLAS call) is pandas' Series.corr: gaps on either side,
    a perfect and a negative relation, a constant column (no correlation)."""
    from components.check_quality.logic import correlation

    rng = np.random.default_rng(7)
    y = pd.Series(rng.normal(size=5000))
    y[rng.random(5000) < 0.1] = np.nan
    noisy = y * -0.5 + rng.normal(size=5000)
    noisy[rng.random(5000) < 0.1] = np.nan
    for x in (noisy, y * 3 + 1, pd.Series(rng.normal(size=5000))):
        assert correlation(x.to_numpy(), y.to_numpy()) == pytest.approx(x.corr(y), abs=1e-12)
    assert correlation((y * 3 + 1).to_numpy(), y.to_numpy()) == pytest.approx(1.0)
    assert np.isnan(correlation(np.ones(5000), y.to_numpy()))
    for scale in (1e150, 1e-160):  # no overflow of the squares, no underflow to zero
        huge = (y * scale).to_numpy()
        assert correlation(huge, y.to_numpy()) == pytest.approx(1.0)


def test_categorical_leak_counting_agrees_with_a_groupby() -> None:
    """pure_values (integer codes) decides exactly as grouping the pairs would: pure columns,
    one mixed value, a value seen too rarely, missing values on either side, one value only."""
    from components.check_quality.logic import LEAK_MIN_ROWS_PER_VALUE, pure_values

    def by_groupby(x: pd.Series, y: pd.Series) -> int:
        pairs = pd.DataFrame({"x": x.astype(str), "y": y}).dropna()
        groups = pairs.groupby("x")["y"]
        sizes, purity = groups.size(), groups.nunique()
        pure = len(sizes) >= 2 and sizes.min() >= LEAK_MIN_ROWS_PER_VALUE and (purity == 1).all()
        return len(sizes) if pure else 0

    rng = np.random.default_rng(3)
    y = pd.Series(rng.integers(0, 4, 600)).astype(float)
    y[rng.random(600) < 0.05] = np.nan
    pure = y.map({0.0: "a", 1.0: "b", 2.0: "c", 3.0: "d"})
    finer = pure + pd.Series(rng.integers(0, 2, 600)).astype(str)  # a0, a1, ...: still pure
    coarser = y.map({0.0: "a", 1.0: "b", 2.0: "b", 3.0: "c"})
    mixed = pure.where(pure.index != int(np.flatnonzero(y == 3)[0]), "a")  # one "a" with y 3
    rare = pure.where(pure.index >= 4, "d")
    gappy = pd.Series(pure.where(rng.random(600) > 0.1), dtype="str")
    single = pd.Series(["a"] * 600)
    y_classes = pd.factorize(y)[0].astype(np.int64)
    for x in (pure, finer, coarser, mixed, rare, gappy, single, pd.Series(rng.integers(0, 9, 600))):
        assert pure_values(x, y_classes) == by_groupby(x, y), x.head()
    assert pure_values(pure, y_classes) == 4 and pure_values(finer, y_classes) == 8
    assert pure_values(gappy, y_classes) == 4
    assert pure_values(coarser, y_classes) == pure_values(mixed, y_classes) == 0


def test_verdict_levels() -> None:
    from components.check_quality.logic import Anomaly

    info, warning, error = (Anomaly("c", "drift", s, "") for s in ("info", "warning", "error"))
    assert verdict_of([], "error") == "pass"
    assert verdict_of([info], "warning") == "pass"
    assert verdict_of([warning], "error") == "warn"
    assert verdict_of([warning], "warning") == "fail"
    assert verdict_of([error], "never") == "warn"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("columns: nope\n", "must be a mapping with a `columns` list"),
        ("version: 9\ncolumns: []\n", "has version 9"),
        ("columns:\n- {name: a, role: numerc}\n", "has role 'numerc'"),
        ("columns:\n- {name: a, min: low}\n", "key 'min' must be a number; got 'low'"),
        ("columns:\n- {name: a, categorys: [x]}\n", "did you mean 'categories'"),
        ("columns:\n- {name: a}\n- {name: a}\n", "lists the column 'a' twice"),
        ("columns: []\nseverities: {out_of_rang: error}\n", "did you mean 'out_of_range'"),
        ("columns: []\nseverities: {drift: fatal}\n", "got 'fatal'"),
        ("columns: [\n", "is not valid YAML"),
    ],
)
def test_schema_file_errors_name_the_field(edit: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_schema(edit, "schema.yaml")


def test_missing_schema_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--schema file does not exist"):
        load_schema(str(tmp_path / "nope.yaml"))


def test_champion_schema_and_profile_are_the_reference(
    titanic: pd.DataFrame, tmp_path: Path
) -> None:
    """promote keeps the schema and data profile beside the model; the next check uses them:
    a shifted batch drifts, the same data does not."""
    schema, quality = check_data(titanic, "survived", "auto", NO_REFERENCE)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    card = {"target": "survived", "task": "binary", "input_columns": ["age"], "training_rows": 1}
    (model_dir / "model.json").write_text(json.dumps({**card, "seed": 0}))
    registry = tmp_path / "registry"
    attachments = {
        "schema.yaml": dump_schema(schema).encode(),
        "data_profile.json": json.dumps(quality["profile"]).encode(),
    }
    verdict = {"metric": "roc_auc", "challenger": 0.8}
    publish_version(registry, model_dir, "v1", {"verdict": verdict}, "", attachments)
    reference = load_reference("", str(registry))
    assert reference.origin == "champion v1" and reference.profile is not None
    _, same = check_data(titanic, "survived", "auto", reference)
    assert same["drift"]["verdict"] == "no_drift"
    older = titanic.assign(age=titanic["age"] + 25)
    _, shifted = check_data(older, "survived", "auto", reference)
    assert shifted["drift"]["verdict"] == "drift" and shifted["drift"]["top"][0] == "age"
    assert ("*", "drift") in kinds(shifted)


def test_report_renders_every_column_and_anomaly(titanic: pd.DataFrame) -> None:
    frame = titanic.assign(same="x")
    schema, quality = check_data(frame, "survived", "auto", NO_REFERENCE)
    page = render_report(frame, schema, quality)
    assert page.startswith("<!doctype html>") and "<script" not in page
    for column in frame.columns:
        assert f"<b>{column}</b>" in page
    assert "constant_column" in page and page.count("<svg") >= 5


def test_gaps_and_empty_columns_are_no_type_change(titanic: pd.DataFrame) -> None:
    """Booleans held as objects beside None, or a column with no values left, keep their type:
    the gaps are null_fraction / empty_column anomalies, not a type change (exit 4)."""
    frame = titanic.assign(adult=titanic["age"].fillna(30) >= 18)
    schema = committed_schema(frame, "survived")
    gappy = frame.assign(adult=frame["adult"].astype(object))
    gappy.loc[:20, "adult"] = None
    gappy["age"] = np.nan
    _, quality = check_data(gappy, "survived", "auto", Reference(schema, None, "s"))
    found = kinds(quality)
    assert not [k for k in found if k[1] == "type_change"], found
    assert ("adult", "null_fraction") in found and ("age", "empty_column") in found
    assert ("age", "null_fraction") in found


def test_schema_file_for_another_target_or_with_no_usable_column(titanic: pd.DataFrame) -> None:
    schema = committed_schema(titanic, "survived")
    with pytest.raises(BadInputError, match="is for the target 'survived', not --target 'sex'"):
        check_data(titanic, "sex", "auto", Reference(schema, None, "s"))
    for column in schema["columns"]:
        column["role"] = "id"
    with pytest.raises(BadInputError, match="roles leave no usable feature column"):
        check_data(titanic, "survived", "auto", Reference(schema, None, "s"))


def test_schema_json_round_trip_and_range_check(titanic: pd.DataFrame) -> None:
    schema, _ = check_data(titanic, "survived", "auto", NO_REFERENCE)
    text = dump_schema(schema, "schema.json")
    assert json.loads(text)["target"] == "survived"
    assert parse_schema(text, "schema.json")["columns"][0]["name"] == "pclass"
    with pytest.raises(BadInputError, match="has min 5 above max 1"):
        parse_schema("columns:\n- {name: a, min: 5, max: 1}\n", "s.yaml")


def test_type_change_examples_are_the_values_that_do_not_fit(
    diamonds_sample: pd.DataFrame,
) -> None:
    schema = committed_schema(diamonds_sample, "price")
    broken = diamonds_sample.astype({"depth": object})
    broken.loc[len(broken) - 1, "depth"] = "abc"
    _, quality = check_data(broken, "price", "auto", Reference(schema, None, "s"))
    change = next(a for a in quality["anomalies"] if a["kind"] == "type_change")
    assert change["column"] == "depth" and change["detail"].endswith("(e.g. 'abc')")


def titanic_variants(titanic: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The reference data itself and one change of each kind a schema check looks for."""
    aged = titanic.copy()
    aged.loc[:4, "age"] = 150.0
    young = titanic.copy()
    young.loc[:2, "fare"] = -1.0
    unseen = titanic.copy()
    unseen.loc[:2, "sex"] = "unknown"
    holes = titanic.copy()
    holes.loc[: len(holes) // 2, "pclass"] = None
    return {
        "same": titanic,
        "half": titanic.iloc[::2],
        "out_of_range_high": aged,
        "out_of_range_low": young,
        "unseen_category": unseen,
        "null_fraction": holes,
        "type_change": titanic.assign(sibsp=titanic["sibsp"].astype(str) + "x"),
        "columns": titanic.drop(columns=["parch"]).assign(deck="C"),
        "all_missing": titanic.assign(age=np.nan),
    }


def test_checks_proven_by_the_observed_schema_give_the_same_anomalies(
    titanic: pd.DataFrame,
) -> None:
    """pandera skips the checks validate's full-table statistics already prove: the anomalies
    must be exactly those of checking every column."""
    from components.check_quality.logic import pandera_schema, schema_anomalies
    from components.validate.logic import infer_table_schema

    reference = committed_schema(titanic, "survived")
    for name, frame in titanic_variants(titanic).items():
        observed = infer_table_schema(frame, "survived", "binary")
        every = schema_anomalies(frame, reference, {})
        screened = schema_anomalies(frame, reference, {}, observed)
        assert screened == every, name
        assert bool(every) == (name not in ("same", "half")), name
    observed = infer_table_schema(titanic, "survived", "binary")
    proven = pandera_schema(titanic, reference, observed)
    assert not [c for c in proven.columns.values() if c.checks]  # nothing left to scan
    unproven = pandera_schema(titanic, reference)
    assert all(c.checks for c in unproven.columns.values())
