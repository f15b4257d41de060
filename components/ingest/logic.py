"""Ingest: read the user's table, drop rows whose target is missing, fingerprint the data."""

from __future__ import annotations

import csv
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from components.common.errors import BadInputError, missing_column_error
from components.common.frames import file_sha256
from components.common.storage import S3_PREFIX, Storage, open_storage, parse_s3_uri

DEMO_PREFIX = "demo:"
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
}
SNIFFED_DELIMITERS = ",;\t|"


@dataclass(frozen=True)
class IngestResult:
    """The table a run trains on and the facts the summary reports about it."""

    frame: pd.DataFrame
    source: str
    rows_read: int
    rows_dropped_missing_target: int
    sha256: str


def table_format(path: str) -> str:
    """'csv', 'tsv' or 'parquet' from the file name; BadInputError for anything else."""
    name = path.lower()
    for suffix, fmt in sorted(TABLE_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return fmt
    raise BadInputError(
        "--data must be a CSV, TSV, Parquet, JSON or JSON Lines file (.csv, .tsv, .parquet, "
        f".json, .jsonl; .gz or .csv.zip compressed) or a folder of them; got {path!r}"
    )


def source_fingerprint(source: str, endpoint: str = "") -> str:
    """SHA-256 of what a source holds: the file's bytes; for S3 the objects' names, ETags and
    sizes (no download); the data set's name and scikit-learn's version for a demo."""
    if source.startswith(DEMO_PREFIX):
        import sklearn

        return hashlib.sha256(f"{source}@sklearn-{sklearn.__version__}".encode()).hexdigest()
    if source.startswith(S3_PREFIX):
        store, keys = s3_table_objects(source, endpoint)
        listing = "\n".join(f"{key}\t{store.version_tag(key)}" for key in keys)
        return hashlib.sha256(listing.encode()).hexdigest()
    path = check_file(source)
    if path.is_dir():  # names and contents of every table file in the folder
        digests = "\n".join(f"{p.relative_to(path)}\t{file_sha256(p)}" for p in folder_tables(path))
        return hashlib.sha256(digests.encode()).hexdigest()
    return file_sha256(source)


def folder_tables(folder: Path) -> list[Path]:
    """The table files of a folder and its subfolders, in name order (hidden files skipped)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and is_table_name(p.name) and not p.name.startswith(".")
    )


def s3_table_objects(source: str, endpoint: str) -> tuple[Storage, list[str]]:
    """The bucket's storage and the table objects of `source` (one object, or a prefix's)."""
    bucket, key = parse_s3_uri(source)
    store = open_storage(f"{S3_PREFIX}{bucket}", endpoint)
    keys = [k for k in store.keys(key) if k == key or is_table_name(k)]
    if not keys:
        raise BadInputError(f"--data holds no CSV, TSV or Parquet object: {source!r}")
    for found in keys:
        table_format(f"{S3_PREFIX}{bucket}/{found}")
    return store, keys


def is_table_name(name: str) -> bool:
    return any(name.lower().endswith(suffix) for suffix in TABLE_SUFFIXES)


def read_s3_table(source: str, endpoint: str) -> pd.DataFrame:
    """Download the source's objects (streamed to a temporary folder) and read them as one table."""
    store, keys = s3_table_objects(source, endpoint)
    frames = []
    with tempfile.TemporaryDirectory(prefix="stablepipe-ingest-") as scratch:
        for index, key in enumerate(keys):
            local = Path(scratch) / f"{index}-{PurePosixPath(key).name}"
            store.get_file(key, local)
            frames.append((key, read_table(str(local))))
    return concat_tables(frames, source)


def concat_tables(frames: list[tuple[str, pd.DataFrame]], source: str) -> pd.DataFrame:
    """Several files of one source as one table; they must have the same columns."""
    first_name, first = frames[0]
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
        if not folder_tables(path):
            raise BadInputError(f"--data folder holds no table file: {source!r}")
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


