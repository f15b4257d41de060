"""The schema: the contract between the data and the stages, and the file a user commits.

`TableSchema` is what the validate stage infers and every later stage reads (the columns with
their type and role, the target, the task, a forecast's setup), typed so that a key read by
name is a key that exists; `read_table_schema` checks the artifact it is read from.

The schema file a user commits is written from the first run's inferred schema and read back
(and checked) by later runs. The file is YAML meant for people: one entry per column with its
type, role, how many missing values it may have, and the range or categories it was seen with.
Editing it is how a user tightens or loosens the checks; `severities` turns a kind of anomaly
into an error (fails the run), a warning or info.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NotRequired, cast

import pandas as pd
import yaml
from pandas.api import types as ptypes

# typing_extensions, not typing: pydantic reads these TypedDicts only from there on Python 3.11
from typing_extensions import TypedDict

from components.common.errors import BadInputError, closest_names
from components.common.readback import parse_json, parse_yaml
from components.common.storage import MissingObject, open_parent

SCHEMA_VERSION = 1
TYPES = ("number", "boolean", "datetime", "string")
HEADER = """\
# stablepipe data schema. Commit this file and pass it with --schema: every later run is
# checked against it (missing or extra columns, type changes, values out of range, unseen
# categories, more missing values than max_null_fraction).
# Edit it freely: role (numeric, categorical, text, datetime, id = not used), min/max,
# categories (delete the list to allow any), max_null_fraction (0 to 1), and under
# `severities` make a kind of anomaly an `error` (fails the run), a `warning` or `info`.
"""
COLUMN_KEYS = ("name", "type", "role", "nullable", "max_null_fraction", "min", "max", "categories")


class ColumnEntry(TypedDict):
    """One column of a schema: a feature's or the target's."""

    name: str
    role: str  # ROLES, or "target" in a schema file
    type: NotRequired[str]  # TYPES; none for a column with no values
    dtype: NotRequired[str]
    nullable: NotRequired[bool]
    missing_fraction: NotRequired[float]
    max_null_fraction: NotRequired[float]  # the missing share a later batch may have
    distinct: NotRequired[int]
    distinct_in_sample_of: NotRequired[int]  # distinct counted in a sample of this many rows
    min: NotRequired[float]
    max: NotRequired[float]
    order: NotRequired[list[str]]  # an ordinal column's levels, lowest first
    categories: NotRequired[list[str]]
    class_counts: NotRequired[dict[str, int]]  # the target of a classification


class TimeSeriesSetup(TypedDict):
    """A forecast's setup, checked by the validate stage."""

    time_column: str
    series_keys: list[str]
    horizon: int
    season: int
    frequency: str
    step: float
    series: int
    known_ahead: NotRequired[list[str]]  # same-row columns; the other covariates are lagged


class TableSchema(TypedDict):
    """The schema of a table (inferred by validate, or read from a schema file)."""

    version: int
    target: str
    task: str
    columns: list[ColumnEntry]
    target_column: ColumnEntry | None
    severities: NotRequired[dict[str, str]]  # anomaly kind -> severity (from a schema file)
    rows: NotRequired[int]
    timeseries: NotRequired[TimeSeriesSetup]
    serving: NotRequired[Literal[True]]  # rows to score: the data has no target column


# pydantic's config of the three (read when an artifact is checked; set here rather than with
# pydantic's decorator so that importing the schema does not import pydantic): a key they do not
# declare is an error, never dropped without a word.
for declared in (ColumnEntry, TimeSeriesSetup, TableSchema):
    setattr(declared, "__pydantic_config__", {"extra": "forbid"})  # noqa: B010


