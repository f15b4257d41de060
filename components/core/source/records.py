"""Records of a stream as table rows: message values (Kafka records, MQTT payloads) parsed into
Arrow tables a batch at a time, and the batches brought under one schema.

A value is one row: a JSON object (its fields are the columns; nested values become their JSON
text) or a CSV line of named columns. Values that are neither are counted, never fatal. Batches
may disagree on a column's type: `unified_schema` keeps a type where they agree, floats where
they hold different numbers, text otherwise.
"""

from __future__ import annotations

import io
import json
from typing import Any


def json_records(values: list[bytes | None]) -> tuple[Any, int]:
    """JSON objects, one per record: parsed by Arrow's JSON reader in one go (a raw line
    break is only whitespace between JSON tokens, so it becomes a space); when that fails on
    some record, record by record, counting those that are not an object."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    # an empty value or object is no row
    present = [v for v in values if v and not (len(v) < 16 and v.replace(b" ", b"") == b"{}")]
    missing = len(values) - len(present)
    if not present:
        return pa.table({}), missing
    data = b"\n".join(v.replace(b"\n", b" ").replace(b"\r", b" ") for v in present)
    try:
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=pa_json.ReadOptions(block_size=max(1 << 20, len(data) + 1)),
        )
        if table.num_rows == len(present):  # not a value of several objects
            return flat(table), missing
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    rows = []
    for value in present:
        try:
            row = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(row, dict) and row:
            rows.append(row)
    return rows_table(rows), len(values) - len(rows)


def rows_table(rows: list[dict[str, Any]]) -> Any:
    """Parsed JSON objects as an Arrow table; a column whose values do not share a type is
    kept as text (nested values as JSON)."""
    import pandas as pd
    import pyarrow as pa

    frame = pd.DataFrame.from_records(rows)
    columns = {}
    for name in frame.columns:
        values = frame[name].tolist()
        try:
            columns[str(name)] = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[str(name)] = pa.array([as_text(v) for v in values], pa.string())
    return flat(pa.table(columns))


def as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def flat(table: Any) -> Any:
    """Nested values (objects, lists) as their JSON text: a column of scalars per field."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            text = pa.array([as_text(v) for v in table.column(index).to_pylist()], pa.string())
            table = table.set_column(index, pa.field(field.name, pa.string()), text)
    return table


def csv_records(
    values: list[bytes | None], columns: tuple[str, ...], delimiter: str
) -> tuple[Any, int]:
    """CSV lines of the named columns, one per record; a line with another number of fields
    is unreadable."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    lines = [v.rstrip(b"\r\n") for v in values if v]
    # one line per record: a value that holds a line break is not one
    present = [v for v in lines if b"\n" not in v and b"\r" not in v]
    bad = len(values) - len(present)
    if not present:
        return pa.table({}), bad
    skipped = [0]

    def skip(_row: Any) -> str:
        skipped[0] += 1
        return "skip"

    table = pa_csv.read_csv(
        io.BytesIO(b"\n".join(present)),
        read_options=pa_csv.ReadOptions(column_names=list(columns)),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter or ",", invalid_row_handler=skip),
    )
    return table, bad + skipped[0]


def unified_schema(schemas: list[Any]) -> Any:
    """One schema for every batch: each column in order of first appearance, of its type
    where the batches agree (columns of nothing but missing values aside), as float where
    they hold different numbers, otherwise as text."""
    import pyarrow as pa

    kinds: dict[str, set[Any]] = {}
    for schema in schemas:
        for field in schema:
            kinds.setdefault(field.name, set())
            if not pa.types.is_null(field.type):
                kinds[field.name].add(field.type)
    fields = []
    for name, types in kinds.items():
        if len(types) == 1:
            chosen = next(iter(types))
        elif not types:
            chosen = pa.string()
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
            chosen = pa.float64()
        else:
            chosen = pa.string()
        fields.append(pa.field(name, chosen))
    return pa.schema(fields)


def conformed(table: Any, schema: Any) -> Any:
    """The table with the schema's columns, in its order: missing ones as nulls."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table[field.name]
            # integers past 2**53 become the nearest float rather than failing the read
            same = column.type == field.type
            columns.append(column if same else column.cast(field.type, safe=False))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.table(columns, schema=schema)
