"""KFP component of the ingest stage."""

from kfp.dsl import Dataset, Output

from components.common.kfp_component import stage_component


@stage_component
def ingest(
    source: str,
    target: str,
    data_fingerprint: str,
    s3_endpoint: str,
    dataset: Output[Dataset],
    table: str = "",
    query: str = "",
    delimiter: str = "",
    encoding: str = "",
    header: str = "auto",
    sheet: str = "",
    decimal: str = ".",
    files: list = [],  # noqa: B006 (KFP reads the default; it is never mutated)
    stream_above_mb: float = 256.0,
):
    """Read the source table, drop rows with a missing target and fingerprint the data.

    Args:
        source: A local file (CSV/TSV/Parquet/JSON/JSON Lines/Excel, .gz or .zip compressed)
            or folder of them; a folder of documents with one subfolder per label; an
            s3://bucket/key object or s3://bucket/prefix (its table objects read as one table);
            a SQLAlchemy database URL (sqlite:///data.db, postgresql://host/db; credentials from
            STABLEPIPE_DB_USER/STABLEPIPE_DB_PASSWORD); or `demo:<name>` for a data set shipped
            with scikit-learn (breast_cancer, diabetes, wine, iris).
        target: The column to predict.
        data_fingerprint: SHA-256 of the source's content computed by the caller; part of the
            cache key, so changed data under the same name is never served from cache.
        s3_endpoint: The S3 endpoint for s3:// sources; credentials come from the environment.
        dataset: The ingested table as Parquet; metadata has source, rows, columns, sha256,
            rows read and the rows dropped for a missing target.
        table: With a database URL: the table to read (schema.table allowed).
        query: With a database URL: a read-only SELECT to run instead of a table.
        delimiter: CSV delimiter; empty = sniffed from the first lines.
        encoding: Text encoding of CSV/TSV files; empty = sniffed (BOM, UTF-8, else guessed).
        header: auto (sniffed), yes or no (columns are then named column_1, column_2, ...).
        sheet: Excel sheet name; empty = the first sheet.
        decimal: The decimal mark of CSV/TSV numbers, . or , (never sniffed: a comma may as
            well sit inside a text field).
        files: Incremental runs: the files of the folder/prefix to read (relative names);
            empty = all of them.
        stream_above_mb: Local CSV/TSV/Parquet files at least this large are streamed to the
            output in batches (bounded memory) instead of being read whole.
    """
    from components.common.stage import stage
    from components.core.source.files import ReadOptions
    from components.ingest.logic import ingest_to_parquet

    with stage("ingest") as log:
        options = ReadOptions(
            delimiter=delimiter,
            encoding=encoding,
            header=header,
            sheet=sheet,
            decimal=decimal,
            table=table,
            query=query,
            files=tuple(str(name) for name in files),
        )
        facts = ingest_to_parquet(
            source,
            target,
            dataset.path,
            s3_endpoint,
            options,
            stream_above_bytes=int(stream_above_mb * 2**20),
        )
        if data_fingerprint and data_fingerprint != facts["sha256"]:
            log.log("fingerprint_changed", expected=data_fingerprint, actual=facts["sha256"])
        dataset.metadata.update(facts)
        log.log("ingested", **facts)
