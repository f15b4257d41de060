"""Ingest: read the user's table, drop rows whose target is missing, fingerprint the data."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from components.common.errors import BadInputError, closest_names, redact_url
from components.common.frames import file_sha256
from components.common.settings import DEFAULTS, RunConfig, check_settings, decimal_problem
from components.common.storage import S3_PREFIX, Storage, open_storage, parse_s3_uri
from components.core.source import (
    DATABASE,
    DEMO,
    DEMO_PREFIX,
    KAFKA,
    LOCAL,
    OBJECT_STORE,
    source_kind,
)
from components.core.source.encoding import sniff_encoding

DEMO_DATASETS = ("breast_cancer", "diabetes", "wine", "iris")
TABLE_SUFFIXES = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".csv.zip": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".json.gz": "json",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "excel",
    ".xlsm": "excel",
}
SNIFFED_DELIMITERS = ",;\t|"
SNIFFED_LINES = 50  # lines the delimiter and header sniffers read
SCAN_BYTES = 4 << 20  # the buffer a file is scanned through for quotes
# pyarrow reads CSV in blocks (in parallel, and ahead of the consumer when streaming); one row
# must fit in a block. Small blocks parse in parallel and keep streaming memory flat; a file
# with longer rows is read again with blocks of MAX_BLOCK_BYTES.
READ_BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 16 << 20
# Wider tables and bigger cells than these are broken files or need a query first.
MAX_COLUMNS = 4096
MAX_CELL_BYTES = 1 << 20


def table_format(path: str) -> str:
    """'csv', 'tsv' or 'parquet' from the file name; BadInputError for anything else."""
    name = path.lower()
    for suffix, fmt in sorted(TABLE_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return fmt
    raise BadInputError(
        "--data must be a CSV, TSV, Parquet, JSON, JSON Lines or Excel file (.csv, .tsv, "
        ".parquet, .json, .jsonl, .xlsx; .gz or .csv.zip compressed), a folder of them or of "
        f"documents, an s3:// URI or a database URL; got {path!r}"
    )


def source_fingerprint(source: str, endpoint: str = "", options: ReadOptions | None = None) -> str:
    """SHA-256 of what a source holds: the file's bytes; for S3 the objects' names, ETags and
    sizes (no download); a database query's rows; the data set's name and scikit-learn's
    version for a demo."""
    options = (options or ReadOptions()).check(source)
    kind = source_kind(source)
    if kind == DEMO:
        import sklearn

        return hashlib.sha256(f"{source}@sklearn-{sklearn.__version__}".encode()).hexdigest()
    if kind == DATABASE:
        from components.core.source.database import database_fingerprint

        return database_fingerprint(
            source, options.table, options.query, options.query_timeout, options.max_read_mb
        )
    if kind == KAFKA:
        from components.core.source import kafka

        return kafka.fingerprint(source, options.files)
    if kind == OBJECT_STORE:
        store, keys = s3_table_objects(source, endpoint, options.files)
        listing = "\n".join(f"{key}\t{store.version_tag(key)}" for key in keys)
        return hashlib.sha256(listing.encode()).hexdigest()
    path = check_file(source)
    if path.is_dir():  # names and contents of every file in the folder
        digests = "\n".join(
            f"{p.relative_to(path)}\t{file_sha256(p)}"
            for p in chosen(folder_files(path), path, options.files)
        )
        return hashlib.sha256(digests.encode()).hexdigest()
    return file_sha256(source)


def side_file(relative: Path) -> bool:
    """A file the folder reader skips: any part of its path starts with `.` or `_` (hidden
    files, partial writes, `_SUCCESS` markers, a collector's `_rejected/`)."""
    return any(part.startswith((".", "_")) for part in relative.parts)


def folder_files(folder: Path) -> list[Path]:
    """Every file of a folder and its subfolders but side files, in name order."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not side_file(p.relative_to(folder))
    )


def folder_tables(folder: Path) -> list[Path]:
    """The table files of a folder and its subfolders (side files skipped), in name order."""
    return [p for p in folder_files(folder) if is_table_name(p.name)]


def chosen(paths: list[Path], folder: Path, files: tuple[str, ...]) -> list[Path]:
    """The paths named (relative to `folder`) in `files`; all of them when `files` is empty."""
    if not files:
        return paths
    wanted = set(files)
    return [p for p in paths if p.relative_to(folder).as_posix() in wanted]


def s3_table_objects(
    source: str, endpoint: str, files: tuple[str, ...] = ()
) -> tuple[Storage, list[str]]:
    """The bucket's storage and the table objects of `source` (one object, or a prefix's;
    only those named in `files`, relative to the prefix, when given)."""
    bucket, key = parse_s3_uri(source)
    store = open_storage(f"{S3_PREFIX}{bucket}", endpoint)
    keys = [
        k
        for k in store.keys(key)
        if k == key or (is_table_name(k) and not side_file(Path(k.removeprefix(key))))
    ]
    if files:
        wanted = set(files)
        keys = [k for k in keys if k.removeprefix(key).lstrip("/") in wanted]
    if not keys:
        raise BadInputError(f"--data holds no CSV, TSV or Parquet object: {source!r}")
    for found in keys:
        table_format(f"{S3_PREFIX}{bucket}/{found}")
    return store, keys


def is_table_name(name: str) -> bool:
    return any(name.lower().endswith(suffix) for suffix in TABLE_SUFFIXES)


def read_s3_table(source: str, endpoint: str, options: ReadOptions) -> pd.DataFrame:
    """Download the source's objects (streamed to a temporary folder) and read them as one table."""
    store, keys = s3_table_objects(source, endpoint, options.files)
    frames = []
    with tempfile.TemporaryDirectory(prefix="stablepipe-ingest-") as scratch:
        for index, key in enumerate(keys):
            local = Path(scratch) / f"{index}-{PurePosixPath(key).name}"
            store.get_file(key, local)
            frames.append((key, read_table(str(local), options=options)))
    return concat_tables(frames, source)


