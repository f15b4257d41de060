"""Incremental ingestion of a folder or S3 prefix where new files keep arriving.

Each run takes the table files it has not seen (a file counts as seen under its name and a tag:
size and modification time locally, the ETag on S3, so a rewritten file counts as new),
optionally with the `window` most recent files of earlier runs. The watermark — which files
were taken, by which run — is kept with the run records (`<runs-dir>/watermarks/` or
`<store>/watermarks/`) and advanced only after a run succeeds, so a failed run takes the same
files again next time.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired

from typing_extensions import TypedDict

from components.common.errors import BadInputError
from components.common.readback import read_json_as
from components.common.storage import S3_PREFIX, MissingObject, Storage


@dataclass(frozen=True)
class Selection:
    """The files a run reads: the new ones and the earlier ones of the rolling window."""

    new: list[str]
    window: list[str]

    @property
    def files(self) -> list[str]:
        return sorted(set(self.new) | set(self.window))


def listing(source: str, endpoint: str = "") -> dict[str, str]:
    """{file name relative to the source: tag} for the source's table files."""
    from components.core.source import OBJECT_STORE, source_kind
    from components.core.source.files import folder_tables, s3_table_objects

    if source_kind(source) == OBJECT_STORE:
        store, keys = s3_table_objects(source, endpoint)
        prefix = source.removeprefix(S3_PREFIX).partition("/")[2]
        return {key.removeprefix(prefix).lstrip("/"): store.version_tag(key) for key in keys}
    folder = Path(source)
    if not folder.is_dir():
        raise BadInputError(
            f"--incremental needs a folder or an s3:// prefix in --data; got {source!r}"
        )
    found = {}
    for path in folder_tables(folder):
        stat = path.stat()
        found[path.relative_to(folder).as_posix()] = f"{stat.st_size}:{stat.st_mtime_ns}"
    if not found:
        raise BadInputError(f"--data folder holds no table file: {source!r}")
    return found


def canonical_source(source: str) -> str:
    """The same folder however it is written (relative, with ./ or ../): its absolute path;
    an S3 prefix without its trailing slash."""
    if source.startswith(S3_PREFIX):
        return source.rstrip("/")
    return str(Path(source).resolve())


def watermark_key(source: str) -> str:
    """The watermark's object name: readable, and unique per source."""
    canonical = canonical_source(source)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", canonical.rpartition("/")[2]).strip("-")
    return f"watermarks/{name or 'source'}-{digest}.json"


class TakenFile(TypedDict):
    name: str
    tag: str  # size and modification time, or the object's ETag
    run_id: NotRequired[str]
    added_at: NotRequired[str]


class Watermark(TypedDict):
    """What the runs of a source have taken, advanced when a run succeeds."""

    source: NotRequired[str]
    files: list[TakenFile]
    updated_at: NotRequired[str]
    last_run: NotRequired[str]


for declared in (TakenFile, Watermark):
    setattr(declared, "__pydantic_config__", {"extra": "allow"})  # noqa: B010


def load_watermark(store: Storage, source: str) -> dict[str, Any]:
    key = watermark_key(source)
    try:
        data = store.get_bytes(key)
    except MissingObject:
        return {"source": canonical_source(source), "files": []}
    return dict(read_json_as(data, Watermark, f"the watermark {store.uri_of(key)!r}"))


def select(current: dict[str, str], watermark: dict[str, Any], window: int) -> Selection:
    """New or changed files, plus the `window` most recently taken earlier files that still
    exist unchanged."""
    if window < 0:
        raise BadInputError(f"--window must be 0 or more; got {window!r}")
    seen = {entry["name"]: entry["tag"] for entry in watermark["files"]}
    new = sorted(name for name, tag in current.items() if seen.get(name) != tag)
    earlier = [
        entry["name"]
        for entry in watermark["files"]
        if entry["name"] not in new and current.get(entry["name"]) == entry["tag"]
    ]
    return Selection(new=new, window=earlier[-window:] if window else [])


def advance(
    watermark: dict[str, Any], current: dict[str, str], selection: Selection, run_id: str
) -> dict[str, Any]:
    """The watermark after a successful run that took `selection`."""
    taken = set(selection.new)
    kept = [entry for entry in watermark["files"] if entry["name"] not in taken]
    added_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    kept += [
        {"name": name, "tag": current[name], "run_id": run_id, "added_at": added_at}
        for name in selection.new
    ]
    return {**watermark, "files": kept, "updated_at": added_at, "last_run": run_id}


def save_watermark(store: Storage, source: str, watermark: dict[str, Any]) -> str:
    key = watermark_key(source)
    store.put_bytes(json.dumps(watermark, indent=2).encode(), key)
    return store.uri_of(key)
