"""Read a folder of documents with one subfolder per label (one document per file) as a table.

    reviews/
      negative/ 0001.txt  0002.txt ...
      positive/ 0003.txt  nested/0004.txt ...

Every file below a label subfolder is one document, whatever its name or suffix (the
20 Newsgroups files have none). Files that are not text are skipped and counted, not fatal:
a folder gathered by hand often holds a stray image or PDF.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from components.common.errors import BadInputError
from components.core.source.encoding import looks_binary, sniff_encoding

# A folder holding these at top level is a folder of tables (read by logic.read_table).
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".xlsx")
COMPRESSED_SUFFIXES = ("", ".gz", ".zip")
# The encoding is sniffed from a document's first bytes; a longer document is re-sniffed whole
# only when its head's encoding fails on the rest.
SNIFF_BYTES = 1 << 20
MIN_LABELS = 2


@dataclass(frozen=True, eq=False)  # eq=False: a DataFrame has no single truth value
class Documents:
    """The documents of a folder, one row each, and how many files were skipped and why."""

    frame: pd.DataFrame  # "document" (path below the folder), "text", "label"; by label, document
    skipped_binary: int  # images, PDFs, archives...
    skipped_undecodable: int  # text whose encoding could not be sniffed
    skipped_empty: int  # no bytes, or only whitespace once decoded


def is_table_name(name: str) -> bool:
    """True for a table file name (CSV, TSV, Parquet, JSON, Excel, maybe .gz/.zip compressed)."""
    lowered = name.lower()
    return any(
        lowered.endswith(table + packed)
        for table in TABLE_SUFFIXES
        for packed in COMPRESSED_SUFFIXES
    )


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def visible_children(folder: Path) -> list[Path]:
    """The folder's entries whose names do not start with a dot, in name order."""
    return sorted(child for child in folder.iterdir() if not is_hidden(child.name))


def walk_visible_files(folder: Path) -> Iterator[Path]:
    """Every visible file below `folder`, at any depth, in no set order; hidden files and
    everything in hidden folders (.git, .ipynb_checkpoints...) are skipped."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if not is_hidden(name)]  # prune: never walk into them
        yield from (Path(root) / name for name in files if not is_hidden(name))


def visible_files(folder: Path) -> list[Path]:
    """The visible files below `folder`, sorted by their path (the same order on every OS)."""
    return sorted(walk_visible_files(folder), key=lambda path: path.relative_to(folder).as_posix())


def is_document_folder(folder: Path) -> bool:
    """True when `folder` is laid out as documents by label: no table file at its top level, and
    at least two visible subfolders that hold a file other than a table.

    Table files inside the subfolders do not count, so a partitioned table
    (year=2023/part-0.parquet, year=2024/part-0.parquet) stays a folder of tables."""
    if not folder.is_dir():
        return False
    children = visible_children(folder)
    if any(child.is_file() and is_table_name(child.name) for child in children):
        return False
    labelled = [
        child
        for child in children
        if child.is_dir() and any(not is_table_name(f.name) for f in walk_visible_files(child))
    ]
    return len(labelled) >= MIN_LABELS


class SkippedDocument(Exception):
    """A file that is not a usable document; `reason` is "binary", "undecodable" or "empty"."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def document_text(path: Path) -> str:
    """The text of one document file, its BOM stripped and nothing else changed (line ends and
    whitespace are kept: they can be features). SkippedDocument for a file to skip."""
    data = path.read_bytes()
    if not data:
        raise SkippedDocument(path, "empty")
    head = data[:SNIFF_BYTES]
    if looks_binary(head):
        raise SkippedDocument(path, "binary")
    try:
        text = decode(data, sniff_encoding(head, str(path)))
        if text is None and len(data) > SNIFF_BYTES:  # the head was plainer than the rest
            text = decode(data, sniff_encoding(data, str(path)))
    except BadInputError as error:
        raise SkippedDocument(path, "undecodable") from error
    if text is None:
        raise SkippedDocument(path, "undecodable")
    text = text.removeprefix("\ufeff")  # utf-8-sig and utf-16 drop the BOM; this is a stray one
    if not text.strip():
        raise SkippedDocument(path, "empty")
    return text


def decode(data: bytes, encoding: str) -> str | None:
    """`data` decoded strictly, or None when the encoding does not fit all of it (a whole
    document must decode; only a sniffing sample may end mid-character)."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def read_documents(folder: Path, source: str) -> Documents:
    """Read every document of a folder laid out as one subfolder per label.

    BadInputError (one line, naming the folder) for files outside the label subfolders, for no
    readable document at all, and for readable documents under fewer than two labels."""
    if not folder.is_dir():
        raise BadInputError(f"--data folder does not exist or is not a folder: {source!r}")
    children = visible_children(folder)
    loose = [child for child in children if child.is_file()]
    if loose:
        raise BadInputError(
            f"--data folder {source!r} has files outside its label subfolders, e.g. "
            f"{loose[0].name!r}; put each document in the subfolder named after its label"
        )
    rows: list[tuple[str, str, str]] = []  # (label, document, text)
    skipped = {"binary": 0, "undecodable": 0, "empty": 0}
    for label_folder in (child for child in children if child.is_dir()):
        for path in visible_files(label_folder):  # one at a time: only one document's bytes held
            if path.exists() and not path.is_file():  # never opened: a FIFO blocks, a device
                raise BadInputError(  # such as /dev/zero (through a link) never ends
                    f"--data folder {source!r}: {path.relative_to(folder).as_posix()!r} is not "
                    "a regular file (a FIFO, a socket or a device); remove it from the folder"
                )
            try:
                text = document_text(path)
            except SkippedDocument as skip:
                skipped[skip.reason] += 1
                continue
            except OSError as error:  # unreadable, or a broken link: the user has to look
                raise BadInputError(
                    f"--data folder {source!r}: cannot read the document "
                    f"{path.relative_to(folder).as_posix()!r}: {error.strerror or error}"
                ) from error
            rows.append((label_folder.name, path.relative_to(folder).as_posix(), text))
    check_enough_documents(rows, skipped, source)
    rows.sort(key=lambda row: (row[0], row[1]))
    frame = pd.DataFrame(
        {
            "document": [document for _, document, _ in rows],
            "text": [text for _, _, text in rows],
            "label": [label for label, _, _ in rows],
        }
    )
    return Documents(
        frame=frame,
        skipped_binary=skipped["binary"],
        skipped_undecodable=skipped["undecodable"],
        skipped_empty=skipped["empty"],
    )


def check_enough_documents(
    rows: list[tuple[str, str, str]], skipped: dict[str, int], source: str
) -> None:
    """BadInputError unless readable documents exist under at least two labels (a classifier
    needs two classes); the message says how many files were skipped and why."""
    counts = ", ".join(f"{count} {reason}" for reason, count in skipped.items() if count)
    why = f" (skipped: {counts})" if counts else ""
    if not rows:
        raise BadInputError(
            f"--data folder {source!r} holds no readable document{why}; expected one subfolder "
            "per label with one text document per file"
        )
    labels = sorted({label for label, _, _ in rows})
    if len(labels) < MIN_LABELS:
        raise BadInputError(
            f"--data folder {source!r} has readable documents under {len(labels)} label "
            f"subfolder only ({labels[0]!r}){why}; expected at least {MIN_LABELS} (one "
            "subfolder per label)"
        )