def read_table(source: str, endpoint: str = "") -> pd.DataFrame:
    """Read a local CSV/TSV/Parquet file, an `s3://` object or prefix, or a demo data set."""
    if source.startswith(DEMO_PREFIX):
        return load_demo(source.removeprefix(DEMO_PREFIX))
    if source.startswith(S3_PREFIX):
        return read_s3_table(source, endpoint)
    path = check_file(source)
    if path.is_dir():
        return concat_tables(
            [(str(p.relative_to(path)), read_table(str(p))) for p in folder_tables(path)], source
        )
    fmt = table_format(source)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt in ("json", "jsonl"):
            frame = pd.read_json(path, lines=fmt == "jsonl")
        else:
            sep = delimiter(path, fmt)
            frame = pd.read_csv(path, sep=sep, low_memory=False)
    except pd.errors.EmptyDataError as error:
        raise BadInputError(f"--data file has no header and no rows: {source!r}") from error
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise BadInputError(
            f"--data file {source!r} is not a readable {fmt}: {first_line}"
        ) from error
    if len(frame.columns) == 0:
        raise BadInputError(f"--data file has no columns: {source!r}")
    if len(frame) == 0:
        raise BadInputError(f"--data file has a header but no rows: {source!r}")
    frame.columns = [str(column) for column in frame.columns]
    if fmt in ("csv", "tsv"):
        check_complete_last_row(path, frame, source, sep)
        check_unique_header(path, sep)
    return frame


def text_head(path: Path, size: int = 65536) -> str:
    """The first bytes of a (possibly compressed) text file, decoded leniently."""
    import gzip
    import zipfile

    name = path.name.lower()
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            raw = handle.read(size)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            with archive.open(members[0]) as handle:
                raw = handle.read(size)
    else:
        with open(path, "rb") as handle:
            raw = handle.read(size)
    return raw.decode("utf-8", errors="replace")


def delimiter(path: Path, fmt: str) -> str:
    """Tab for TSV; for CSV the delimiter sniffed from the first lines (`,` when unsure)."""
    if fmt == "tsv":
        return "\t"
    sample = "\n".join(text_head(path).splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFFED_DELIMITERS).delimiter
    except csv.Error:
        return ","


def check_complete_last_row(path: Path, frame: pd.DataFrame, source: str, sep: str) -> None:
    """A plain CSV cut off in the middle of its last row is an error naming that line (pandas
    would fill the missing fields with NaN and say nothing)."""
    if path.name.lower().endswith((".gz", ".zip")) or path.stat().st_size == 0:
        return
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65536))
        tail = handle.read()
    if tail.endswith(b"\n"):
        return
    last_line = tail.decode("utf-8", errors="replace").splitlines()[-1]
    fields = next(csv.reader([last_line], delimiter=sep), [])
    if len(fields) < len(frame.columns):
        raise BadInputError(
            f"--data file {source!r} ends in the middle of a row: its last line (line "
            f"{len(frame) + 1}) has {len(fields)} of {len(frame.columns)} fields; the file looks "
            "truncated"
        )


def check_unique_header(path: Path, sep: str) -> None:
    """pandas renames a repeated CSV header to `name.1`; a repeated column is an error instead
    (a duplicated target would otherwise leak into the features)."""
    lines = text_head(path).splitlines()
    header = next(csv.reader(lines[:1], delimiter=sep), []) if lines else []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise BadInputError(f"--data file {str(path)!r} has the column {name!r} twice")
        seen.add(name)


def ingest(source: str, target: str, endpoint: str = "") -> IngestResult:
    """Read `source`, check `target` exists and has values, drop rows with a missing target."""
    frame = read_table(source, endpoint)
    if target not in frame.columns:
        raise missing_column_error("--target", target, frame.columns)
    missing_target = frame[target].isna()
    if missing_target.all():
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
        sha256=source_fingerprint(source, endpoint),
    )
