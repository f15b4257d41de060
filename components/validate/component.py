"""KFP components of the validate stage: `validate` (task, schema, roles) and `check_quality`
(anomalies, drift, the policy). They are two steps so that a new champion, which changes the
quality reference, re-runs only the check: the training steps depend on the schema alone and
stay cached."""

from kfp.dsl import Artifact, Dataset, Input, Output

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
    from components.core.schema import load_schema
    from components.validate.logic import infer_checked_schema, override_roles
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
