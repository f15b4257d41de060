"""Data quality: anomalies with a severity, drift against the champion's data, and a verdict.

Checks against a schema (a committed schema file, else the champion's) run through pandera with
lazy validation, so every failure is collected, not just the first. Checks that need no schema
(duplicates, constant or empty columns, label imbalance, a leaking feature) run on the table.

Each anomaly has a kind and a severity (info < warning < error); the schema file can change the
severity of a kind. The policy `fail_on` decides which severity rejects the data:
`error` (default), `warning`, or `never` (report only).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from components.common.errors import DataRejected
from components.common.frames import count_duplicates
from components.common.readback import read_json_as
from components.common.settings import RunConfig, check_setting
from components.core.schema import DEFAULT_SEVERITY, SEVERITIES, ColumnEntry, TableSchema

__all__ = ["judge_quality"]

# A class this much rarer than the most common one is flagged.
IMBALANCE_RATIO = 0.1
# A feature this correlated with the target (or mapping each value to one class) leaks it.
LEAK_CORRELATION = 0.99
LEAK_MIN_ROWS_PER_VALUE = 5
EXAMPLES = 3
# Statistics that estimate a distribution (drift, the profile, leak correlations, the report's
# plots) use a seeded sample of this many rows; counts (nulls, ranges, categories, duplicates)
# use every row. 100,000 rows pin a PSI or a correlation far below the thresholds' spacing.
SAMPLE_ROWS = 100_000


def seeded_sample(frame: pd.DataFrame, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """At most `rows` rows of `frame` in table order, the same ones every time."""
    from components.common.frames import seeded_positions

    return frame if len(frame) <= rows else frame.take(seeded_positions(len(frame), rows))


@dataclass(frozen=True)
class Anomaly:
    column: str
    kind: str
    severity: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def examples(values: pd.Series) -> str:
    """A few distinct values as a user would write them (no np.float64(...) wrappers)."""
    plain = [v.item() if hasattr(v, "item") else v for v in pd.unique(values)[:EXAMPLES]]
    shown = ", ".join(repr(v) for v in plain)
    return f" (e.g. {shown})" if shown else ""


def misfits(column: pd.Series, expected: str | None) -> pd.Series:
    """The values of `column` that do not have the `expected` type (for the examples)."""
    values = column.dropna()
    if expected == "number":
        return values[pd.to_numeric(values, errors="coerce").isna()]
    if expected == "datetime":
        return values[pd.to_datetime(values, errors="coerce", format="mixed").isna()]
    return values


def anomaly(column: str, kind: str, detail: str, severities: dict[str, str]) -> Anomaly:
    return Anomaly(column, kind, severities.get(kind, DEFAULT_SEVERITY[kind]), detail)


# ---------------------------------------------------------------- checks against a schema


def pandera_schema(
    frame: pd.DataFrame, reference: TableSchema, observed: TableSchema | None = None
) -> Any:
    """A pandera DataFrameSchema for the reference's columns. Value checks (range, categories)
    are added only where the column still has its reference type: a type change is reported
    once as such, not as a million out-of-range values.

    `observed` is validate's schema of `frame`, whose statistics cover every row: a check its
    statistics already prove passes (same type, range inside the reference's, categories a
    subset, null share within the bound) is left out, so pandera scans only the columns that
    may fail and reports exactly which values do.
    """
    import pandera.pandas as pa

    from components.core.schema import logical_type

    seen = schema_entries(observed) if observed is not None else {}
    columns = {}
    for entry in [*reference["columns"], *filter(None, [reference.get("target_column")])]:
        name, expected = entry["name"], entry.get("type")
        now: Mapping[str, Any] = seen.get(name, {})
        checks = []
        if expected is not None and now.get("type") != expected:
            checks.append(
                pa.Check(
                    # an all-missing column has no type to change (it is reported as empty)
                    lambda s, t=expected: bool(s.isna().all()) or logical_type(s) == t,
                    name="type_change",
                )
            )
        # the observed schema has the column's logical type (object columns: a scan of every
        # value) except for an empty column
        now_type = now["type"] if "type" in now else column_type(frame, name)
        same_type = now_type == expected
        if (
            same_type
            and expected == "number"
            and ("min" in entry or "max" in entry)
            and not within_range(now, entry)
        ):
            low, high = entry.get("min", -np.inf), entry.get("max", np.inf)
            checks.append(
                pa.Check(
                    lambda s, lo=low, hi=high: s.between(lo, hi) | s.isna(),
                    name="out_of_range",
                )
            )
        allowed = entry.get("categories")
        if (
            name in frame.columns
            and allowed is not None
            and not set(now.get("categories", [None])) <= set(allowed)
        ):
            checks.append(
                pa.Check(
                    lambda s, a=set(allowed): s.isna() | categories_of(s).isin(a),
                    name="unseen_category",
                )
            )
        bound = entry.get("max_null_fraction")
        if bound is not None and not nulls_within(now, bound):
            checks.append(
                pa.Check(
                    lambda s, b=bound: bool(s.isna().mean() <= b + 1e-12),
                    name="null_fraction",
                    ignore_na=False,
                )
            )
        columns[name] = pa.Column(checks=checks, nullable=True, required=True, coerce=False)
    return pa.DataFrameSchema(columns, strict=True, ordered=False)


def column_type(frame: pd.DataFrame, name: str) -> str | None:
    """The logical type of a column of `frame`, None when it has no such column."""
    from components.core.schema import logical_type

    return logical_type(frame[name]) if name in frame.columns else None


def schema_entries(schema: TableSchema) -> dict[str, ColumnEntry]:
    """A schema's column entries (the target's too) by name."""
    entries = {e["name"]: e for e in schema["columns"]}
    if target := schema.get("target_column"):
        entries[target["name"]] = target
    return entries


def nulls_within(observed: Mapping[str, Any], bound: float) -> bool:
    """The observed missing share is within `bound`: exactly none (not nullable), or a share
    (rounded to 6 places) with that much to spare."""
    if observed.get("nullable") is False:
        return True
    return bool(observed.get("missing_fraction", 1.0) + 1e-6 <= bound)


def within_range(observed: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    """The observed minimum and maximum lie inside the reference entry's range."""
    if "min" not in observed or "max" not in observed:
        return False
    return bool(
        entry.get("min", -np.inf) <= observed["min"] and observed["max"] <= entry.get("max", np.inf)
    )


