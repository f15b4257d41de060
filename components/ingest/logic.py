"""Ingest: read the user's data, drop rows whose target is missing, fingerprint the data, and
write it as the stage's Parquet table (streamed in bounded memory for large files)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common.errors import BadInputError
from components.common.settings import RunConfig
from components.core.source import DATABASE, KAFKA, source_kind
from components.core.source.files import (
    ReadOptions,
    arrow_readable,
    check_columns,
    check_file,
    delimited_table,
    pandas_index_as_columns,
    read_table,
    source_fingerprint,
    table_format,
    unreadable_as_bad_input,
)
from components.ingest.streaming import kept_target

__all__ = ["ingest_data"]


@dataclass(frozen=True)
class IngestResult:
    """The table a run trains on and the facts the summary reports about it."""

    frame: pd.DataFrame
    source: str
    rows_read: int
    rows_dropped_missing_target: int
    sha256: str
    # files of a documents folder that were skipped: {"binary": n, "undecodable": n, "empty": n}
    skipped: dict[str, int] | None = None


def read_training_rows(
    source: str,
    target: str,
    endpoint: str = "",
    options: ReadOptions | None = None,
    target_optional: bool = False,
) -> IngestResult:
    """Read `source`, check `target` exists and has values, drop rows with a missing target
    (with `target_optional`, data without the target column keeps every row)."""
    options = options or ReadOptions()
    frame = read_table(source, endpoint, options)
    cleaned_by = kept_target(target, list(frame.columns), target_optional)
    missing_target = frame[cleaned_by].isna() if cleaned_by else pd.Series(False, index=frame.index)
    if cleaned_by and missing_target.all():
        raise BadInputError(
            f"--target column {target!r} has no values: all {len(frame)} rows are missing"
        )
    kept = frame.loc[~missing_target].reset_index(drop=True)
    # Infinite values are treated as missing: imputed like any other gap.
    numeric = kept.select_dtypes("number").columns.drop(target, errors="ignore")
    kept[numeric] = kept[numeric].replace([np.inf, -np.inf], np.nan)
    return IngestResult(
        frame=kept,
        source=source,
        rows_read=len(frame),
        rows_dropped_missing_target=int(missing_target.sum()),
        sha256=fingerprint_of(frame, source, endpoint, options),
        skipped=frame.attrs.get("skipped"),
    )


def fingerprint_of(frame: pd.DataFrame, source: str, endpoint: str, options: ReadOptions) -> str:
    """The source's fingerprint; for a database, of the rows already read (not a second read)."""
    if source_kind(source) == DATABASE:
        from components.core.source.database import frame_fingerprint

        return frame_fingerprint(frame, source, options.table, options.query)
    return source_fingerprint(source, endpoint, options)


def ingest_arrow(
    path: Path,
    source: str,
    target: str,
    output: Path,
    options: ReadOptions,
    target_optional: bool = False,
) -> dict[str, Any]:
    """Read, check, clean and write a local CSV/TSV/Parquet file as Arrow tables: the same
    checks and cleaning as `ingest`, at the speed of the readers themselves."""
    import pyarrow.parquet as pq

    from components.ingest.streaming import clean_table, large_strings, written_statistics

    fmt = table_format(source)
    with unreadable_as_bad_input(source, fmt):  # pandas metadata may be broken too
        table = (
            pandas_index_as_columns(pq.read_table(path))
            if fmt == "parquet"
            else delimited_table(path, source, fmt, options)
        )
    names = [str(name) for name in table.column_names]
    if not names:
        raise BadInputError(f"--data file has no columns: {source!r}")
    if table.num_rows == 0:
        raise BadInputError(f"--data file has a header but no rows: {source!r}")
    check_columns(names, source)
    cleaned_by = kept_target(target, names, target_optional)
    kept, dropped = clean_table(table.rename_columns(names), cleaned_by)
    if kept.num_rows == 0:
        raise BadInputError(
            f"--target column {target!r} has no values: all {table.num_rows} rows are missing"
        )
    kept = large_strings(kept)
    sha256, duplicates = write_beside_counts(
        lambda partial: pq.write_table(
            kept, partial, write_statistics=written_statistics(kept.schema)
        ),
        output,
        lambda: source_fingerprint(source, "", options),
        kept.to_pandas,
    )
    return ingest_facts(
        source, table.num_rows, dropped, len(names), sha256, streamed=False, duplicates=duplicates
    )


