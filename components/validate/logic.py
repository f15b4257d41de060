"""Validate: decide the task, check the target suits it, and infer the schema and column roles."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from components.common.errors import BadInputError, missing_column_error
from components.common.frames import seeded_positions
from components.common.settings import RunConfig, check_setting, parse_roles
from components.core.schema import (
    USED_ROLES,
    ColumnEntry,
    TableSchema,
    TimeSeriesSetup,
    load_schema,
    logical_type,
    natural_order,
)
from components.validate.timeseries import check_time_series

__all__ = ["validate_data"]

MIN_ROWS = 20
# Enough rows that every class reaches the test split and each cross-validation fold.
MIN_ROWS_PER_CLASS = 5
# An integer target with at most this many distinct values is read as classes, not amounts.
MAX_CLASSES_FOR_INTEGER_TARGET = 20
# A text column whose distinct values are more than this share of the rows is an identifier.
ID_UNIQUE_SHARE = 0.95
# A target is judged an identifier (see identifier_problem) from this many values on.
MIN_IDENTIFIER_ROWS = 20
MAX_CATEGORIES_LISTED = 50
MAX_ORDINAL_LEVELS = 1000  # an ordinal column's levels are listed (its order) up to this many
# Free text: strings this long on average, of several words, are documents, not categories.
TEXT_MIN_MEAN_LENGTH = 30
TEXT_MIN_MEAN_WORDS = 4
# Strings of which this share parse as dates are a date column.
DATE_PARSE_SHARE = 0.95
ROLE_SAMPLE = 2000
DISTINCT_SAMPLE = 100_000


def resolve_task(y: pd.Series, requested: str) -> str:
    """The task for target `y`: `requested` checked against the data, or inferred when 'auto'."""
    check_setting("task", requested)
    numeric = ptypes.is_numeric_dtype(y) and not ptypes.is_bool_dtype(y)
    if numeric and (infinite := np.isinf(y.to_numpy(dtype=float))).any():
        raise BadInputError(
            f"target {y.name!r} has {int(infinite.sum())} infinite value(s) (the first in row "
            f"{int(np.argmax(infinite))}: {y.iloc[int(np.argmax(infinite))]!r}); a target must "
            "be finite: drop or fix those rows"
        )
    if problem := identifier_problem(y, numeric):
        raise BadInputError(problem)
    n_classes = class_count(y, numeric and requested in ("auto", "regression"))
    if requested == "auto":
        if not numeric or n_classes <= 2:
            task = "binary" if n_classes <= 2 else "multiclass"
        elif n_classes <= MAX_CLASSES_FOR_INTEGER_TARGET and whole_numbers(y):
            task = "multiclass"
        else:
            task = "regression"
    else:
        task = requested
    if task == "regression" and not numeric:
        raise BadInputError(
            f"--task regression needs a numeric target; {y.name!r} has type {y.dtype} "
            f"(e.g. {str(y.dropna().iloc[0])!r})"
        )
    if task != "regression":
        check_classes(y, task, n_classes)
    return task


def identifier_problem(y: pd.Series, numeric: bool) -> str:
    """Why `y` looks like an identifier rather than something to predict ('' when it does not):
    a row number (every value distinct and evenly spaced: a model "predicts" it from the row
    order, R² 0.99), or strings nearly all distinct (no class repeats enough to be learnt)."""
    values = y.dropna()
    if len(values) < MIN_IDENTIFIER_ROWS:
        return ""
    if numeric:
        ordered = np.sort(values.to_numpy(dtype=float))
        steps = np.diff(ordered)
        if steps.size and steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-9, atol=0):
            return (
                f"target {y.name!r} looks like an identifier: its {len(values)} values are all "
                f"distinct and evenly spaced ({ordered[0]:g}, {ordered[1]:g}, ... "
                f"{ordered[-1]:g}), a row number rather than something to predict; choose "
                "another --target"
            )
        return ""
    distinct = int(values.astype(str).nunique())
    if distinct >= ID_UNIQUE_SHARE * len(values):
        return (
            f"target {y.name!r} looks like an identifier: {distinct} of its {len(values)} "
            "values are distinct, so no class repeats enough to be learnt; choose another "
            "--target"
        )
    return ""


def class_count(y: pd.Series, amounts_allowed: bool) -> int:
    """The target's distinct values. When amounts are allowed (task auto or regression), a
    long numeric target whose seeded sample already holds more than
    MAX_CLASSES_FOR_INTEGER_TARGET values is an amount whatever the exact count: the sample's
    count is returned (counting a million rows costs ~10 ms)."""
    if amounts_allowed and len(y) > DISTINCT_SAMPLE:
        seen = int(y.iloc[seeded_positions(len(y), DISTINCT_SAMPLE)].nunique())
        if seen > MAX_CLASSES_FOR_INTEGER_TARGET:
            return seen
    return int(y.nunique(dropna=True))


def whole_numbers(y: pd.Series) -> bool:
    """Integer class codes, also when missing values made the column float (1.0, 2.0, ...)."""
    values = y.dropna()
    return bool(ptypes.is_integer_dtype(y) or (values % 1 == 0).all())


def check_classes(y: pd.Series, task: str, n_classes: int) -> None:
    """Classification needs two classes (exactly two for binary), each with at least
    MIN_ROWS_PER_CLASS rows."""
    if n_classes < 2:
        only = str(y.dropna().iloc[0])
        raise BadInputError(
            f"target {y.name!r} has a single class {only!r} in all {len(y)} rows; "
            "classification needs at least two"
        )
    if task == "binary" and n_classes != 2:
        raise BadInputError(
            f"--task binary needs a target with two classes; {y.name!r} has {n_classes}"
        )
    if task == "multiclass" and n_classes < 3:
        raise BadInputError(
            f"--task multiclass needs at least three classes; {y.name!r} has {n_classes} "
            "(use --task binary)"
        )
    counts = y.value_counts()
    counts = counts[counts > 0]  # a categorical column lists categories it never uses
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if len(rare):
        raise BadInputError(
            f"target {y.name!r} class {str(rare.index[0])!r} has {int(rare.iloc[0])} row(s); "
            f"every class needs at least {MIN_ROWS_PER_CLASS} to reach the test split and "
            "each cross-validation fold"
        )


@dataclass(frozen=True)
class ColumnFacts:
    """Counts over every row of a column, computed once and shared by the role, the schema
    entry and the report (each of them on a million rows costs tens of milliseconds)."""

    kind: str  # logical_type: on an object column it looks at every value, so once
    non_null: int
    distinct: int
    counts: pd.Series | None  # value counts (as strings) of string and boolean columns
    sampled: bool = False  # distinct counted in a sample (numbers in a large table)


def column_facts(column: pd.Series) -> ColumnFacts:
    """Exact counts for strings and booleans (their categories matter); for numbers, the
    distinct values of a seeded sample of DISTINCT_SAMPLE rows (nothing downstream needs more
    than "one", "few" or "many"), exact when the sample shows a single value."""
    kind = logical_type(column)
    non_null = int(column.notna().sum())
    if kind in ("string", "boolean"):
        counts = column.dropna().astype(str).value_counts()
        return ColumnFacts(kind, non_null, len(counts), counts)
    if len(column) > DISTINCT_SAMPLE:
        distinct = int(column.iloc[seeded_positions(len(column), DISTINCT_SAMPLE)].nunique())
        if distinct > 1:
            return ColumnFacts(kind, non_null, distinct, None, sampled=True)
    return ColumnFacts(kind, non_null, int(column.nunique(dropna=True)), None)


def column_role(column: pd.Series, facts: ColumnFacts | None = None) -> str:
    """numeric, categorical, text, datetime; or empty, constant, id (these three are not used).

    Strings are told apart on a seeded sample: dates if nearly all parse as dates, text if they
    are long and wordy, an identifier if nearly every value is distinct, else categories."""
    facts = facts or column_facts(column)
    if facts.non_null == 0:
        return "empty"
    if facts.distinct <= 1:
        return "constant"
    kind = facts.kind
    if isinstance(column.dtype, pd.CategoricalDtype) and column.dtype.ordered:
        return "ordinal"  # levels with an order (pandas' ordered categories, from Parquet)
    if kind == "boolean":
        return "categorical"
    if kind in ("number", "datetime"):
        return "numeric" if kind == "number" else "datetime"
    wide = ROLE_SAMPLE * 4
    sample = column.iloc[seeded_positions(len(column), wide)] if len(column) > wide else column
    sample = sample.dropna()
    if sample.empty:
        sample = column.dropna()
    sample = sample.astype(str).iloc[:ROLE_SAMPLE]
    if sample.str.len().mean() >= TEXT_MIN_MEAN_LENGTH and (
        sample.str.count(r"\s+").mean() + 1 >= TEXT_MIN_MEAN_WORDS
    ):
        return "text"
    if looks_like_dates(sample):
        return "datetime"
    if facts.non_null > MIN_ROWS and facts.distinct > ID_UNIQUE_SHARE * facts.non_null:
        return "id"
    return "categorical"


def looks_like_dates(sample: pd.Series) -> bool:
    """Nearly all strings parse as dates (and are not plain numbers such as codes)."""
    # dateutil reads "1st" or "3" as days of this month: ask for two numbers joined the way
    # dates are written (2024-05-01, 01/05/2024, 10:30) or a month's name first.
    datelike = sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}|[A-Za-z]{3,9}\.? \d{1,2}", regex=True)
    if datelike.mean() < DATE_PARSE_SHARE:
        return False
    with warnings.catch_warnings():  # "could not infer format" is what this is probing
        warnings.simplefilter("ignore")
        # utc: offsets that change (daylight saving) are one column, not "mixed timezones"
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
    return bool(parsed.notna().mean() >= DATE_PARSE_SHARE)


def describe_column(column: pd.Series, role: str, facts: ColumnFacts | None = None) -> ColumnEntry:
    """Schema entry: type, role, nullability and the range or categories seen."""
    facts = facts or column_facts(column)
    missing = 1 - facts.non_null / len(column) if len(column) else 0.0
    entry: ColumnEntry = {
        "name": str(column.name),
        "type": facts.kind,
        "dtype": str(column.dtype),
        "role": role,
        "nullable": bool(missing > 0),
        "missing_fraction": round(missing, 6),
        "max_null_fraction": null_bound(missing),
        "distinct": facts.distinct,
    }
    if facts.sampled:
        entry["distinct_in_sample_of"] = DISTINCT_SAMPLE
    if role == "empty":  # no values, so no type to hold later data to
        del entry["type"]
    if role == "numeric" and entry["type"] == "number":
        entry["min"] = float(column.min())
        entry["max"] = float(column.max())
    elif role == "ordinal":
        if isinstance(column.dtype, pd.CategoricalDtype):
            entry["order"] = [str(level) for level in column.dtype.categories]
        elif facts.distinct <= MAX_ORDINAL_LEVELS:
            entry["order"] = natural_order(column.dropna().astype(str).unique().tolist())
    elif role == "categorical":
        counts = (
            facts.counts if facts.counts is not None else column.dropna().astype(str).value_counts()
        )
        if len(counts) <= MAX_CATEGORIES_LISTED:  # high-cardinality columns are not enumerated
            entry["categories"] = sorted(counts.index.tolist())
    return entry


def null_bound(observed: float) -> float:
    """The missing share a later batch may have before it is flagged: none if none was seen,
    else the observed share with head-room (half as much again, at least 5 points)."""
    if observed == 0:
        return 0.0
    return min(1.0, math.ceil((observed + max(0.05, observed / 2)) * 100) / 100)


def describe_feature(column: pd.Series) -> ColumnEntry:
    """A feature column's schema entry, with its role."""
    facts = column_facts(column)
    return describe_column(column, column_role(column, facts), facts)


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    task: str,
    described: list[ColumnEntry] | None = None,
    forecasting: bool = False,
) -> TableSchema:
    """The schema a later run can be checked against, with the role of every column
    (`described`: the feature columns' entries when the caller already made them). A
    forecasting run needs no feature column: the target's own history gives its features."""
    if len(frame) < MIN_ROWS:
        raise BadInputError(
            f"the data has {len(frame)} rows with a target value; at least {MIN_ROWS} are needed"
        )
    features = [c for c in frame.columns if c != target]
    columns = described if described is not None else [describe_feature(frame[n]) for n in features]
    usable = [c for c in columns if c["role"] in USED_ROLES]
    if not usable and not forecasting:
        raise BadInputError(
            f"the data has no usable feature column besides the target {target!r}; "
            f"columns: {', '.join(repr(c) for c in features) or 'none'}"
        )
    target_entry = describe_column(frame[target], "target")
    if task != "regression":
        counts = frame[target].astype(str).value_counts()
        target_entry["class_counts"] = {str(k): int(v) for k, v in counts.sort_index().items()}
    return {
        "version": 1,
        "target": target,
        "task": task,
        "rows": len(frame),
        "target_column": target_entry,
        "columns": columns,
    }


