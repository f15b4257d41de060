"""KFP component of the ingest stage."""

from kfp.dsl import Dataset, Output

from components.common.kfp_component import stage_component


@stage_component
def ingest(
    data: str,
    target: str,
    table: str,
    query: str,
    delimiter: str,
    encoding: str,
    header: str,
    sheet: str,
    decimal: str,
    max_read_mb: float,
    query_timeout: float,
    stream_above_mb: float,
    s3_endpoint: str,
    files: list,
    data_fingerprint: str,
    dataset: Output[Dataset],
):
    """Read the data, drop rows with a missing target and fingerprint the data.

    Args:
        files: Incremental runs: the files of the folder or prefix to read (relative names),
            chosen by the runner; empty = all of them.
        data_fingerprint: SHA-256 of the data's content, computed by the runner: part of the
            cache key, so changed data under the same name is never served from the cache.
        dataset: The ingested table as Parquet; metadata has source, rows, columns, sha256,
            rows read and the rows dropped for a missing target.
    """
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.ingest.logic import ingest_data

    settings = settings_in(locals())
    with stage("ingest", settings) as log:
        facts = ingest_data(dataset.path, RunConfig(**settings), files)
        if data_fingerprint and data_fingerprint != facts["sha256"]:
            log.log("fingerprint_changed", expected=data_fingerprint, actual=facts["sha256"])
        dataset.metadata.update(facts)
        log.log("ingested", **facts)
