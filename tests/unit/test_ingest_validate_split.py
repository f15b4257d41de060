from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common.errors import BadInputError
from components.core.source.files import read_table, source_fingerprint
from components.ingest.logic import read_training_rows
from components.split.logic import split_frame
from components.validate.logic import column_role, infer_table_schema, resolve_task


def test_ingest_drops_and_counts_rows_with_missing_target(
    tmp_path: Path, titanic: pd.DataFrame
) -> None:
    frame = titanic.copy()
    frame.loc[:9, "survived"] = None
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    result = read_training_rows(str(path), "survived")
    assert result.rows_read == len(titanic)
    assert result.rows_dropped_missing_target == 10
    assert len(result.frame) == len(titanic) - 10
    assert result.frame["survived"].notna().all()
    assert result.sha256 == source_fingerprint(str(path))


def test_parquet_and_csv_read_the_same_table(tmp_path: Path, titanic: pd.DataFrame) -> None:
    titanic.to_parquet(tmp_path / "t.parquet", index=False)
    titanic.to_csv(tmp_path / "t.csv", index=False)
    from_parquet = read_table(str(tmp_path / "t.parquet"))
    from_csv = read_table(str(tmp_path / "t.csv"))
    pd.testing.assert_frame_equal(from_parquet, from_csv, check_dtype=False)


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    before = source_fingerprint(str(path))
    path.write_text("a,b\n1,3\n")
    assert source_fingerprint(str(path)) != before


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "empty"),
        (b"a,b,target\n", "header.csv", "header but no rows"),
        (b"a,b\n1,2\n", "data.txt", "must be a CSV"),
        (b"{not json", "data.json", "not a readable json"),
        (b"not parquet at all", "bad.parquet", "not a readable parquet"),
    ],
)
def test_unreadable_files_are_bad_input(
    tmp_path: Path, content: bytes, name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        read_training_rows(str(path), "target")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"does not exist: .*nope\.csv"):
        read_training_rows(str(tmp_path / "nope.csv"), "target")


def test_misspelt_target_suggests_the_closest_column(titanic_csv: Path) -> None:
    with pytest.raises(BadInputError, match=r"'survivd' is not a column.*did you mean 'survived'"):
        read_training_rows(str(titanic_csv), "survivd")


def test_all_missing_target_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": range(30), "y": [None] * 30}).to_csv(path, index=False)
    with pytest.raises(BadInputError, match="no values: all 30 rows are missing"):
        read_training_rows(str(path), "y")


def test_task_inference_on_real_targets(
    titanic: pd.DataFrame, diamonds_sample: pd.DataFrame
) -> None:
    assert resolve_task(titanic["survived"], "auto") == "binary"
    assert resolve_task(titanic["pclass"], "auto") == "multiclass"
    assert resolve_task(diamonds_sample["price"], "auto") == "regression"
    assert resolve_task(titanic["sibsp"], "multiclass") == "multiclass"


@pytest.mark.parametrize(
    ("values", "task", "message"),
    [
        (["a"] * 30, "auto", "single class 'a'"),
        (["a", "b", "c"] * 10, "binary", "two classes"),
        (["a", "b"] * 15, "regression", "numeric target"),
        (["a"] * 29 + ["b"], "auto", r"class 'b' has 1 row\(s\)"),
        (["a"] * 26 + ["b"] * 4, "auto", r"class 'b' has 4 row\(s\); every class needs at least 5"),
        (["a", "b"] * 15, "multiclass", "needs at least three classes"),
        (["a", "b"] * 15, "ordinal", "--task must be one of"),
    ],
)
def test_targets_that_do_not_fit_the_task(values: list[str], task: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        resolve_task(pd.Series(values, name="y"), task)


def test_integer_codes_with_missing_values_are_classes() -> None:
    codes = pd.Series([1.0, 2.0, 3.0] * 10 + [None], name="y")  # float because of the gap
    assert resolve_task(codes, "auto") == "multiclass"
    single = pd.Series([5] * 30, name="y")
    with pytest.raises(BadInputError, match="single class '5'"):
        resolve_task(single, "auto")


def test_long_targets_decide_the_task_as_an_exact_count_would() -> None:
    """Past DISTINCT_SAMPLE rows the classes of an amount are counted in a sample; codes,
    a few rare extra values and a requested classification still see every row."""
    from components.validate.logic import DISTINCT_SAMPLE

    rows = DISTINCT_SAMPLE * 3
    rng = np.random.default_rng(0)
    amounts = pd.Series(rng.normal(size=rows), name="y")
    assert resolve_task(amounts, "auto") == resolve_task(amounts, "regression") == "regression"
    codes = pd.Series(rng.integers(0, 12, rows), name="y")
    assert resolve_task(codes, "auto") == "multiclass"
    codes[:19] = np.arange(100, 119)  # 31 classes, 19 of them in one row each: not codes
    assert resolve_task(codes, "auto") == "regression"
    with pytest.raises(BadInputError, match=f"has {rows}$"):
        resolve_task(amounts, "binary")


def test_test_split_must_hold_every_class() -> None:
    frame = pd.DataFrame({"x": range(50), "y": [f"c{i % 10}" for i in range(50)]})
    with pytest.raises(BadInputError, match="cannot hold all 10 classes"):
        split_frame(frame, "y", "multiclass", 0.1)


def test_schema_roles_and_ranges(titanic: pd.DataFrame) -> None:
    frame = titanic.assign(passenger=[f"p{i}" for i in range(len(titanic))], constant=1)
    schema = infer_table_schema(frame, "survived", "auto")
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    assert roles == {
        "pclass": "categorical",
        "sex": "categorical",
        "age": "numeric",
        "sibsp": "numeric",
        "parch": "numeric",
        "passenger": "id",
        "constant": "constant",
    }
    age = next(c for c in schema["columns"] if c["name"] == "age")
    assert age["nullable"] and 0.19 < age["missing_fraction"] < 0.21
    assert age["min"] == pytest.approx(titanic["age"].min())
    assert schema["target_column"]["class_counts"] == titanic["survived"].value_counts().to_dict()


def test_schema_needs_a_usable_feature() -> None:
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(40)], "y": [0, 1] * 20})
    with pytest.raises(BadInputError, match="no usable feature column"):
        infer_table_schema(frame, "y", "auto")