def concat_tables(frames: list[tuple[str, pd.DataFrame]], source: str) -> pd.DataFrame:
    """Several files of one source as one table. Delimited and Excel files must have the same
    columns (a different header usually means a wrong file); Parquet files, whose columns are
    named and typed, may gain or lose columns from file to file (schema evolution, as Spark's
    mergeSchema; readings landed by `stablepipe land` from sensors with different fields): the
    table has every column, missing where a file lacks it."""
    first_name, first = frames[0]
    if all(table_format(name) == "parquet" for name, _ in frames):
        return pd.concat([frame for _, frame in frames], ignore_index=True, sort=False)
    for name, frame in frames[1:]:
        if list(frame.columns) != list(first.columns):
            raise BadInputError(
                f"--data files under {source!r} have different columns: {first_name!r} has "
                f"{list(first.columns)[:6]}, {name!r} has {list(frame.columns)[:6]}"
            )
    return pd.concat([frame for _, frame in frames], ignore_index=True)


def check_file(source: str) -> Path:
    """Fail early, with the path in the message, on a file that cannot be a table."""
    path = Path(source)
    if not path.exists():
        raise BadInputError(f"--data file does not exist: {source!r}")
    if path.is_dir():
        from components.core.source.documents import is_document_folder

        if not folder_tables(path) and not is_document_folder(path):
            raise BadInputError(
                f"--data folder holds no table file and no label subfolders of documents: "
                f"{source!r}"
            )
        return path
    table_format(source)
    if path.stat().st_size == 0:
        raise BadInputError(f"--data file is empty (0 bytes): {source!r}")
    return path