def categories_of(column: pd.Series) -> pd.Series:
    """Values as the strings the schema lists them by (True -> 'True', 3 -> '3')."""
    return column.astype(str)


def schema_anomalies(
    frame: pd.DataFrame,
    reference: TableSchema,
    severities: dict[str, str],
    observed: TableSchema | None = None,
) -> list[Anomaly]:
    """Every way `frame` breaks the reference schema, one anomaly per column and kind
    (`observed`: validate's schema of `frame`, see pandera_schema)."""
    import pandera.errors as pa_errors

    try:
        pandera_schema(frame, reference, observed).validate(frame, lazy=True)
    except pa_errors.SchemaErrors as errors:  # lazy=True: every failure, not just the first
        return failures_to_anomalies(errors.failure_cases, frame, reference, severities)
    return []


def failures_to_anomalies(
    failures: pd.DataFrame,
    frame: pd.DataFrame,
    reference: TableSchema,
    severities: dict[str, str],
) -> list[Anomaly]:
    """pandera's failure cases (one row per failing value) folded into one anomaly per column
    and kind, with counts and a few example values."""
    from components.core.schema import logical_type

    entries = schema_entries(reference)
    found: list[Anomaly] = []
    for (context, column, check), cases in failures.groupby(
        ["schema_context", "column", "check"], sort=False, dropna=False
    ):
        column, check = str(column), str(check)
        values = cases["failure_case"]
        if check == "column_in_dataframe":
            name = str(values.iloc[0])
            found.append(
                anomaly(name, "missing_column", "in the schema, not in the data", severities)
            )
        elif check == "column_in_schema":
            for name in values.astype(str):
                found.append(
                    anomaly(name, "extra_column", "in the data, not in the schema", severities)
                )
        elif check == "type_change":
            expected = entries[column].get("type")
            found.append(
                anomaly(
                    column,
                    "type_change",
                    f"was {expected}, now {logical_type(frame[column])} "
                    f"({frame[column].dtype}){examples(misfits(frame[column], expected))}",
                    severities,
                )
            )
        elif check == "out_of_range":
            entry = entries[column]
            found.append(
                anomaly(
                    column,
                    "out_of_range",
                    f"{len(cases)} value(s) outside [{entry.get('min', -np.inf):g}, "
                    f"{entry.get('max', np.inf):g}]{examples(values)}",
                    severities,
                )
            )
        elif check == "unseen_category":
            found.append(
                anomaly(
                    column,
                    "unseen_category",
                    f"{len(cases)} value(s) in {values.nunique()} unseen "
                    f"categor{'y' if values.nunique() == 1 else 'ies'}{examples(values)}",
                    severities,
                )
            )
        elif check == "null_fraction":
            missing = int(frame[column].isna().sum())
            bound = entries[column]["max_null_fraction"]
            found.append(
                anomaly(
                    column,
                    "null_fraction",
                    f"{missing} of {len(frame)} values missing ({missing / len(frame):.2%}); "
                    f"the schema allows {bound:.2%}",
                    severities,
                )
            )
        else:  # a check pandera itself adds; keep its words
            found.append(
                anomaly(column, "type_change", f"{context} {check}: {examples(values)}", severities)
            )
    return found