def read_table_schema(path: str | Path) -> TableSchema:
    """The validate stage's schema artifact, checked against TableSchema (a file that is not
    one is an internal failure naming the file and the first problem)."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(TableSchema).validate_json(Path(path).read_bytes())
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{str(path)!r} is not a table schema: {where}: {first['msg']}") from error


def schema_document(schema: TableSchema) -> dict[str, Any]:
    """The parts of an inferred schema a user reads and edits (no run-specific counts)."""
    entry = schema["target_column"]  # a serving schema may have none of its own
    target = [] if entry is None else [{**entry, "role": "target"}]
    columns = [
        {key: column[key] for key in COLUMN_KEYS if key in column}
        for column in [*schema["columns"], *target]
    ]
    return {
        "version": SCHEMA_VERSION,
        "target": schema["target"],
        "task": schema["task"],
        "columns": columns,
        "severities": dict(schema.get("severities", {})),
    }


def dump_schema(schema: TableSchema, name: str = "schema.yaml") -> str:
    """The schema as commented YAML, columns in table order (JSON for a `.json` name, which
    parse_schema reads back as JSON)."""
    if PurePosixPath(name).suffix == ".json":
        return json.dumps(schema_document(schema), indent=2) + "\n"
    body = yaml.safe_dump(schema_document(schema), sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


def load_schema(uri: str, endpoint: str = "") -> TableSchema:
    """Read and check a schema file (YAML or JSON) from a local path or s3:// URI."""
    store, name = open_parent(uri, endpoint)
    try:
        data = store.get_bytes(name)
    except MissingObject as error:
        raise BadInputError(f"--schema file does not exist: {uri!r}") from error
    return parse_schema(data, uri)


def parse_schema(data: bytes | str, uri: str) -> TableSchema:
    """A schema document from YAML/JSON text, every field checked, errors naming the field."""
    shown = f"--schema file {uri!r}"
    json_file = PurePosixPath(uri).suffix == ".json"
    document = parse_json(data, shown) if json_file else parse_yaml(data, shown)
    if not isinstance(document, dict) or not isinstance(document.get("columns"), list):
        raise BadInputError(f"--schema file {uri!r} must be a mapping with a `columns` list")
    if document.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise BadInputError(
            f"--schema file {uri!r} has version {document.get('version')!r}; this stablepipe "
            f"reads version {SCHEMA_VERSION}"
        )
    columns = [check_column(entry, index, uri) for index, entry in enumerate(document["columns"])]
    names = [c["name"] for c in columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadInputError(f"--schema file {uri!r} lists the column {repeated[0]!r} twice")
    targets = [c["name"] for c in columns if c["role"] == "target"]
    target = str(document.get("target") or (targets[0] if targets else ""))
    return {
        "version": SCHEMA_VERSION,
        "target": target,
        "task": str(document.get("task", "auto")),
        "columns": [c for c in columns if c["name"] != target],
        "target_column": next((c for c in columns if c["name"] == target), None),
        "severities": check_severities(document.get("severities") or {}, uri),
    }


def check_column(entry: Any, index: int, uri: str) -> ColumnEntry:
    """One column entry: known keys, a role and type we know, numbers where numbers go."""
    from components.core.schema import ROLES

    where = f"--schema file {uri!r} column #{index + 1}"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str | int):
        raise BadInputError(f"{where} must be a mapping with a `name`; got {entry!r}")
    column = {**entry, "name": str(entry["name"])}
    where = f"--schema file {uri!r} column {column['name']!r}"
    unknown = sorted(set(column) - set(COLUMN_KEYS) - {"dtype", "missing_fraction", "distinct"})
    if unknown:
        hint = closest_names(unknown[0], COLUMN_KEYS)
        suffix = f"; did you mean {hint[0]!r}?" if hint else ""
        raise BadInputError(f"{where} has an unknown key {unknown[0]!r}{suffix}")
    role = column.setdefault("role", "numeric" if column.get("type") == "number" else "categorical")
    if role not in (*ROLES, "target"):
        raise BadInputError(f"{where} has role {role!r}; expected one of {', '.join(ROLES)}")
    if "type" in column and column["type"] not in TYPES:
        raise BadInputError(
            f"{where} has type {column['type']!r}; expected one of {', '.join(TYPES)}"
        )
    for key in ("min", "max", "max_null_fraction"):
        value = column.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadInputError(f"{where} key {key!r} must be a number; got {value!r}")
    low, high = column.get("min"), column.get("max")
    if low is not None and high is not None and not low <= high:
        raise BadInputError(f"{where} has min {low!r} above max {high!r}")
    bound = column.get("max_null_fraction")
    if bound is not None and not 0 <= bound <= 1:
        raise BadInputError(f"{where} max_null_fraction must be between 0 and 1; got {bound!r}")
    categories = column.get("categories")
    if categories is not None:
        if not isinstance(categories, list):
            raise BadInputError(f"{where} categories must be a list; got {categories!r}")
        column["categories"] = [str(value) for value in categories]
    return cast(ColumnEntry, column)  # every key checked above


