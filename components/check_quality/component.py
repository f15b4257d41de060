"""KFP component of the check_quality stage: anomalies, drift and the policy's verdict."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def check_quality(
    dataset: Input[Dataset],
    table_schema: Input[Artifact],
    target: str,
    schema: str,
    registry: str,
    model_name: str,
    store: str,
    s3_endpoint: str,
    fail_on: str,
    reference_version: str,
    quality: Output[Artifact],
    quality_report: Output[HTML],
):
    """Judge the data's quality against a schema (the user's file, else the champion's) and
    the champion's data; stop the run when the policy rejects it.

    Args:
        dataset: The ingested table.
        table_schema: validate's schema of the table.
        reference_version: The champion version and schema digest the runner saw (part of the
            cache key, so a new champion means a new check); not read.
        quality: JSON verdict: {verdict, anomalies: [{column, kind, severity, detail}], drift,
            profile}.
        quality_report: The data-quality report (HTML).
    """
    import json

    from components.check_quality.logic import judge_quality
    from components.common.frames import read_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.core.schema import read_table_schema

    settings = settings_in(locals())
    with stage("check_quality", settings) as log:
        frame = read_frame(dataset.path)
        validated = read_table_schema(table_schema.path)
        counted = dataset.metadata.get("duplicate_rows")  # ingest counts them as it writes
        verdict = judge_quality(
            frame,
            validated,
            quality_report.path,
            RunConfig(**settings),
            rows_dropped_missing_target=int(dataset.metadata.get("rows_dropped_missing_target", 0)),
            duplicates=None if counted is None else int(counted),
            unreadable_records=int(dataset.metadata.get("unreadable_records", 0)),
        )
        with open(quality.path, "w", encoding="utf-8") as handle:
            json.dump(verdict, handle, indent=2, default=str)
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