# ---------------------------------------------------------------- checks on the table itself


def table_anomalies(
    frame: pd.DataFrame,
    schema: TableSchema,
    severities: dict[str, str],
    sample: pd.DataFrame | None = None,
    duplicates: int | None = None,
    target_checks: bool = True,
) -> list[Anomaly]:
    """Anomalies that need no reference: duplicates (`duplicates` when already counted),
    and with `target_checks` (training data) unusable columns, imbalance and leaks (the last
    on `sample`, a seeded sample of the frame)."""
    target, task = schema["target"], schema["task"]
    found: list[Anomaly] = []
    if duplicates is None:
        duplicates = count_duplicates(frame)
    if duplicates:
        found.append(
            anomaly(
                "*",
                "duplicate_rows",
                f"{duplicates} row(s) repeat an earlier row ({duplicates / len(frame):.1%})",
                severities,
            )
        )
    # rows to score are not trained on: a column constant in a small batch drops nothing
    for column in schema["columns"] if target_checks else []:
        role = column["role"]
        if role == "empty":
            found.append(anomaly(column["name"], "empty_column", "no values; dropped", severities))
        elif role == "constant":
            found.append(
                anomaly(column["name"], "constant_column", "a single value; dropped", severities)
            )
        elif role == "id":
            found.append(
                anomaly(
                    column["name"], "id_column", "nearly all values distinct; dropped", severities
                )
            )
    if not target_checks:
        return found
    if task != "regression":
        counts = frame[target].value_counts()
        counts = counts[counts > 0]
        if len(counts) >= 2 and counts.iloc[-1] < IMBALANCE_RATIO * counts.iloc[0]:
            found.append(
                anomaly(
                    target,
                    "label_imbalance",
                    f"class {str(counts.index[-1])!r} has {int(counts.iloc[-1])} rows, "
                    f"class {str(counts.index[0])!r} {int(counts.iloc[0])}",
                    severities,
                )
            )
    found.extend(
        leak_anomalies(seeded_sample(frame) if sample is None else sample, schema, severities)
    )
    return found


