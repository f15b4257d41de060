"""KFP component of the load_rows stage (batch prediction): the rows to score as a Dataset."""

from kfp.dsl import Dataset, Output

from components.common.kfp_component import stage_component


@stage_component
def load_rows(
    data: str,
    table: str,
    query: str,
    delimiter: str,
    encoding: str,
    header: str,
    sheet: str,
    decimal: str,
    max_read_mb: float,
    query_timeout: float,
    s3_endpoint: str,
    rows: Output[Dataset],
):
    """Read the rows to score, as `stablepipe predict --data` reads them.

    Args:
        rows: The rows as Parquet; metadata has source, rows and columns.
    """
    from components.common.frames import write_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.load_rows.logic import load_scoring_rows

    settings = settings_in(locals())
    with stage("load_rows", settings) as log:
        frame = load_scoring_rows(RunConfig(**settings))
        write_frame(frame, rows.path)
        facts = {"source": data, "rows": len(frame), "columns": len(frame.columns)}
        rows.metadata.update(facts)
        log.log("read", **facts)
