"""Errors that carry a message meant for the user.

`BadInputError` is raised for anything the user can fix (a missing file, a misspelt column, a
target with one class). The CLI turns it into exit code 2 and one line on stderr; every other
exception is an internal failure (exit code 1).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

# query keys whose value is a secret (libpq's, ODBC's, and the usual names)
SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pwd", "sslpassword", "secret", "token", "access_key", "secret_key"}
)


class Unavailable(RuntimeError):
    """A service the run needs (the store, a Kafka broker) did not answer within its retry
    budget: an internal failure (exit code 1, one line), not the user's input."""


class BadInputError(ValueError):
    """Input data, configuration or arguments the user has to fix."""


def closest_names(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Return the candidates that look most like `name` (case-insensitive), best first."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(str(candidate).lower(), str(candidate))
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.5)
    return [by_lower[m] for m in matches]


def missing_column_error(what: str, name: str, columns: Iterable[str]) -> BadInputError:
    """A BadInputError for a column that is not in the table, suggesting the closest names."""
    columns = [str(c) for c in columns]
    suggestions = closest_names(name, columns)
    if suggestions:
        hint = "did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
    else:
        shown = ", ".join(repr(c) for c in columns[:8]) + (", ..." if len(columns) > 8 else "")
        hint = f"the columns are {shown}"
    return BadInputError(f"{what} {name!r} is not a column of the data; {hint}")


class DataRejected(BadInputError):
    """The data-quality policy rejected the data (exit code 4). `details` travel with the
    error to the CLI: the report's path and the verdict."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


def redact_url(url: str) -> str:
    """`url` as a message may show it: the password of `scheme://user:password@host` as `***`
    (the user info ends at the last `@` of the authority, as typed: `p@ss` is one password),
    a bare `scheme://secret@host` as `***@host`, and secret query values as `***`. Plain
    string work, so the rest reads exactly as given (`sqlite:///:memory:`)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    info, at, host = authority.rpartition("@")
    if at:
        user, colon, _ = info.partition(":")
        authority = f"{user}:***@{host}" if colon else f"***@{host}" if not user else authority
    address, mark, query = tail.partition("?")
    if mark:
        query = re.sub(
            r"(^|&)([^=&]+)=([^&]*)",
            lambda m: (
                m.group(0)
                if m.group(2).lower() not in SECRET_QUERY_KEYS
                else f"{m.group(1)}{m.group(2)}=***"
            ),
            query,
        )
    return f"{scheme}{sep}{authority}{address}{mark}{query}"
