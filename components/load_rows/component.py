"""KFP component of the load_rows stage (batch prediction): the rows to score as a Dataset."""

from kfp.dsl import Dataset, Output

from components.common.kfp_component import stage_component


@stage_component
def load_rows(source: str, s3_endpoint: str, rows: Output[Dataset], decimal: str = "."):
    """Read the rows to score, as `stablepipe predict --data` reads them.

    Args:
        source: A local file (CSV/TSV/Parquet/JSON/JSON Lines/Excel) or folder of them, an
            s3://bucket/key object or prefix, or a database URL.
        s3_endpoint: The S3 endpoint for s3:// sources; credentials come from the environment.
        rows: The rows as Parquet; metadata has source, rows and columns.
        decimal: The decimal mark of CSV/TSV numbers, . or , (as the training data was read).
    """
    from components.common.frames import write_frame
    from components.common.stage import stage
    from components.core.source.files import ReadOptions, read_table

    with stage("load_rows") as log:
        frame = read_table(source, s3_endpoint, ReadOptions(decimal=decimal))
        write_frame(frame, rows.path)
        facts = {"source": source, "rows": len(frame), "columns": len(frame.columns)}
        rows.metadata.update(facts)
        log.log("read", **facts)
