"""KFP components of the validate stage: `validate` (task, schema, roles) and `check_quality`
(anomalies, drift, the policy). They are two steps so that a new champion, which changes the
quality reference, re-runs only the check: the training steps depend on the schema alone and
stay cached."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def validate(
    dataset: Input[Dataset],
    target: str,
    task: str,
    schema: Output[Artifact],
    schema_file: str = "",
    schema_version: str = "",
    s3_endpoint: str = "",
    roles: str = "",
    time_column: str = "",
    series_columns: str = "",
    horizon: int = 1,
    season: int = 0,
) -> str:
    """Check the target suits the task; infer the schema and column roles.

    Args:
        dataset: The ingested table.
        target: The column to predict.
        task: auto, binary, multiclass or regression; auto infers it from the target (or takes
            the schema file's task).
        schema: JSON schema of the table: columns, types, roles, nullability, ranges, categories.
        schema_file: The user's schema YAML/JSON (local path or s3:// URI); its roles win over
            the inferred ones. Empty = none.
        schema_version: A digest of the schema file's content, computed by the caller (part of
            the cache key, so an edited file is never served from cache); not read otherwise.
        s3_endpoint: The S3 endpoint when the schema file is on S3.
        roles: column=role pairs, comma-separated, that override the detected (and the schema
            file's) roles: numeric, categorical, ordinal, text, datetime or id. Empty = none.
        time_column: Forecasting: the column of dates or time steps. Empty = not a forecast.
        series_columns: Forecasting: the column(s), comma-separated, that name each series.
        horizon: Forecasting: how many steps ahead the model predicts.
        season: Forecasting: steps per season; 0 = from the data's frequency.

    Returns:
        The resolved task: binary, multiclass or regression.
    """
    import json

    from components.common.config import parse_roles
    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.validate.quality import infer_checked_schema, override_roles
    from components.validate.schema_file import load_schema
    from components.validate.timeseries import check_time_series

    with stage("validate") as log:
        frame = read_frame(dataset.path)
        user_schema = load_schema(schema_file, s3_endpoint) if schema_file else None
        forecast = (
            check_time_series(frame, target, time_column, series_columns, horizon, season)
            if time_column
            else None
        )
        inferred = infer_checked_schema(frame, target, task, user_schema, forecast)
        override_roles(inferred, parse_roles(roles), frame)
        with open(schema.path, "w", encoding="utf-8") as handle:
            json.dump(inferred, handle, indent=2)
        found = [c["role"] for c in inferred["columns"]]
        schema.metadata.update({"task": inferred["task"], "rows": inferred["rows"]})
        log.log(
            "validated",
            task=inferred["task"],
            rows=inferred["rows"],
            **{f"{role}_columns": found.count(role) for role in sorted(set(found))},
        )
        return str(inferred["task"])


@stage_component
def check_quality(
    dataset: Input[Dataset],
    schema: Input[Artifact],
    quality: Output[Artifact],
    quality_report: Output[HTML],
    schema_file: str = "",
    registry: str = "",
    s3_endpoint: str = "",
    fail_on: str = "error",
    reference_version: str = "",
):
    """Judge the data's quality against a schema (the user's file, else the champion's) and
    the champion's data; stop the run when the policy rejects it.

    Args:
        dataset: The ingested table.
        schema: validate's schema of the table.
        quality: JSON verdict: {verdict, anomalies: [{column, kind, severity, detail}], drift,
            profile}.
        quality_report: The data-quality report (HTML).
        schema_file: A schema YAML/JSON file (local path or s3:// URI) to check the data
            against; empty = the champion's schema when there is a champion.
        registry: The model registry; its champion's schema and data profile are the
            reference for schema checks and drift.
        s3_endpoint: The S3 endpoint when the registry or schema file is on S3.
        fail_on: The policy: `error` rejects data with any error-level anomaly, `warning` also
            with warnings, `never` only reports.
        reference_version: The champion version and schema digest the caller saw (part of the
            cache key, so a new champion means a new check); not read otherwise.
    """
    import json

    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.validate.quality import (
        DataRejected,
        judge_data,
        load_reference,
        rejection_message,
    )
    from components.validate.report import render_report

    with stage("check_quality") as log:
        frame = read_frame(dataset.path)
        with open(schema.path, encoding="utf-8") as handle:
            validated = json.load(handle)
        reference = load_reference(schema_file, registry, s3_endpoint)
        dropped = int(dataset.metadata.get("rows_dropped_missing_target", 0))
        counted = dataset.metadata.get("duplicate_rows")  # ingest counts them as it writes
        duplicates = None if counted is None else int(counted)
        verdict = judge_data(frame, validated, reference, fail_on, dropped, duplicates)
        with open(quality.path, "w", encoding="utf-8") as handle:
            json.dump(verdict, handle, indent=2, default=str)
        with open(quality_report.path, "w", encoding="utf-8") as handle:
            handle.write(render_report(frame, validated, verdict))
        for anomaly in verdict["anomalies"]:
            log.log("anomaly", **anomaly)
        quality.metadata.update({"verdict": verdict["verdict"], **verdict["counts"]})
        log.log(
            "checked",
            verdict=verdict["verdict"],
            drift=verdict["drift"]["verdict"],
            reference=verdict["reference"],
            **verdict["counts"],
        )
        if verdict["verdict"] == "fail":
            raise DataRejected(
                rejection_message(verdict, quality_report.path),
                details={
                    "kind": "data_rejected",
                    "report": quality_report.path,
                    "quality": verdict,
                },
            )