def write_beside_counts(
    write: Callable[[Path], None],
    output: Path,
    fingerprint: Callable[[], str],
    frame: Callable[[], pd.DataFrame],
) -> tuple[str, int]:
    """Write `output` whole or not at all, and meanwhile take the source's fingerprint and the
    table's duplicate-row count (which check_quality would otherwise take itself).

    Writing Parquet keeps one core busy and releases the GIL; hashing the file and the rows
    mostly does too, so on two cores the counts cost almost no time.
    """
    from concurrent.futures import ThreadPoolExecutor

    from components.common.frames import count_duplicates

    partial = output.with_name(output.name + ".partial")
    with ThreadPoolExecutor(max_workers=1) as pool:
        sha256 = pool.submit(fingerprint)
        duplicates = pool.submit(lambda: count_duplicates(frame()))
        write(partial)
        counts = sha256.result(), duplicates.result()
    partial.replace(output)
    return counts


def ingest_facts(
    source: str,
    rows_read: int,
    dropped: int,
    columns: int,
    sha256: str,
    streamed: bool,
    duplicates: int | None = None,
) -> dict[str, Any]:
    """What the ingest stage reports (dataset metadata, summary.json's `data`); the duplicate
    rows when they were counted (not when streamed)."""
    facts = {
        "source": source,
        "rows": rows_read - dropped,
        "columns": columns,
        "sha256": sha256,
        "rows_read": rows_read,
        "rows_dropped_missing_target": dropped,
        "streamed": streamed,
    }
    if duplicates is not None:
        facts["duplicate_rows"] = duplicates
    return facts


def ingest_kafka(
    source: str, target: str, output: Path, options: ReadOptions, target_optional: bool
) -> dict[str, Any]:
    """A Kafka topic's snapshot (the offset ranges in `options.files`; the whole topic as it
    is now without them) parsed and written a batch at a time; the facts carry the offsets
    read (`kafka`: topic, partition, first, last, records) and the unreadable records."""
    from components.core.source import kafka
    from components.ingest.streaming import clean_table

    snapshot = kafka.snapshot_of_parts(source, options.files)

    def clean(table: Any) -> tuple[Any, int]:
        if target not in table.column_names:
            if target_optional:
                return table, 0
            # a batch without the field: every row lacks the target
            return table.slice(0, 0), table.num_rows
        return clean_table(table, target)

    no_target = (
        f"--target column {target!r} has no values: no readable record of Kafka topic "
        f"{snapshot.topic.topic!r} has one"
    )
    read, dropped = kafka.write_snapshot(snapshot, output, options.delimiter, clean, no_target)
    facts = ingest_facts(
        source,
        read.records,
        dropped,
        read.columns,
        kafka.fingerprint(source, tuple(snapshot.parts)),
        streamed=True,
    )
    facts["kafka"] = [r.lineage(snapshot.topic.topic) for r in snapshot.ranges]
    facts["unreadable_records"] = read.unreadable
    return facts


def ingest_data(
    output: str | Path,
    settings: RunConfig,
    files: Iterable[str] = (),
    target_optional: bool = False,
) -> dict[str, Any]:
    """The ingest stage: the settings' `data` as one Parquet file at `output` (all or
    nothing), streamed in bounded memory when it is a local CSV/TSV/Parquet file of at least
    `stream_above_mb`; returns the facts the run reports. `files` are the files of a folder or
    prefix to read (all when empty). With `target_optional`, data without the target column
    is taken whole (rows to score, checked against the schema that names the target)."""
    from components.common.frames import write_frame
    from components.ingest.streaming import stream_to_parquet

    source, target, endpoint = settings.data, settings.target, settings.s3_endpoint
    options = ReadOptions.of(settings, files).check(source)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if source_kind(source) == KAFKA:
        return ingest_kafka(source, target, output, options, target_optional)
    if arrow_readable(source):
        path = check_file(source)
        if path.stat().st_size < settings.stream_above_mb * 2**20 or source.lower().endswith(
            ".zip"
        ):
            return ingest_arrow(path, source, target, output, options, target_optional)
        streamed = stream_to_parquet(
            path, source, table_format(source), target, output, options, target_optional
        )
        return ingest_facts(
            source,
            streamed.rows_read,
            streamed.rows_dropped_missing_target,
            streamed.columns,
            source_fingerprint(source, endpoint, options),
            streamed=True,
        )
    result = read_training_rows(source, target, endpoint, options, target_optional)
    _, duplicates = write_beside_counts(
        lambda partial: write_frame(result.frame, partial),
        output,
        lambda: result.sha256,
        lambda: result.frame,
    )
    facts = ingest_facts(
        source,
        result.rows_read,
        result.rows_dropped_missing_target,
        len(result.frame.columns),
        result.sha256,
        streamed=False,
        duplicates=duplicates,
    )
    if result.skipped:
        facts["documents_skipped"] = result.skipped
    return facts
