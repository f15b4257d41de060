"""KFP component of the check_quality stage."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from components.common.kfp_component import stage_component


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

    from components.check_quality.logic import judge_data, load_reference, rejection_message
    from components.check_quality.report import render_report
    from components.common.errors import DataRejected
    from components.common.frames import read_frame
    from components.common.stage import stage

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