def infer_table_schema(
    frame: pd.DataFrame, target: str, requested_task: str, forecasting: bool = False
) -> TableSchema:
    """Resolve the task and infer the schema; BadInputError names the first blocking problem.

    The columns are described on two threads, beside the task: their counts run mostly in
    numpy and Arrow without the GIL (a million-row table is ~30% faster on two cores)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        entries = pool.map(describe_feature, [frame[c] for c in frame.columns if c != target])
        task = resolve_task(frame[target], requested_task)
        described = list(entries)
    return infer_schema(frame, target, task, described, forecasting)


def apply_roles(schema: TableSchema, reference: TableSchema | None) -> TableSchema:
    """The reference's roles win for columns it lists (a user marks a column `id` or `text`),
    except for columns that are now empty or constant, which cannot be used either way."""
    if reference is None:
        return schema
    roles = {c["name"]: c["role"] for c in reference["columns"]}
    for column in schema["columns"]:
        wanted = roles.get(column["name"])
        if wanted == "text" and column["role"] == "empty":
            raise BadInputError(
                f"text column {column['name']!r} (text in the schema) is empty in every row: "
                "no words to learn from; drop it or give it another role"
            )
        if not wanted or column["role"] in ("empty", "constant") or wanted == column["role"]:
            continue
        # a column whose type changed keeps the role its values allow (the change itself is
        # reported as a type_change anomaly)
        if wanted == "numeric" and column["type"] != "number":
            continue
        column["role"] = wanted
    return schema


def check_has_words(column: pd.Series, source: str) -> None:
    """A column given the role text must hold some words."""
    if not column.astype("string").str.strip().fillna("").str.len().any():
        raise BadInputError(
            f"text column {column.name!r} ({source}) is empty in all {len(column)} rows: no "
            "words to learn from; drop it or give it another role"
        )


def override_roles(schema: TableSchema, roles: dict[str, str], frame: pd.DataFrame) -> None:
    """The config's roles (--roles) win over the detected ones and the schema file's; each
    named column must exist, and a column of strings cannot be numeric."""
    from components.core.schema import USED_ROLES
    from components.validate.logic import describe_column

    entries = {c["name"]: position for position, c in enumerate(schema["columns"])}
    for name, role in roles.items():
        if name == schema["target"]:
            raise BadInputError(f"--roles cannot change the target {name!r}")
        if name not in entries:
            shown = ", ".join(repr(c) for c in list(frame.columns)[:20])
            raise BadInputError(
                f"--roles names a column the data lacks: {name!r}; columns: {shown}"
            )
        entry = schema["columns"][entries[name]]
        if role == "numeric" and entry.get("type") != "number":
            raise BadInputError(
                f"--roles cannot make {name!r} numeric: it holds {entry.get('type', 'nothing')}s"
            )
        if entry["role"] != role:
            # described again under the new role: categories listed, ranges kept, ...
            schema["columns"][entries[name]] = {**describe_column(frame[name], role), "role": role}
    for name, role in roles.items():
        if role == "text":
            check_has_words(frame[name], "--roles")
    used = [c for c in schema["columns"] if c["role"] in USED_ROLES]
    if roles and not used and not schema.get("timeseries"):
        raise BadInputError("--roles leaves no usable feature column besides the target")


def infer_checked_schema(
    frame: pd.DataFrame,
    target: str,
    requested_task: str,
    user_schema: TableSchema | None,
    forecast: TimeSeriesSetup | None = None,
) -> TableSchema:
    """The validate step: the task and schema of `frame`, with the roles (and the task, when
    `auto`) of the user's schema file if there is one. `forecast` is the checked time-series
    setup of a forecasting run (validate.timeseries.check_time_series): the task is then
    regression, and the schema carries the setup for the stages after it."""
    if forecast is not None:
        if requested_task not in ("auto", "regression"):
            raise BadInputError(
                f"forecasting (--time-column) predicts amounts: --task must be auto or "
                f"regression; got {requested_task!r}"
            )
        requested_task = "regression"

    from_file = ""
    if user_schema is not None:
        if user_schema.get("target") and user_schema["target"] != target:
            raise BadInputError(
                f"--schema file is for the target {user_schema['target']!r}, not --target "
                f"{target!r}"
            )
        if requested_task == "auto" and user_schema.get("task", "auto") != "auto":
            requested_task = user_schema["task"]
            from_file = f" (task {requested_task!r} from the --schema file)"
    try:
        schema = apply_roles(
            infer_table_schema(frame, target, requested_task, forecast is not None), user_schema
        )
    except BadInputError as error:
        raise BadInputError(f"{error}{from_file}") from error
    if forecast is not None:
        schema["timeseries"] = forecast
    elif not [c for c in schema["columns"] if c["role"] in USED_ROLES]:
        raise BadInputError(
            f"the --schema file's roles leave no usable feature column besides the target "
            f"{target!r} (roles {', '.join(USED_ROLES)} are used)"
        )
    schema["severities"] = dict(user_schema.get("severities", {})) if user_schema else {}
    return schema


def serving_schema(
    frame: pd.DataFrame, target: str, user_schema: TableSchema | None, time_column: str
) -> TableSchema:
    """The schema of rows to score, which lack the target column: the features inferred as
    for training, the task and the target's entry taken from the schema file that names the
    target (TFDV's serving environment). The checks that need the target are not made."""
    from concurrent.futures import ThreadPoolExecutor

    if user_schema is None or user_schema.get("target") != target:
        raise missing_column_error("--target", target, frame.columns)
    if time_column:
        raise BadInputError(
            f"a forecast's data needs its target column {target!r} (the history the lags come "
            "from); the data lacks it"
        )
    with ThreadPoolExecutor(max_workers=2) as pool:
        described = list(pool.map(describe_feature, [frame[c] for c in frame.columns]))
    schema = apply_roles(
        {
            "version": 1,
            "target": target,
            "task": user_schema.get("task", "auto"),
            "rows": len(frame),
            "target_column": user_schema.get("target_column"),
            "columns": described,
            "serving": True,
        },
        user_schema,
    )
    schema["severities"] = dict(user_schema.get("severities", {}))
    return schema


def validate_data(frame: pd.DataFrame, settings: RunConfig) -> TableSchema:
    """The validate stage: the task and the schema of `frame` (columns, types, roles), with
    the roles (and, for task auto, the task) of the settings' `schema` file when there is one,
    the `roles` override, and for a forecast (`time_column`) the checked time series. Data
    without the target column, when the schema file names that target, is validated as rows
    to score."""
    s = settings
    user_schema = load_schema(s.schema, s.s3_endpoint) if s.schema else None
    if s.target not in frame.columns:
        inferred = serving_schema(frame, s.target, user_schema, s.time_column)
    else:
        forecast = (
            check_time_series(
                frame, s.target, s.time_column, s.series_key, s.horizon, s.season, s.known_ahead
            )
            if s.time_column
            else None
        )
        inferred = infer_checked_schema(frame, s.target, s.task, user_schema, forecast)
    override_roles(inferred, parse_roles(s.roles), frame)
    return inferred
