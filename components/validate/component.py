"""KFP component of the validate stage."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def validate(
    dataset: Input[Dataset],
    target: str,
    task: str,
    schema: Output[Artifact],
    quality: Output[Artifact],
    quality_report: Output[HTML],
    schema_file: str = "",
    registry: str = "",
    s3_endpoint: str = "",
    fail_on: str = "error",
    reference_version: str = "",
) -> str:
    """Check the target suits the task, infer the schema and column roles, and judge the data's
    quality against a schema (the user's file, else the champion's) and the champion's data.

    Args:
        dataset: The ingested table.
        target: The column to predict.
        task: auto, binary, multiclass or regression; auto infers it from the target (or takes
            the schema file's task).
        schema: JSON schema of the table: columns, types, roles, nullability, ranges, categories.
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
        reference_version: The champion version the caller saw (part of the cache key, so a new
            champion means a new check); not read otherwise.

    Returns:
        The resolved task: binary, multiclass or regression.
    """
    import json

    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.validate.quality import (
        DataRejected,
        check_data,
        load_reference,
        rejection_message,
    )
    from components.validate.report import render_report

    with stage("validate") as log:
        frame = read_frame(dataset.path)
        reference = load_reference(schema_file, registry, s3_endpoint)
        dropped = int(dataset.metadata.get("rows_dropped_missing_target", 0))
        inferred, verdict = check_data(frame, target, task, reference, fail_on, dropped)
        with open(schema.path, "w", encoding="utf-8") as handle:
            json.dump(inferred, handle, indent=2)
        with open(quality.path, "w", encoding="utf-8") as handle:
            json.dump(verdict, handle, indent=2, default=str)
        with open(quality_report.path, "w", encoding="utf-8") as handle:
            handle.write(render_report(frame, inferred, verdict))
        for anomaly in verdict["anomalies"]:
            log.log("anomaly", **anomaly)
        roles = [c["role"] for c in inferred["columns"]]
        schema.metadata.update({"task": inferred["task"], "rows": inferred["rows"]})
        quality.metadata.update({"verdict": verdict["verdict"], **verdict["counts"]})
        log.log(
            "validated",
            task=inferred["task"],
            rows=inferred["rows"],
            verdict=verdict["verdict"],
            drift=verdict["drift"]["verdict"],
            **{f"{role}_columns": roles.count(role) for role in sorted(set(roles))},
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
        return str(inferred["task"])