def load_demo(name: str) -> pd.DataFrame:
    """A real data set that ships inside scikit-learn, as a frame with a `target` column."""
    from sklearn import datasets

    if name not in DEMO_DATASETS:
        raise BadInputError(
            f"unknown demo data set {name!r}; choose one of {', '.join(DEMO_DATASETS)}"
        )
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    if name != "diabetes":  # classification: name the classes instead of 0/1/2
        names = [str(name) for name in bunch.target_names]
        frame["target"] = [names[code] for code in bunch.target]
    return frame


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source (the reading settings); empty values mean "sniff it" (or, for a
    sheet, the first one)."""

    delimiter: str = DEFAULTS.delimiter
    encoding: str = DEFAULTS.encoding
    header: str = DEFAULTS.header  # auto | yes | no
    sheet: str = DEFAULTS.sheet
    decimal: str = DEFAULTS.decimal  # the decimal mark of CSV/TSV numbers (never sniffed)
    table: str = DEFAULTS.table
    query: str = DEFAULTS.query
    max_read_mb: float = DEFAULTS.max_read_mb  # bytes of one file decompressed, or of a query
    query_timeout: float = DEFAULTS.query_timeout  # seconds of one database read
    # incremental runs: the files of a folder or prefix to read (relative names); () = all
    files: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: RunConfig, files: Iterable[str] = ()) -> ReadOptions:
        """The reading settings of a run (or of a stage's inputs)."""
        names = [f.name for f in fields(cls) if f.name != "files"]
        return cls(**{n: getattr(settings, n) for n in names}, files=tuple(map(str, files)))

    def check(self, source: str) -> ReadOptions:
        """Each setting's check, and that they fit `source`: --table and --query only with a
        database (with a file they were once silently ignored)."""
        check_settings({f.name: getattr(self, f.name) for f in fields(self) if f.name != "files"})
        if problem := decimal_problem(self.decimal, self.delimiter):
            raise BadInputError(problem)
        if (self.table or self.query) and source_kind(source) != DATABASE:
            flag = "--table" if self.table else "--query"
            raise BadInputError(
                f"{flag} needs a database URL in --data (e.g. sqlite:///data.db or "
                f"postgresql://host/db); got --data {redact_url(source)!r}"
            )
        return self


def read_table(source: str, endpoint: str = "", options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a local file or folder, an `s3://` object or prefix, a database, or a demo set."""
    options = (options or ReadOptions()).check(source)
    kind = source_kind(source)
    if kind == DEMO:
        return load_demo(source.removeprefix(DEMO_PREFIX))
    if kind == DATABASE:
        from components.core.source.database import read_database

        frame = read_database(
            source, options.table, options.query, options.query_timeout, options.max_read_mb
        )
        return checked_frame(frame, source)
    if kind == OBJECT_STORE:
        return read_s3_table(source, endpoint, options)
    if kind == KAFKA:
        from components.core.source.kafka import read_kafka

        return checked_frame(read_kafka(source, options.files, options.delimiter), source)
    path = check_file(source)
    if path.is_dir():
        from components.core.source.documents import is_document_folder

        if is_document_folder(path):
            return read_document_folder(path, source)
        tables = chosen(folder_tables(path), path, options.files)
        if not tables:
            raise BadInputError(f"--data folder {source!r} holds none of the selected files")
        return concat_tables(
            [(str(p.relative_to(path)), read_table(str(p), options=options)) for p in tables],
            source,
        )
    return checked_frame(read_file(path, source, options), source)


def read_document_folder(path: Path, source: str) -> pd.DataFrame:
    """A folder with one subfolder per label: columns document, text, label."""
    from components.core.source.documents import read_documents

    documents = read_documents(path, source)
    frame = documents.frame
    frame.attrs["skipped"] = {
        "binary": documents.skipped_binary,
        "undecodable": documents.skipped_undecodable,
        "empty": documents.skipped_empty,
    }
    return frame


def read_file(path: Path, source: str, options: ReadOptions) -> pd.DataFrame:
    """One table file, by its format; a reader's failure becomes a one-line BadInputError."""
    fmt = table_format(source)
    with unreadable_as_bad_input(source, fmt):
        if fmt == "parquet":
            return parquet_frame(path)
        if fmt in ("json", "jsonl"):
            # convert_axes=False: keys such as "0001" and "1" stay names, not both the number 1
            with open_text_stream(path, options.max_read_mb, source) as stream:
                return pd.read_json(stream, lines=fmt == "jsonl", convert_axes=False)
        if fmt == "excel":
            return read_excel(path, source, options)
        return read_delimited(path, source, fmt, options)


@contextlib.contextmanager
def unreadable_as_bad_input(source: str, fmt: str) -> Iterator[None]:
    """Any failure of a reader on the user's file is bad input (exit 2), not a crash: a broken
    workbook alone fails in zipfile, zlib, the XML parser or openpyxl in a dozen ways, a
    flipped bit in a Parquet footer in pyarrow or pandas. The message keeps the reader's
    first line and the exception's type."""
    try:
        yield
    except (BadInputError, MemoryError, KeyboardInterrupt):
        raise
    except pd.errors.EmptyDataError as error:
        raise BadInputError(f"--data file has no header and no rows: {source!r}") from error
    except Exception as error:
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        raise BadInputError(
            f"--data file {source!r} is not a readable {fmt}: {first_line[:300]}"
        ) from error


def parquet_frame(path: Path) -> pd.DataFrame:
    """A Parquet file's columns, a named pandas index among them (pandas would make it the
    frame's index, which the rest of the pipeline ignores); an unnamed index is row labels."""
    frame = pd.read_parquet(path)
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    return frame.reset_index(drop=True)


def read_excel(path: Path, source: str, options: ReadOptions) -> pd.DataFrame:
    """An .xlsx/.xlsm sheet (openpyxl): the named sheet or the first."""
    import openpyxl

    if options.sheet:
        with open(path, "rb") as handle:
            sheets = openpyxl.load_workbook(handle, read_only=True).sheetnames
        if options.sheet not in sheets:
            hint = closest_names(options.sheet, sheets)
            raise BadInputError(
                f"--sheet {options.sheet!r} is not a sheet of {source!r}; "
                + (f"did you mean {hint[0]!r}?" if hint else f"its sheets are {sheets}")
            )
    # Read without a header and take the first row as names here: pandas would rename a
    # repeated name ("age" -> "age.1"), where a repeated CSV header is an error.
    raw = pd.read_excel(path, sheet_name=options.sheet or 0, header=None, engine="openpyxl")
    if options.header == "no":
        raw.columns = [f"column_{i + 1}" for i in range(len(raw.columns))]
        return raw
    if raw.empty:
        return raw
    names = ["" if pd.isna(v) else str(v) for v in raw.iloc[0]]
    names = [name or f"column_{i + 1}" for i, name in enumerate(names)]
    check_columns(names, source)
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = names
    return frame.infer_objects()


@dataclass(frozen=True)
class CsvSettings:
    """How pyarrow reads one delimited file: sniffed or given encoding, delimiter, header."""

    read: Any
    parse: Any
    header: bool
    delimiter: str
    first_line: str
    encoding: str
    decimal: str = "."

    def convert(self, **types: Any) -> Any:
        """pyarrow's conversion options for this file (column_types=... passed through)."""
        from pyarrow import csv as pa_csv

        return pa_csv.ConvertOptions(strings_can_be_null=True, decimal_point=self.decimal, **types)

    def names(self, raw: list[str]) -> list[str]:
        if not self.header:
            return [f"column_{i + 1}" for i in range(len(raw))]
        return [name.lstrip("\ufeff") for name in raw]


def csv_read_settings(
    path: Path, source: str, fmt: str, options: ReadOptions, block_size: int = 0
) -> CsvSettings:
    """Encoding, delimiter and header from the options, else sniffed from the first 1 MB; the
    decimal mark from the options (a comma is then never sniffed as the delimiter)."""
    from pyarrow import csv as pa_csv

    sample = raw_head(path)
    encoding = options.encoding or sniff_encoding(sample, source)
    text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
    lines = head_lines(text)
    sep = options.delimiter or delimiter(lines, fmt, options.decimal, source)
    header = has_header(lines, sep) if options.header == "auto" else options.header == "yes"
    read = pa_csv.ReadOptions(
        encoding="utf8" if encoding.replace("_", "-").lower() in ("utf-8", "ascii") else encoding,
        autogenerate_column_names=not header,
        block_size=block_size or READ_BLOCK_BYTES,
    )
    parse = pa_csv.ParseOptions(
        delimiter=sep, newlines_in_values=may_quote_newlines(path, encoding)
    )
    first_line = lines[0] if lines else ""
    return CsvSettings(read, parse, header, sep, first_line, encoding, options.decimal)


def plain_byte_lines(path: Path, encoding: str) -> bool:
    """A non-empty, uncompressed file whose line breaks are the bytes 0x0A/0x0D (not UTF-16/32):
    one its raw bytes can be searched for lines and quotes."""
    wide = encoding.replace("_", "-").lower().startswith(("utf-16", "utf-32", "utf16", "utf32"))
    compressed = path.name.lower().endswith((".gz", ".zip"))
    return not wide and not compressed and path.stat().st_size > 0


def may_quote_newlines(path: Path, encoding: str) -> bool:
    """Whether a quoted value could span lines: False only when no quote follows the first line
    break (a value that spans lines closes its quote after a break, so after the first one).
    Parsing with newlines in values allowed is ~25% slower, so a file without quotes in its
    data (most machine-written CSVs quote the header at most) is read without it.

    The file is scanned through one reused buffer, not mapped: a mapped file's pages count in
    the process's resident memory, which must stay flat however large the file."""
    if not plain_byte_lines(path, encoding):
        return True
    buffer = bytearray(SCAN_BYTES)
    seen_break = False
    with open(path, "rb") as handle:
        while size := handle.readinto(buffer):
            start = 0
            if not seen_break:
                start = buffer.find(b"\n", 0, size)
                if start < 0:
                    continue
                seen_break = True
            if buffer.find(b'"', start, size) >= 0:
                return True
    return not seen_break


def read_delimited(path: Path, source: str, fmt: str, options: ReadOptions) -> pd.DataFrame:
    """CSV/TSV as a pandas frame (see delimited_table)."""
    return delimited_table(path, source, fmt, options).to_pandas()


def delimited_table(path: Path, source: str, fmt: str, options: ReadOptions) -> Any:
    """CSV/TSV as an Arrow table, with pyarrow's multithreaded reader; ragged rows are an
    error, not silently padded; a truncated last row names its line."""
    import pyarrow as pa

    settings = csv_read_settings(path, source, fmt, options)
    check_complete_last_row(
        path, source, settings.delimiter, settings.first_line, settings.encoding
    )
    try:
        try:
            table = read_csv_table(path, settings, settings.convert(), options.max_read_mb)
        except pa.ArrowInvalid as error:
            if not row_too_long(error):
                raise
            settings = csv_read_settings(path, source, fmt, options, MAX_BLOCK_BYTES)
            table = read_csv_table(path, settings, settings.convert(), options.max_read_mb)
    except pa.ArrowInvalid as error:
        message = parse_error_detail(error, path, settings)
        if row_too_long(error):
            message = f"a row is longer than {MAX_BLOCK_BYTES // 2**20} MB"
        raise BadInputError(
            f"--data file {source!r} is not a readable {fmt}: {message[:300]}"
        ) from error
    names = settings.names(table.column_names)
    check_columns(names, source)
    table = table.rename_columns(names)
    check_cell_sizes(table, source)
    return table


RAGGED = re.compile(r"Expected \d+ columns, got \d+")


def parse_error_detail(error: Exception, path: Path, settings: CsvSettings) -> str:
    """pyarrow's complaint in one line; a ragged row gets its number, which pyarrow's threaded
    reader does not know: the file is read again on one thread, up to that row (streamed, so
    memory stays bounded), with a handler that keeps the row."""
    from pyarrow import csv as pa_csv

    message = str(error).strip().splitlines()[0]
    if not RAGGED.search(message):
        return message
    found: list[Any] = []

    def keep(row: Any) -> str:
        found.append(row)
        return "error"

    read = pa_csv.ReadOptions(
        use_threads=False,
        encoding=settings.read.encoding,
        autogenerate_column_names=settings.read.autogenerate_column_names,
        block_size=settings.read.block_size,
    )
    parse = pa_csv.ParseOptions(
        delimiter=settings.parse.delimiter,
        newlines_in_values=settings.parse.newlines_in_values,
        invalid_row_handler=keep,
    )
    with contextlib.suppress(Exception), open_text_stream(path) as stream:
        for _ in pa_csv.open_csv(stream, read, parse):
            pass
    if not found or found[0].number is None:
        return message
    row = found[0]
    counted = " (counting the header)" if settings.header else ""
    return (
        f"row {row.number}{counted} has {row.actual_columns} fields, expected "
        f"{row.expected_columns}: {row.text[:120]!r}"
    )


def row_too_long(error: Exception) -> bool:
    """pyarrow's complaint about a row that does not fit in one block."""
    message = str(error)
    return "straddling" in message or "block size" in message


def read_csv_table(
    path: Path, settings: CsvSettings, convert: Any, max_read_mb: float = DEFAULTS.max_read_mb
) -> Any:
    from pyarrow import csv as pa_csv

    if path.name.lower().endswith((".gz", ".zip")):  # decompressed here, within the cap
        with open_text_stream(path, max_read_mb, str(path)) as stream:
            return pa_csv.read_csv(stream, settings.read, settings.parse, convert)
    # by path: pyarrow reads the file itself, without holding the GIL
    return pa_csv.read_csv(str(path), settings.read, settings.parse, convert)


def raw_head(path: Path, size: int = 1 << 20) -> bytes:
    """The first bytes of a (possibly compressed) file."""
    with open_text_stream(path) as handle:
        return bytes(handle.read(size))


class TooLarge(BadInputError):
    """A compressed file holds more than --max-read-mb once decompressed."""


class CappedReader(io.RawIOBase):
    """A decompressing stream that refuses to give more than `limit` bytes in all. The
    refusal is kept in `refused` too: a reader such as pyarrow's may wrap the exception."""

    def __init__(self, inner: Any, limit: int, shown: str, max_read_mb: float) -> None:
        self.inner, self.limit, self.given = inner, limit, 0
        self.refused: TooLarge | None = None
        self.message = (
            f"--data file {shown!r} holds more than {max_read_mb:g} MB once decompressed "
            f"(--max-read-mb {max_read_mb:g}); raise --max-read-mb to read it"
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(min(len(buffer), self.limit - self.given + 1))
        self.given += len(data)
        if self.given > self.limit:
            self.refused = TooLarge(self.message)
            raise self.refused
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def capped_stream(handle: Any, max_read_mb: float, shown: str) -> Iterator[Any]:
    """`handle` buffered, ending in TooLarge past `max_read_mb`, however the reader that reads
    it reports the refusal."""
    capped = CappedReader(handle, int(max_read_mb * 2**20), shown, max_read_mb)
    try:
        yield io.BufferedReader(capped, buffer_size=1 << 20)
    except Exception as error:
        if capped.refused is not None and error is not capped.refused:
            raise capped.refused from error
        raise


@contextlib.contextmanager
def open_text_stream(
    path: Path, max_read_mb: float = DEFAULTS.max_read_mb, shown: str = ""
) -> Iterator[Any]:
    """A binary stream of the file's content, decompressing .gz and single-member .zip; a
    decompressed stream ends in TooLarge past `max_read_mb` (a gzip bomb never fills memory)."""
    import gzip
    import zipfile

    name, shown = path.name.lower(), shown or str(path)
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as packed, capped_stream(packed, max_read_mb, shown) as out:
            yield out
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise BadInputError(
                    f"--data archive {str(path)!r} must hold exactly one file; it holds "
                    f"{len(members)}"
                )
            with (
                archive.open(members[0]) as member,
                capped_stream(member, max_read_mb, shown) as out,
            ):
                yield out
    else:
        with open(path, "rb") as handle:
            yield handle


def head_lines(text: str, count: int = SNIFFED_LINES) -> list[str]:
    """The first `count` lines of `text`, without splitting all of it (a 1 MB sample has
    thousands of lines; the sniffers read 50)."""
    prefix = 1 << 16
    while True:
        lines = text[:prefix].splitlines()
        if len(lines) > count or prefix >= len(text):
            return lines[:count]
        prefix *= 4


def has_header(lines: list[str], sep: str) -> bool:
    """Whether the first line names the columns: csv.Sniffer's guess, trusted only when it is
    sure the first line looks like the rest (a header is the safe default)."""
    if len(lines) < 3:
        return True
    try:
        return csv.Sniffer().has_header("\n".join(lines)) or not first_row_numeric(lines, sep)
    except csv.Error:
        return True


def first_row_numeric(lines: list[str], sep: str) -> bool:
    """The first line is all numbers (so it is data, not names)."""
    fields = next(csv.reader(lines[:1], delimiter=sep), [])
    try:
        [float(value) for value in fields]
    except ValueError:
        return False
    return bool(fields)


def check_columns(names: list[str], source: str) -> None:
    """No repeated column names (a duplicated target would leak), not absurdly wide."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadInputError(
                f"--data file {source!r} has the column {name!r} twice (a file without a "
                "header line? pass --header no)"
            )
        seen.add(name)
    if len(names) > MAX_COLUMNS:
        raise BadInputError(
            f"--data file {source!r} has {len(names)} columns; stablepipe reads at most "
            f"{MAX_COLUMNS}: keep the columns you need (from a database, select them with --query)"
        )


def check_cell_sizes(table: Any, source: str) -> None:
    """A string value over MAX_CELL_BYTES is a broken file (an unclosed quote swallowing the
    rest), not data: name the column and the row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name, column in zip(table.column_names, table.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        lengths = pc.binary_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_CELL_BYTES:
            row = pc.index(lengths, longest).as_py()
            raise BadInputError(
                f"--data file {source!r} column {name!r} row {row + 1} holds a value of "
                f"{longest / 2**20:.1f} MB; values are limited to {MAX_CELL_BYTES // 2**20} MB "
                "(an unclosed quote?)"
            )


def checked_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """A read table with string column names and at least one column and one row."""
    if len(frame.columns) == 0:
        raise BadInputError(f"--data file has no columns: {source!r}")
    if len(frame) == 0:
        raise BadInputError(f"--data file has a header but no rows: {source!r}")
    frame.columns = [str(column) for column in frame.columns]
    check_columns(list(frame.columns), source)
    return frame


def delimiter(lines: list[str], fmt: str, decimal: str = ".", source: str = "") -> str:
    """Tab for TSV; for CSV the delimiter sniffed from the first lines (`,` when unsure), never
    the decimal mark: with decimal commas a file that only looks comma-separated (`1;1,5`) is
    sniffed again without the comma, and one that is comma-separated is refused."""
    if fmt == "tsv":
        return "\t"
    sample = "\n".join(lines)
    try:
        found = csv.Sniffer().sniff(sample, delimiters=SNIFFED_DELIMITERS).delimiter
    except csv.Error:
        found = ","
    if found != decimal:
        return found
    try:
        return (
            csv.Sniffer()
            .sniff(sample, delimiters=SNIFFED_DELIMITERS.replace(decimal, ""))
            .delimiter
        )
    except csv.Error:
        raise BadInputError(
            f"--data file {source!r} is comma-separated, so its decimal mark cannot be a comma "
            "(--decimal ,); pass --delimiter if its fields are separated by something else"
        ) from None


def check_complete_last_row(
    path: Path, source: str, sep: str, header_line: str, encoding: str = "utf-8"
) -> None:
    """A plain CSV cut off in the middle of its last row is an error naming that line (a
    reader would either pad the missing fields with nulls or report a ragged row). Only for
    encodings where a newline is the byte 0x0A (not UTF-16/32), and not when the last line
    may close a quoted value that spans lines (pyarrow then judges the row itself)."""
    if not plain_byte_lines(path, encoding):
        return
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65536))
        tail = handle.read()
    if tail.endswith((b"\n", b"\r")):
        return
    expected = len(next(csv.reader([header_line], delimiter=sep), []))
    last_line = tail.decode(encoding, errors="replace").splitlines()[-1]
    if last_line.count('"') % 2:
        return
    fields = next(csv.reader([last_line], delimiter=sep), [])
    if len(fields) < expected:
        line = count_lines(path)
        raise BadInputError(
            f"--data file {source!r} ends in the middle of a row: its last line (line "
            f"{line + 1}) has {len(fields)} of {expected} fields; the file looks truncated"
        )


def count_lines(path: Path) -> int:
    """Line breaks in a file: LF (and CRLF), or CR for classic Mac files."""
    counts = {b"\n": 0, b"\r": 0}
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            for mark in counts:
                counts[mark] += chunk.count(mark)
    return counts[b"\n"] or counts[b"\r"]


def arrow_readable(source: str) -> bool:
    """A local CSV/TSV/Parquet file: ingest reads and writes it in Arrow, never in pandas."""
    if source_kind(source) != LOCAL:
        return False
    path = Path(source)
    return path.is_file() and table_format(source) in ("csv", "tsv", "parquet")


def pandas_index_as_columns(table: Any) -> Any:
    """A Parquet file written by pandas, as parquet_frame reads it: a named index becomes the
    first column(s), also a RangeIndex (stored as metadata only, so pyarrow does not see it);
    an unnamed index is row labels and is dropped."""
    import pyarrow as pa

    meta = table.schema.pandas_metadata or {}
    first: list[str] = []
    for index in meta.get("index_columns", []):
        if isinstance(index, str):  # stored as a column
            if re.fullmatch(r"__index_level_\d+__", index):
                table = table.drop_columns([index])
            else:
                first.append(index)
        elif index.get("kind") == "range" and index.get("name") is not None:
            values = pa.array(range(index["start"], index["stop"], index["step"]), pa.int64())
            if len(values) == table.num_rows:
                table = table.append_column(str(index["name"]), values)
                first.append(str(index["name"]))
    if first:
        table = table.select(first + [n for n in table.column_names if n not in first])
    return table
