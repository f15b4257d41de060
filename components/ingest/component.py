"""KFP component of the ingest stage."""

from kfp.dsl import Dataset, Output

from components.common.kfp_component import stage_component


@stage_component
def ingest(
    source: str, target: str, data_fingerprint: str, s3_endpoint: str, dataset: Output[Dataset]
):
    """Read the source table, drop rows with a missing target and fingerprint the data.

    Args:
        source: A local CSV/TSV/Parquet path; an s3://bucket/key object or s3://bucket/prefix
            (its table objects read as one table); or `demo:<name>` for a data set shipped
            with scikit-learn (breast_cancer, diabetes, wine, iris).
        target: The column to predict.
        data_fingerprint: SHA-256 of the source's bytes (of the objects' ETags on S3),
            computed by the caller; part of the cache key, so changed data under the same path
            is never served from cache.
        s3_endpoint: The S3 endpoint for s3:// sources; credentials come from the environment.
        dataset: The ingested table as Parquet; metadata has source, rows, columns, sha256 and
            the number of rows dropped for a missing target.
    """
    from components.common.frames import write_frame
    from components.common.stage import stage
    from components.ingest.logic import ingest as ingest_table

    with stage("ingest") as log:
        result = ingest_table(source, target, s3_endpoint)
        write_frame(result.frame, dataset.path)
        facts = {
            "source": source,
            "rows": len(result.frame),
            "columns": len(result.frame.columns),
            "sha256": result.sha256,
            "rows_read": result.rows_read,
            "rows_dropped_missing_target": result.rows_dropped_missing_target,
        }
        if data_fingerprint and data_fingerprint != result.sha256:
            log.log("fingerprint_changed", expected=data_fingerprint, actual=result.sha256)
        dataset.metadata.update(facts)
        log.log("ingested", **facts)
