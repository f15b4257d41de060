"""A data source: what `--data` names. `source_kind` is the one place that decides what kind of
source a location is; `Source` owns what a run does with one: list its files (incremental
runs), fingerprint its content (the cache key) and read it as a table.

Kinds: `demo` (a data set shipped with scikit-learn, `demo:<name>`), `database` (a SQLAlchemy
URL), `s3` (an object or prefix, `s3://bucket/key`), `kafka` (a topic,
`kafka://host:port/topic`, read as a snapshot of offsets: source/kafka.py) and `local` (a file, a
folder of tables, or a folder of documents with one subfolder per label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.common.errors import BadInputError, redact_url
from components.common.settings import DEFAULTS
from components.common.storage import S3_PREFIX
from components.core.source.database import is_database_url
from components.core.source.kafka import is_kafka_url

if TYPE_CHECKING:
    import pandas as pd

    from components.core.source.files import ReadOptions

DEMO_PREFIX = "demo:"
DEMO, DATABASE, OBJECT_STORE, KAFKA, LOCAL = "demo", "database", "s3", "kafka", "local"


SUPPORTED = (
    "a file or folder path, s3://bucket/prefix, a database URL (postgresql://..., "
    "sqlite:///file.db, ...), kafka://host:port/topic or demo:<name>"
)


def source_kind(location: str) -> str:
    """demo, database, s3, kafka or local; BadInputError for an empty location or a URL of another
    scheme (file://, http://, gs://: read as a path, each was 'does not exist')."""
    if not location.strip():
        raise BadInputError(f"--data needs a value: {SUPPORTED}; got {location!r}")
    if location.startswith(DEMO_PREFIX):
        return DEMO
    if is_database_url(location):
        return DATABASE
    if location.startswith(S3_PREFIX):
        return OBJECT_STORE
    if is_kafka_url(location):
        return KAFKA
    if scheme := url_scheme(location):
        raise BadInputError(
            f"--data scheme {scheme + '://'!r} is not supported; --data takes {SUPPORTED}; "
            f"got {redact_url(location)!r}"
        )
    return LOCAL


def url_scheme(location: str) -> str:
    """The scheme of `scheme://...` ('' for a path; a Windows drive letter is a path)."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]+)://", location.strip())
    return match.group(1) if match else ""


@dataclass(frozen=True)
class Source:
    """The data a run reads, and the S3 endpoint an `s3://` source is read through."""

    location: str
    s3_endpoint: str = DEFAULTS.s3_endpoint

    @property
    def kind(self) -> str:
        return source_kind(self.location)

    def listing(self) -> dict[str, str]:
        """{file name relative to the folder or prefix: a tag that changes with its content}."""
        from components.core.source.incremental import listing

        return listing(self.location, self.s3_endpoint)

    def fingerprint(self, options: ReadOptions | None = None) -> str:
        """SHA-256 of what the source holds now (see files.source_fingerprint)."""
        from components.core.source.files import source_fingerprint

        return source_fingerprint(self.location, self.s3_endpoint, options)

    def read(self, options: ReadOptions | None = None) -> pd.DataFrame:
        """The source as one table."""
        from components.core.source.files import read_table

        return read_table(self.location, self.s3_endpoint, options)

    def facts(self) -> dict[str, Any]:
        return {"source": self.location, "kind": self.kind}