def test_column_role_of_booleans_and_dates() -> None:
    assert column_role(pd.Series([True, False] * 5)) == "categorical"
    assert column_role(pd.Series(pd.date_range("2020", periods=10))) == "datetime"


def test_split_depends_on_the_rows_alone_and_is_stratified(titanic: pd.DataFrame) -> None:
    """The same rows are held out whatever the seed (there is none) and the row order, so a
    champion trained on earlier data never trained on the rows it is judged on."""
    train, test = split_frame(titanic, "survived", "binary", 0.25)
    shuffled = titanic.sample(frac=1.0, random_state=3).reset_index(drop=True)
    _, test_shuffled = split_frame(shuffled, "survived", "binary", 0.25)
    ordered = ["survived", *[c for c in titanic.columns if c != "survived"]]

    def rows(frame: pd.DataFrame) -> Counter[str]:
        return Counter(str(row) for row in frame[ordered].itertuples(index=False))

    assert rows(test) == rows(test_shuffled)
    assert len(train) + len(test) == len(titanic)
    assert len(test) == round(0.25 * (titanic["survived"] == "died").sum()) + round(
        0.25 * (titanic["survived"] == "survived").sum()
    )
    share = titanic["survived"].value_counts(normalize=True)
    assert (test["survived"].value_counts(normalize=True) - share).abs().max() < 0.01
    # identical rows (Titanic's passengers share class, sex and age by the dozen) spread over
    # both splits as in a random split, instead of whole groups being held out
    repeated = titanic[titanic.duplicated(keep=False)]
    assert 0.15 < len(set(rows(repeated)) & set(rows(test))) / len(set(rows(repeated))) < 0.6
    assert test.duplicated(keep=False).mean() < titanic.duplicated(keep=False).mean() + 0.05
    # new rows move few old ones across: most of the old test split stays held out
    grown = pd.concat([titanic, titanic.assign(age=titanic["age"] + 0.5)], ignore_index=True)
    _, test_grown = split_frame(grown, "survived", "binary", 0.25)
    assert sum((rows(test) & rows(test_grown)).values()) >= 0.85 * len(test)


def test_regression_split_holds_out_the_share(diamonds_sample: pd.DataFrame) -> None:
    train, test = split_frame(diamonds_sample, "price", "regression", 0.2)
    assert len(test) == 400 and len(train) == 1600
    _, again = split_frame(diamonds_sample.iloc[::-1], "price", "regression", 0.2)
    assert sorted(test["price"]) == sorted(again["price"])


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("t.json", lambda f, p: f.to_json(p, orient="records")),
        ("t.jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("t.csv.gz", lambda f, p: f.to_csv(p, index=False)),
        ("t.tsv.gz", lambda f, p: f.to_csv(p, index=False, sep="\t")),
        ("t.csv.zip", lambda f, p: f.to_csv(p, index=False)),
        ("semicolons.csv", lambda f, p: f.to_csv(p, index=False, sep=";")),
        ("pipes.csv", lambda f, p: f.to_csv(p, index=False, sep="|")),
    ],
)
def test_every_file_format_reads_the_same_table(
    tmp_path: Path, titanic: pd.DataFrame, name, write
) -> None:
    path = tmp_path / name
    write(titanic, path)
    titanic.to_csv(tmp_path / "reference.csv", index=False)
    frame, reference = read_table(str(path)), read_table(str(tmp_path / "reference.csv"))
    assert list(frame.columns) == list(titanic.columns) and len(frame) == len(titanic)
    pd.testing.assert_frame_equal(frame, reference, check_dtype=False, check_column_type=False)