def check_severities(severities: Any, uri: str) -> dict[str, str]:
    """`{anomaly kind: error|warning|info}` with known kinds only."""
    from components.core.schema import ANOMALY_KINDS, SEVERITIES

    if not isinstance(severities, dict):
        raise BadInputError(
            f"--schema file {uri!r} severities must be a mapping; got {severities!r}"
        )
    checked: dict[str, str] = {}
    for kind, severity in severities.items():
        if kind not in ANOMALY_KINDS:
            hint = closest_names(str(kind), ANOMALY_KINDS)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise BadInputError(
                f"--schema file {uri!r} severities has an unknown anomaly kind {kind!r}{suffix}"
            )
        if severity not in SEVERITIES:
            raise BadInputError(
                f"--schema file {uri!r} severity of {kind!r} must be one of "
                f"{', '.join(SEVERITIES)}; got {severity!r}"
            )
        checked[str(kind)] = str(severity)
    return checked


USED_ROLES = ("numeric", "categorical", "ordinal", "text", "datetime")


ROLES = ("numeric", "categorical", "ordinal", "text", "datetime", "id", "constant", "empty")


def natural_order(values: list[Any]) -> list[Any]:
    """Levels in their natural order: by number when all are numbers ('2' before '10'), else
    as strings."""
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        return sorted(values, key=str)


def feature_columns(schema: TableSchema, role: str) -> list[str]:
    """Names of the schema's columns with the given role, in table order."""
    return [c["name"] for c in schema["columns"] if c["role"] == role]


SEVERITIES = ("info", "warning", "error")


DEFAULT_SEVERITY = {
    "missing_column": "error",
    "type_change": "error",
    "target_leak": "error",
    "extra_column": "warning",
    "out_of_range": "warning",
    "unseen_category": "warning",
    "null_fraction": "warning",
    "duplicate_rows": "warning",
    "constant_column": "warning",
    "empty_column": "warning",
    "id_column": "info",
    "label_imbalance": "warning",
    "drift": "warning",
    "missing_target": "info",
    "unreadable_records": "warning",
}


ANOMALY_KINDS = tuple(DEFAULT_SEVERITY)


def input_columns(schema: TableSchema) -> list[str]:
    """The columns the model reads: the schema's numeric, categorical and text ones, in table
    order; a forecast also reads the time column, the series keys and the target (its
    history: the lags come from it)."""
    used = [c["name"] for c in schema["columns"] if c["role"] in USED_ROLES]
    settings = schema.get("timeseries")
    if not settings:
        return used
    needed = {settings["time_column"], *settings["series_keys"]}
    order = [c["name"] for c in schema["columns"]]
    return [c for c in order if c in needed or c in used] + [schema["target"]]


OBJECT_KINDS = {
    "boolean": "boolean",
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


def logical_type(column: pd.Series) -> str:
    """The type a schema checks, loose enough that a gap is no change (integers turned floats,
    booleans held as objects beside None): number, boolean, datetime or string."""
    if ptypes.is_bool_dtype(column):
        return "boolean"
    if ptypes.is_numeric_dtype(column):
        return "number"
    if ptypes.is_datetime64_any_dtype(column):
        return "datetime"
    if column.dtype == object:  # Python objects: what the non-missing values are
        kind = ptypes.infer_dtype(column, skipna=True)
        return OBJECT_KINDS.get(kind, "string")
    return "string"
