"""Bounded-memory ingestion: a large CSV/TSV or Parquet file streamed to the stage's Parquet
output batch by batch, so peak memory depends on the batch size, not on the file's size.

pyarrow's streaming CSV reader fixes each column's type from the first block. When a later
block holds a value that does not fit (a code column that turns alphanumeric, integers that
turn decimal), the read restarts with that column widened (int -> float -> string); the
partial output is discarded, so a restart never leaves half a table behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.common.errors import BadInputError, missing_column_error

BATCH_ROWS = 65536
CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")


@dataclass(frozen=True)
class StreamFacts:
    rows_read: int
    rows_dropped_missing_target: int
    columns: int


def widen(current: str) -> Any:
    import pyarrow as pa

    return pa.float64() if current.startswith(("int", "uint")) else pa.string()


def csv_batches(
    path: Path,
    source: str,
    fmt: str,
    options: Any,
    column_types: dict[str, Any],
    block_size: int = 0,
) -> tuple[list[str], Iterator[Any]]:
    """The column names and a batch iterator of a delimited file, read in blocks."""
    from pyarrow import csv as pa_csv

    from components.core.source.files import (
        check_complete_last_row,
        csv_read_settings,
        open_text_stream,
    )

    settings = csv_read_settings(path, source, fmt, options, block_size)
    # a file cut mid-row names its last line here too, as the whole-file reader does
    check_complete_last_row(
        path, source, settings.delimiter, settings.first_line, settings.encoding
    )
    convert = settings.convert(column_types=column_types)
    stack = open_text_stream(path, options.max_read_mb, source)
    stream = stack.__enter__()
    try:
        reader = pa_csv.open_csv(stream, settings.read, settings.parse, convert)
    except BaseException as error:
        if not stack.__exit__(type(error), error, error.__traceback__):
            raise
    names = settings.names(reader.schema.names)

    def batches() -> Iterator[Any]:
        # an error while reading passes through the stream's context, which names the
        # decompressed-size cap when that is what stopped it
        try:
            yield from reader
        except BaseException as error:
            if not stack.__exit__(type(error), error, error.__traceback__):
                raise
        else:
            stack.__exit__(None, None, None)

    return names, batches()


def parquet_batches(path: Path) -> tuple[list[str], Iterator[Any]]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    return list(file.schema_arrow.names), file.iter_batches(batch_size=BATCH_ROWS)


def kept_target(target: str, names: list[str], optional: bool) -> str | None:
    """The target column rows are cleaned by; None when the data lacks it and may (rows to
    score, validated against a schema that names the target)."""
    if target in names:
        return target
    if optional:
        return None
    raise missing_column_error("--target", target, names)


def clean_batch(batch: Any, names: list[str], target: str | None) -> tuple[Any, int]:
    """One streamed batch, renamed and cleaned (see clean_table), strings as pandas holds them."""
    import pyarrow as pa

    kept, dropped = clean_table(pa.Table.from_batches([batch]).rename_columns(names), target)
    return large_strings(kept), dropped


def large_strings(table: Any) -> Any:
    """String columns as large_string, the type pandas' str columns hold and write: the stages
    that read the file then take the strings as they are instead of copying them into the
    wider type (1M rows, three string columns: reading back 49 -> 40 ms). Only the offsets
    are widened; the characters are not copied."""
    import pyarrow as pa

    fields = [
        pa.field(field.name, pa.large_string(), field.nullable, field.metadata)
        if pa.types.is_string(field.type)
        else field
        for field in table.schema
    ]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


def filter_columns(table: Any, keep: Any) -> Any:
    """`table.filter(keep)`, the columns filtered on two threads: Arrow filters a table one
    column after another, and releases the GIL while it does (1M rows: 25 ms -> 9 ms)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows < 100_000 or table.num_columns < 2:
        return table.filter(keep)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        columns = list(pool.map(lambda column: pc.filter(column, keep), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


def written_statistics(schema: Any) -> list[str]:
    """The columns whose Parquet statistics (min, max, nulls per page) are written: all but
    strings. A stage reads the file whole, so string minima and maxima serve no reader, and
    computing them is 15% of the write (1M rows, three string columns: 166 -> 144 ms)."""
    import pyarrow as pa

    return [
        field.name
        for field in schema
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
    ]


def clean_table(table: Any, target: str | None) -> tuple[Any, int]:
    """Rows with a target value (all rows without a target), infinities as missing; returns
    the table and rows dropped. Columns without anything to change are passed through
    untouched (no copy)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kept, missing = table, 0
    if target is not None:
        column = table[target]
        missing = column.null_count
        keep = pc.is_valid(column)
        if pa.types.is_floating(column.type):
            nan = pc.is_nan(column)
            missing += pc.sum(nan).as_py() or 0
            keep = pc.and_(keep, pc.invert(nan))
        kept = filter_columns(table, keep) if missing else table
    for index, field in enumerate(kept.schema):
        if pa.types.is_floating(field.type) and field.name != target:
            values = kept.column(index)
            infinite = pc.is_inf(values)
            if pc.any(infinite).as_py():
                kept = kept.set_column(
                    index, field, pc.if_else(infinite, pa.scalar(None, field.type), values)
                )
    return kept, table.num_rows - kept.num_rows


def stream_to_parquet(
    path: Path,
    source: str,
    fmt: str,
    target: str,
    output: Path,
    options: Any,
    target_optional: bool = False,
) -> StreamFacts:
    """Stream `path` into the Parquet file `output` (written whole or not at all)."""
    import pyarrow as pa

    from components.core.source.files import (
        MAX_BLOCK_BYTES,
        csv_read_settings,
        parse_error_detail,
        row_too_long,
    )

    column_types: dict[str, Any] = {}
    block_size = 0  # the reader's default (READ_BLOCK_BYTES) until a row does not fit
    for _ in range(64):  # each restart widens one column; a table has few that need it
        try:
            return write_stream(
                path,
                source,
                fmt,
                target,
                output,
                options,
                column_types,
                block_size,
                target_optional,
            )
        except pa.ArrowInvalid as error:
            if fmt != "parquet" and row_too_long(error) and block_size != MAX_BLOCK_BYTES:
                block_size = MAX_BLOCK_BYTES
                continue
            match = CONVERSION_ERROR.search(str(error))
            if fmt == "parquet" or match is None:
                detail = str(error).strip().splitlines()[0]
                if fmt != "parquet":
                    settings = csv_read_settings(path, source, fmt, options, block_size)
                    detail = parse_error_detail(error, path, settings)
                raise BadInputError(
                    f"--data file {source!r} is not a readable {fmt}: {detail[:300]}"
                ) from error
            raw_name = raw_column_names(path, source, fmt, options)[int(match.group(1))]
            column_types[raw_name] = widen(match.group(2))
    raise BadInputError(f"--data file {source!r}: column types keep changing down the file")


def raw_column_names(path: Path, source: str, fmt: str, options: Any) -> list[str]:
    """The names pyarrow gives the columns (before renaming), which column_types keys use."""
    from pyarrow import csv as pa_csv

    from components.core.source.files import MAX_BLOCK_BYTES, csv_read_settings, open_text_stream

    settings = csv_read_settings(path, source, fmt, options, MAX_BLOCK_BYTES)
    with open_text_stream(path, options.max_read_mb, source) as stream:
        reader = pa_csv.open_csv(stream, settings.read, settings.parse)
        return list(reader.schema.names)


def write_stream(
    path: Path,
    source: str,
    fmt: str,
    target: str,
    output: Path,
    options: Any,
    column_types: dict[str, Any],
    block_size: int = 0,
    target_optional: bool = False,
) -> StreamFacts:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from components.core.source.files import check_columns

    if fmt == "parquet":
        names, batches = parquet_batches(path)
    else:
        names, batches = csv_batches(path, source, fmt, options, column_types, block_size)
    check_columns(names, source)
    cleaned_by = kept_target(target, names, target_optional)
    partial = output.with_name(output.name + ".partial")
    rows_read = dropped = 0
    writer = None
    pending: list[Any] = []  # cleaned batches gathered into row groups of about BATCH_ROWS

    def flush() -> None:
        nonlocal writer
        if not pending:
            return
        group = pa.concat_tables(pending)
        if writer is None:
            writer = pq.ParquetWriter(
                partial, group.schema, write_statistics=written_statistics(group.schema)
            )
        writer.write_table(group)
        pending.clear()

    try:
        for batch in batches:
            kept, lost = clean_batch(batch, names, cleaned_by)
            rows_read += batch.num_rows
            dropped += lost
            pending.append(kept)
            if sum(t.num_rows for t in pending) >= BATCH_ROWS:
                flush()
        flush()
    finally:
        if writer is not None:
            writer.close()
    if rows_read == 0:
        partial.unlink(missing_ok=True)
        raise BadInputError(f"--data file has a header but no rows: {source!r}")
    if rows_read == dropped:
        partial.unlink(missing_ok=True)
        raise BadInputError(
            f"--target column {target!r} has no values: all {rows_read} rows are missing"
        )
    partial.replace(output)
    return StreamFacts(rows_read, dropped, len(names))