def test_a_folder_of_files_is_one_table(tmp_path: Path, titanic: pd.DataFrame) -> None:
    folder = tmp_path / "parts"
    (folder / "2026-11").mkdir(parents=True)
    titanic.iloc[:500].to_csv(folder / "a.csv", index=False)
    titanic.iloc[500:].to_parquet(folder / "2026-11" / "b.parquet", index=False)
    (folder / "notes.txt").write_text("not a table")
    frame = read_table(str(folder))
    assert len(frame) == len(titanic)
    before = source_fingerprint(str(folder))
    titanic.iloc[:499].to_csv(folder / "a.csv", index=False)
    assert source_fingerprint(str(folder)) != before


def test_a_folder_with_mixed_schemas_or_no_tables_is_bad_input(
    tmp_path: Path, titanic: pd.DataFrame
) -> None:
    (tmp_path / "mixed").mkdir()
    titanic.to_csv(tmp_path / "mixed" / "a.csv", index=False)
    titanic.drop(columns=["age"]).to_csv(tmp_path / "mixed" / "b.csv", index=False)
    with pytest.raises(BadInputError, match="have different columns"):
        read_table(str(tmp_path / "mixed"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="holds no table file"):
        read_table(str(tmp_path / "empty"))


def test_a_file_cut_in_the_middle_of_a_row_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_text("a,b,c,target\n1,2,3,x\n4,5,6,y\n7,8")
    with pytest.raises(
        BadInputError,
        match=r"ends in the middle of a row: its last line \(line 4\) has 2 of 4 fields",
    ):
        read_table(str(path))


def test_all_empty_columns_are_not_used(titanic: pd.DataFrame) -> None:
    schema = infer_table_schema(titanic.assign(blank=None), "survived", "auto")
    assert {c["name"]: c["role"] for c in schema["columns"]}["blank"] == "empty"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (list(range(1000, 1200)), r"looks like an identifier: its 200 values are all distinct"),
        ([7 + 2.5 * i for i in range(60)][::-1], r"evenly spaced \(7, 9.5, ... 154.5\)"),
        ([f"order-{i:05d}" for i in range(300)], "300 of its 300 values are distinct"),
    ],
)
def test_a_target_that_is_an_identifier_is_refused(values: list, message: str) -> None:
    """A row number as target was trained and promoted with R² 0.99; order ids as classes got a
    message about class sizes. Both are named for what they are."""
    from components.validate.logic import resolve_task

    for task in ("auto", "regression") if isinstance(values[0], float | int) else ("auto",):
        with pytest.raises(BadInputError, match=message):
            resolve_task(pd.Series(values, name="order_id"), task)


def test_amounts_and_classes_are_not_identifiers(
    titanic: pd.DataFrame, diamonds_sample: pd.DataFrame
) -> None:
    from components.validate.logic import resolve_task

    assert resolve_task(diamonds_sample["price"], "auto") == "regression"
    assert resolve_task(titanic["age"].dropna(), "auto") == "regression"
    assert resolve_task(titanic["pclass"], "auto") == "multiclass"
    assert resolve_task(titanic["survived"], "auto") == "binary"
    # all distinct but not evenly spaced: an amount, however unique
    spread = pd.Series(np.random.default_rng(0).lognormal(size=500), name="amount")
    assert resolve_task(spread, "auto") == "regression"


def test_an_infinite_target_is_refused_before_the_search() -> None:
    from components.validate.logic import resolve_task

    y = pd.Series(np.r_[np.random.default_rng(0).normal(size=50), [np.inf]], name="price")
    with pytest.raises(
        BadInputError, match=r"target 'price' has 1 infinite value\(s\) \(the first in row 50"
    ):
        resolve_task(y, "auto")


def test_a_profile_of_values_near_the_largest_float_stays_finite() -> None:
    """Values near 1.8e308 once made the drift bins' edges and the spread inf (not JSON)."""
    import json

    from components.check_quality.drift import data_profile, drift_report

    big = np.finfo(float).max
    frame = pd.DataFrame({"x": np.r_[np.linspace(0, 1, 50), [big, -big]]})
    profile = data_profile(frame, {"x": "numeric"})
    json.dumps(profile, allow_nan=False)  # raises on inf or nan
    assert profile["columns"]["x"]["min"] == -big and profile["columns"]["x"]["max"] == big
    assert drift_report(profile, frame, {"x": "numeric"})["verdict"] == "no_drift"