def leak_anomalies(
    frame: pd.DataFrame, schema: TableSchema, severities: dict[str, str]
) -> list[Anomaly]:
    """Features that give the target away: a numeric one correlated with it at |r| >= 0.99, or
    a categorical one whose every value (seen at least 5 times) goes with a single class or
    target value."""
    target = schema["target"]
    y = frame[target]
    y_codes = (
        y.astype(float)
        if ptypes.is_numeric_dtype(y) and not ptypes.is_bool_dtype(y)
        else pd.Series(pd.factorize(y)[0], index=y.index, dtype=float)
    )
    y_numbers = y_codes.to_numpy(dtype=float, na_value=np.nan)
    categorical = any(c["role"] == "categorical" for c in schema["columns"])
    y_classes = pd.factorize(y_codes)[0].astype(np.int64) if categorical else np.empty(0)
    found = []
    # a forecast's time column and series keys are not model inputs: a trend is no leak
    settings = schema.get("timeseries")
    skipped = {settings["time_column"], *settings["series_keys"]} if settings else set()
    for column in schema["columns"]:
        name, role = column["name"], column["role"]
        if name in skipped:
            continue
        if role == "numeric":
            r = correlation(frame[name].to_numpy(dtype=float, na_value=np.nan), y_numbers)
            if pd.notna(r) and abs(r) >= LEAK_CORRELATION:
                found.append(
                    anomaly(
                        name,
                        "target_leak",
                        f"correlation with {target!r} is {r:.4f}",
                        severities,
                    )
                )
        elif role == "categorical":
            values = pure_values(frame[name], y_classes)
            if values:
                found.append(
                    anomaly(
                        name,
                        "target_leak",
                        f"each of its {values} values goes with a single value of {target!r}",
                        severities,
                    )
                )
    return found


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r over the rows where both are finite; NaN when either is constant.

    Summed elementwise, not through a BLAS dot product: a BLAS call wakes OpenBLAS's thread
    pool, whose threads then spin for a while and take a core from the checks running beside
    this one (a third of check_data's CPU time on a million rows)."""
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    if len(x) < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    # scaled to at most 1 first, so squares of 1e200 or 1e-200 neither overflow nor vanish
    x_scale, y_scale = np.abs(dx).max(), np.abs(dy).max()
    if not (x_scale > 0 and y_scale > 0):
        return float("nan")
    dx, dy = dx / x_scale, dy / y_scale
    spread = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    return float(np.sum(dx * dy) / spread)


def pure_values(column: pd.Series, y_classes: np.ndarray) -> int:
    """How many values `column` has when each (seen at least LEAK_MIN_ROWS_PER_VALUE times)
    goes with a single target value (`y_classes`: the target's codes, -1 for missing); else 0.
    Counted on integer codes: a value is pure when the distinct (value, target) pairs are as
    many as the values (a groupby's nunique is ten times slower)."""
    codes = pd.factorize(column.astype(str))[0]
    both = (codes >= 0) & (y_classes >= 0)
    codes, classes = codes[both].astype(np.int64), y_classes[both]
    sizes = np.bincount(codes)
    sizes = sizes[sizes > 0]
    if len(sizes) < 2 or sizes.min() < LEAK_MIN_ROWS_PER_VALUE:
        return 0
    pairs = len(pd.unique(codes * (int(classes.max()) + 1) + classes))
    return len(sizes) if pairs == len(sizes) else 0


# ---------------------------------------------------------------- the verdict


def roles_of(schema: TableSchema) -> dict[str, str]:
    """Column -> role for the roles drift is measured on."""
    return {
        c["name"]: c["role"]
        for c in schema["columns"]
        if c["role"] in ("numeric", "categorical", "text", "datetime")
    }


def verdict_of(anomalies: list[Anomaly], fail_on: str) -> str:
    """fail when an anomaly reaches the policy's severity; warn when any warning; else pass."""
    levels = [SEVERITIES.index(a.severity) for a in anomalies]
    if fail_on != "never" and any(level >= SEVERITIES.index(fail_on) for level in levels):
        return "fail"
    return "warn" if any(level >= SEVERITIES.index("warning") for level in levels) else "pass"


def assess(
    frame: pd.DataFrame,
    schema: TableSchema,
    reference_schema: TableSchema | None,
    reference_profile: dict[str, Any] | None,
    fail_on: str = "error",
    rows_dropped_missing_target: int = 0,
    duplicates: int | None = None,
    unreadable_records: int = 0,
) -> dict[str, Any]:
    """The data-quality verdict of `frame` (already validated into `schema`); `duplicates` is
    the duplicate-row count when ingest already took it; `unreadable_records` the records of a
    stream ingest could not read as a row."""
    from components.check_quality.drift import SortedNumbers, data_profile, drift_report

    severities = dict(reference_schema.get("severities", {})) if reference_schema else {}
    anomalies: list[Anomaly] = []
    if rows_dropped_missing_target:
        anomalies.append(
            anomaly(
                schema["target"],
                "missing_target",
                f"{rows_dropped_missing_target} row(s) without a target value dropped",
                severities,
            )
        )
    if unreadable_records:
        anomalies.append(
            anomaly(
                "*",
                "unreadable_records",
                f"{unreadable_records} record(s) of the stream were not a row (not a JSON "
                "object, or not a CSV line of the named columns) and were left out",
                severities,
            )
        )
    # rows to score have no target column: nothing about the target can be checked
    serving = schema["target"] not in frame.columns
    if serving and reference_schema is not None:
        reference_schema = {**reference_schema, "target_column": None}
    sample = seeded_sample(frame)
    roles = roles_of(schema)
    drift: dict[str, Any] = {"verdict": "no_reference", "top": [], "columns": []}
    numbers = SortedNumbers(sample)
    # The passes mostly run in numpy and pyarrow without the GIL (hashing every row for
    # duplicates, pandera's checks, sorting the sample's numbers): they share two cores.
    with ThreadPoolExecutor(max_workers=3) as pool:
        counted = pool.submit(count_duplicates, frame) if duplicates is None else None
        schema_checks = (
            pool.submit(schema_anomalies, frame, reference_schema, severities, schema)
            if reference_schema is not None
            else None
        )
        profiled = pool.submit(data_profile, sample, roles, numbers)
        found = table_anomalies(
            frame,
            schema,
            severities,
            sample,
            counted.result() if counted else duplicates,
            target_checks=not serving,
        )
        profile = profiled.result()  # the drift tests reuse the profile's sorted numbers
        if reference_profile is not None:
            drift = drift_report(reference_profile, sample, roles, numbers)
        anomalies.extend(schema_checks.result() if schema_checks is not None else [])
        anomalies.extend(found)
    if drift["verdict"] == "drift":
        anomalies.append(
            anomaly(
                "*",
                "drift",
                f"{drift['drifted_share']:.0%} of columns drifted from the champion's data; "
                f"most: {', '.join(drift['top'][:3])}",
                severities,
            )
        )
    order = {severity: -i for i, severity in enumerate(SEVERITIES)}
    anomalies.sort(key=lambda a: (order[a.severity], a.kind, a.column))
    return {
        "verdict": verdict_of(anomalies, fail_on),
        "fail_on": fail_on,
        "counts": {s: sum(a.severity == s for a in anomalies) for s in SEVERITIES},
        "anomalies": [a.as_dict() for a in anomalies],
        "drift": drift,
        "profile": profile,
        # rows to score (no target column) skip the checks of the target
        "environment": "serving" if serving else "training",
        "skipped_checks": list(SKIPPED_WHEN_SERVING) if serving else [],
    }


def first_blocking(quality: dict[str, Any]) -> str:
    """The first anomaly that made the policy reject the data, and how many more did."""
    blocking = [
        a
        for a in quality["anomalies"]
        if SEVERITIES.index(a["severity"]) >= SEVERITIES.index(quality["fail_on"])
    ]
    first = blocking[0]
    more = f" and {len(blocking) - 1} more" if len(blocking) > 1 else ""
    return f"{first['kind']} in {first['column']!r}: {first['detail']}{more}"


def rejection_message(quality: dict[str, Any], report: str) -> str:
    """One line: why the data was rejected and where the report is."""
    return (
        f"data rejected by the quality policy (fail on {quality['fail_on']}): "
        f"{first_blocking(quality)}; report: {report}"
    )


# ---------------------------------------------------------------- the stage


@dataclass(frozen=True)
class Reference:
    """What new data is checked against: a schema (the user's file, else the champion's) and
    the champion's data profile for drift."""

    schema: TableSchema | None
    profile: dict[str, Any] | None
    origin: str
    # the user's own file: its roles and task also shape the schema (the champion's do not,
    # so that a new champion never changes what the training stages are given)
    from_user: bool = True


def load_reference(schema_uri: str, registry: str, endpoint: str = "") -> Reference:
    """The user's schema file if given; the champion's schema and data profile if the registry
    has a champion (promote stores both beside the model); otherwise nothing."""
    from components.check_quality.drift import DataProfile
    from components.core.registry import PROFILE_FILE, SCHEMA_FILE, champion_attachments
    from components.core.schema import load_schema, parse_schema

    schema = load_schema(schema_uri, endpoint) if schema_uri else None
    origin = schema_uri
    from_user = schema is not None
    profile = None
    champion = champion_attachments(registry, endpoint) if registry else None
    if champion is not None:
        version, files = champion
        if PROFILE_FILE in files:  # a champion promoted before profiles were kept has none
            where = f"{registry}/versions/{version}/{PROFILE_FILE}"
            profile = dict(
                read_json_as(files[PROFILE_FILE], DataProfile, f"the data profile {where!r}")
            )
            if schema is None and SCHEMA_FILE in files:
                where = f"{registry}/versions/{version}/{SCHEMA_FILE}"
                schema = parse_schema(files[SCHEMA_FILE], where)
                origin = f"champion {version}"
    return Reference(schema, profile, origin or "none", from_user)


def judge_data(
    frame: pd.DataFrame,
    schema: TableSchema,
    reference: Reference,
    fail_on: str = "error",
    rows_dropped_missing_target: int = 0,
    duplicates: int | None = None,
    unreadable_records: int = 0,
) -> dict[str, Any]:
    """The quality step: the verdict on `frame` (validated into `schema`) against `reference`;
    `duplicates` is ingest's duplicate-row count when it took one."""
    check_setting("fail_on", fail_on)
    quality = assess(
        frame,
        schema,
        reference.schema,
        reference.profile,
        fail_on,
        rows_dropped_missing_target,
        duplicates,
        unreadable_records,
    )
    quality["reference"] = reference.origin
    return quality


SKIPPED_WHEN_SERVING = (
    "missing_target",
    "label_imbalance",
    "target_leak",
    "the target's schema",
    "constant_column",
    "empty_column",
    "id_column",
)


def judge_quality(
    frame: pd.DataFrame,
    table_schema: TableSchema,
    report: str | Path,
    settings: RunConfig,
    rows_dropped_missing_target: int = 0,
    duplicates: int | None = None,
    unreadable_records: int = 0,
) -> dict[str, Any]:
    """The check_quality stage: the verdict on `frame` (validated into `table_schema`) against
    the settings' `schema` file, else the champion's schema, and the champion's data (drift);
    the HTML report is written to `report`, and DataRejected raised (after it is written) when
    the `fail_on` policy rejects the data. `duplicates` is ingest's duplicate-row count when
    it took one. Rows without the target column (rows to score) skip the checks that need
    it."""
    from components.check_quality.report import render_report
    from components.core.registry import settings_registry

    champion = settings_registry(settings)
    reference = load_reference(settings.schema, champion, settings.s3_endpoint)
    verdict = judge_data(
        frame,
        table_schema,
        reference,
        settings.fail_on,
        rows_dropped_missing_target,
        duplicates,
        unreadable_records,
    )
    partial = Path(report).with_name(Path(report).name + ".partial")
    partial.write_text(render_report(frame, table_schema, verdict), encoding="utf-8")
    partial.replace(report)
    if verdict["verdict"] == "fail":
        raise DataRejected(
            rejection_message(verdict, str(report)),
            details={"kind": "data_rejected", "report": str(report), "quality": verdict},
        )
    return verdict
