"""Ingest from a SQL database: one table or one read-only query, read through SQLAlchemy.

SQLite is the embedded default (`sqlite:///path.db`); PostgreSQL goes through psycopg 3
(`postgresql://host/db` is mapped to `postgresql+psycopg`). Any other SQLAlchemy dialect works
when its driver is installed.

Credentials come only from the environment (`STABLEPIPE_DB_PASSWORD`, optionally
`STABLEPIPE_DB_USER`; on Kubernetes from a Secret), never from the URL, which travels through
pipeline parameters, logs and summaries. Reads are read-only twice over: the query text must be a
single SELECT / WITH / VALUES statement, and the database itself is asked to refuse writes (a
read-only transaction on PostgreSQL, a read-only connection on SQLite), so what slips past the
text check (a function that writes, say) is still refused.

Every failure the user can cause is a one-line `BadInputError` with the URL redacted.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from components.common.errors import SECRET_QUERY_KEYS, BadInputError, closest_names, redact_url
from components.common.settings import DEFAULTS

PASSWORD_ENV = "STABLEPIPE_DB_PASSWORD"
USER_ENV = "STABLEPIPE_DB_USER"
CONNECT_TIMEOUT_SECONDS = 5
ROW_BUFFER = 10_000  # rows fetched per round trip from a server-side cursor
SHOWN_QUERY_CHARS = 80

# URL schemes that name storage or a protocol, never a SQLAlchemy dialect.
# fmt: off
NON_DATABASE_SCHEMES = frozenset({
    "s3", "s3a", "s3n", "gs", "gcs", "az", "abfs", "abfss", "adl", "wasb", "wasbs", "hdfs",
    "file", "http", "https", "ftp", "sftp", "ssh", "demo", "kafka", "mqtt", "mqtts",
})
# fmt: on
URL_SCHEME = re.compile(r"^(?P<dialect>[A-Za-z][A-Za-z0-9_]+)(?:\+[A-Za-z0-9_]+)?://")
# how each database says that a statement ran past its time (sqlite3: the progress handler)
TIMED_OUT = re.compile(
    r"statement timeout|max_execution_time|maximum statement execution time|^interrupted$", re.I
)
STOPPED_BY_TIMEOUT = " (stopped by --query-timeout; raise it for a longer read)"
# `postgresql://` means psycopg 3, the driver the project ships ("postgres://" as Heroku writes it).
POSTGRES_ALIASES = frozenset({"postgresql", "postgres"})
# The keyword each driver takes for its connect timeout, in seconds.
TIMEOUT_ARGUMENT = {
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "pymysql": "connect_timeout",
    "mysqldb": "connect_timeout",
}
# Python module of a driver -> the package to install for it.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
    "aiosqlite": "aiosqlite",
}
# Dialects that live outside SQLAlchemy -> the package that provides each.
DIALECT_PACKAGES = {
    "snowflake": "snowflake-sqlalchemy",
    "bigquery": "sqlalchemy-bigquery",
    "redshift": "sqlalchemy-redshift",
    "duckdb": "duckdb-engine",
    "clickhouse": "clickhouse-sqlalchemy",
    "trino": "trino",
    "databricks": "databricks-sqlalchemy",
    "cockroachdb": "sqlalchemy-cockroachdb",
}
READ_STATEMENTS = ("SELECT", "WITH", "VALUES")
# Words that turn a statement into a write (or DDL) wherever they appear outside literals:
# data-modifying CTEs, SELECT ... INTO, FOR UPDATE, and anything after a statement's start.
# fmt: off
WRITE_WORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "INTO", "DROP", "CREATE", "ALTER",
    "TRUNCATE", "COPY", "GRANT", "REVOKE", "ATTACH", "DETACH", "PRAGMA", "VACUUM", "CALL",
})
# fmt: on
# Schemas whose tables are never a user's data (skipped when suggesting table names).
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "pg_toast"})
MAX_SCHEMAS_SEARCHED = 20


# ---------------------------------------------------------------- URLs and credentials


def is_database_url(source: str) -> bool:
    """True for a SQLAlchemy URL (`dialect[+driver]://...`), False for storage URLs (s3://,
    file://, http://), `demo:` names and local paths."""
    match = URL_SCHEME.match(source.strip())
    return match is not None and match["dialect"].lower() not in NON_DATABASE_SCHEMES


def parse_url(url: str) -> URL:
    """The user's URL parsed; BadInputError for one that is not a SQLAlchemy URL."""
    try:
        return make_url(url.strip())
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise BadInputError(
            f"--data is not a database URL of the form dialect://user@host/database: "
            f"{redact_url(url)!r}"
        ) from exc


def reject_password_in_url(parsed: URL, url: str) -> None:
    """A password written into the URL would end up in pipeline parameters and logs."""
    secret_keys = sorted(key for key in parsed.query if key.lower() in SECRET_QUERY_KEYS)
    if parsed.password or secret_keys:
        raise BadInputError(
            f"--data must not contain a password: got {redact_url(url)!r}; put the password in "
            f"the environment variable {PASSWORD_ENV} (and the user, optionally, in {USER_ENV}) "
            "instead"
        )


def connection_url(url: str) -> URL:
    """The URL to connect with: psycopg 3 for PostgreSQL, credentials from the environment."""
    parsed = parse_url(url)
    reject_password_in_url(parsed, url)
    if parsed.drivername in POSTGRES_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return parsed  # SQLite has no users
    user = os.environ.get(USER_ENV, "")
    if user and parsed.username and parsed.username != user:
        raise BadInputError(
            f"--data names the user {parsed.username!r} but {USER_ENV} is {user!r}; "
            f"remove one of them: got {redact_url(url)!r}"
        )
    if user:
        parsed = parsed.set(username=user)
    password = os.environ.get(PASSWORD_ENV, "")
    if password:
        parsed = parsed.set(password=password)
    return parsed


def scrub_secrets(text: str) -> str:
    """`text` with the password from the environment blanked out: drivers do not put it in
    their messages, but a message must never depend on that."""
    password = os.environ.get(PASSWORD_ENV, "")
    return text.replace(password, "***") if password else text


# ---------------------------------------------------------------- engines and connections


def create_read_engine(target: URL, url: str) -> Engine:
    """An engine for `target` with no pool (one read, then closed) and a connect timeout."""
    if target.get_backend_name() == "sqlite":
        return sqlite_engine(target, url)
    connect_args: dict[str, Any] = {}
    # Only a driver named in the URL: asking for the default one would import the dialect here.
    driver = target.drivername.partition("+")[2]
    timeout_argument = TIMEOUT_ARGUMENT.get(driver)
    if timeout_argument and timeout_argument not in target.query:
        connect_args[timeout_argument] = CONNECT_TIMEOUT_SECONDS
    try:
        return sa.create_engine(target, poolclass=NullPool, connect_args=connect_args)
    except sa.exc.NoSuchModuleError as exc:
        dialect = target.get_backend_name()
        package = DIALECT_PACKAGES.get(dialect.lower(), f"a SQLAlchemy dialect for {dialect!r}")
        raise BadInputError(
            f"--data uses the database dialect {dialect!r}, which is not installed (install "
            f"{package} into the image); got {redact_url(url)!r}"
        ) from exc
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = DRIVER_PACKAGES.get(module, module or "its driver")
        raise BadInputError(
            f"--data needs the database driver {module!r}, which is not installed (install "
            f"{package} into the image); got {redact_url(url)!r}"
        ) from exc
    except (sa.exc.ArgumentError, sa.exc.InvalidRequestError) as exc:
        raise BadInputError(
            f"--data cannot be used as a database URL: {first_line(str(exc))}; "
            f"got {redact_url(url)!r}"
        ) from exc


def sqlite_path(target: URL, url: str) -> Path:
    """The SQLite file of the URL, which must exist (an absent file is not an empty table).
    SQLAlchemy's URI form `sqlite:///file:path.db?mode=ro&uri=true` names the same file."""
    database = target.database or ""
    if database.startswith("file:") and target.query.get("uri") == "true":
        database = urllib.parse.unquote(database.removeprefix("file:"))
    if database in ("", ":memory:"):
        raise BadInputError(
            f"--data must name a SQLite file as sqlite:///relative.db or sqlite:////absolute.db; "
            f"got {redact_url(url)!r}"
        )
    path = Path(database).expanduser()
    if path.is_dir():
        raise BadInputError(f"--data names a folder, not a SQLite file: {redact_url(url)!r}")
    if not path.is_file():
        raise BadInputError(
            f"--data SQLite file does not exist: {str(path)!r} (from {redact_url(url)!r})"
        )
    return path


def sqlite_engine(target: URL, url: str) -> Engine:
    """An engine on a read-only SQLite connection: `mode=ro` opens the file without ever
    creating it or writing to it, and `query_only` also refuses writes to attached files."""
    uri = sqlite_path(target, url).resolve().as_uri() + "?mode=ro"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True)
        connection.execute("PRAGMA query_only = ON")
        return connection

    return sa.create_engine("sqlite+pysqlite://", poolclass=NullPool, creator=connect)


def start_read_only_transaction(connection: Connection, timeout: float = 0.0) -> None:
    """Ask the database to refuse writes for the rest of this transaction (SQLite's connection
    is read-only already), and to stop any statement that runs past `timeout` seconds (0: no
    limit): PostgreSQL's statement_timeout, MySQL's max_execution_time, and for SQLite a
    progress handler that interrupts the statement (a recursive CTE without end never
    returns on its own)."""
    dialect = connection.dialect.name
    milliseconds = int(timeout * 1000)
    if dialect == "postgresql":
        # The first statement of the transaction; the transaction is only ever rolled back.
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        if milliseconds:
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
    elif dialect in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        if milliseconds:
            connection.exec_driver_sql(f"SET SESSION max_execution_time = {milliseconds}")
    elif dialect == "sqlite" and milliseconds:
        deadline = time.monotonic() + timeout
        raw = connection.connection.dbapi_connection
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)  # type: ignore[union-attr]


@contextmanager
def read_only_connection(url: str, timeout: float = 0.0) -> Iterator[Connection]:
    """A connection to `url` inside a read-only transaction whose statements stop after
    `timeout` seconds (0: no limit), rolled back and closed after use."""
    engine = create_read_engine(connection_url(url), url)
    try:
        try:
            connection = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise connection_error(url, exc) from exc
        with connection:  # closing rolls back: nothing is ever committed
            try:
                start_read_only_transaction(connection, timeout)
            except sa.exc.DBAPIError as exc:
                raise connection_error(url, exc) from exc
            yield connection
    finally:
        engine.dispose()


def connection_error(url: str, exc: sa.exc.DBAPIError) -> BadInputError:
    """Refused, unreachable, wrong password, unknown database: the driver's own words."""
    detail = error_detail(exc)
    hint = ""
    if "password" in detail.lower() or "authentication" in detail.lower():
        hint = f"; check the credentials in {USER_ENV} and {PASSWORD_ENV}"
    return BadInputError(f"cannot connect to the database {redact_url(url)!r}: {detail}{hint}")


# ---------------------------------------------------------------- messages


def first_line(message: str) -> str:
    """The first meaningful line of a driver's message (joined with the next while it ends in
    a colon, as psycopg's "Multiple connection attempts failed. All failures were:" does)."""
    lines = [" ".join(line.split()) for line in message.splitlines() if line.strip()]
    if not lines:
        return "no message"
    text = lines[0]
    for line in lines[1:]:
        if not text.endswith(":"):
            break
        text = f"{text} {line.lstrip('- ')}"
    return text


def error_detail(exc: BaseException) -> str:
    """One line from the database's own message (not SQLAlchemy's wrapper), secrets blanked."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    return scrub_secrets(first_line(str(cause)))


def shorten(text: str, limit: int = SHOWN_QUERY_CHARS) -> str:
    """A query on one line, cut to `limit` characters, for a message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# ---------------------------------------------------------------- the read-only statement check


def mask_literals(sql: str) -> str:
    """`sql` with comments blanked and string literals and quoted identifiers replaced by `?`
    (same length, so positions still match), leaving only the words that are SQL."""
    out = list(sql)
    i, n = 0, len(sql)

    def blank(start: int, end: int, fill: str) -> None:
        out[start:end] = fill * (end - start)

    while i < n:
        two = sql[i : i + 2]
        char = sql[i]
        if two == "--":
            end = sql.find("\n", i)
            end = n if end < 0 else end
        elif two == "/*":  # PostgreSQL nests block comments
            depth, end = 1, i + 2
            while end < n and depth:
                if sql.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif char in "'\"`":
            backslash = char == "'" and i > 0 and sql[i - 1] in "eE"  # E'...' escapes
            end = i + 1
            while end < n:
                if backslash and sql[end] == "\\":
                    end += 2
                elif sql[end] == char:
                    if sql[end + 1 : end + 2] == char:  # doubled quote inside
                        end += 2
                    else:
                        end += 1
                        break
                else:
                    end += 1
        elif char == "$" and (tag := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])):
            close = sql.find(tag.group(0), i + len(tag.group(0)))
            end = n if close < 0 else close + len(tag.group(0))
        else:
            i += 1
            continue
        blank(i, min(end, n), " " if two in ("--", "/*") else "?")
        i = end
    return "".join(out)


def statement_end(masked: str) -> int:
    """Where the statement ends: before trailing semicolons, spaces and comments."""
    return len(masked.rstrip().rstrip(";").rstrip())


def check_read_only_query(query: str) -> str:
    """The query as it is sent (trailing `;` and comments cut) if it is one read-only
    statement; BadInputError naming what makes it a write otherwise."""
    masked = mask_literals(query)
    end = statement_end(masked)
    code = masked[:end]
    if not code.strip():
        raise BadInputError(f"--query is empty: got {query!r}")
    if ";" in code:
        raise BadInputError(
            f"--query must be a single statement, but it has several (separated by ';'): "
            f"{shorten(query)!r}"
        )
    words = [word.upper() for word in re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", code)]
    if not words or words[0] not in READ_STATEMENTS:
        raise BadInputError(
            f"--query must be one read-only statement starting with SELECT, WITH or VALUES; "
            f"got {shorten(query)!r}"
        )
    writes = sorted(WRITE_WORDS.intersection(words))
    if writes:
        raise BadInputError(
            f"--query must only read, but it contains {', '.join(writes)} (a column of that "
            f'name must be written in "double quotes"): {shorten(query)!r}'
        )
    return query[:end]


# ---------------------------------------------------------------- tables


def split_table_name(table: str) -> tuple[str | None, str]:
    """`schema.table` -> (schema, table); a plain name -> (None, name)."""
    schema, dot, name = table.strip().rpartition(".")
    if not name or (dot and not schema):
        raise BadInputError(f"--table must be a table name or schema.table; got {table!r}")
    return (schema or None), name


def quoted_table(connection: Connection, schema: str | None, name: str) -> str:
    """The table as quoted identifiers in the database's own quoting (no injection, exact case)."""
    preparer = connection.dialect.identifier_preparer
    parts = [schema, name] if schema else [name]
    return ".".join(preparer.quote_identifier(part) for part in parts)


def table_names(inspector: sa.Inspector, schema: str | None) -> list[str]:
    """Tables and views of `schema` (the default one if None), plus those of a few other schemas
    written as schema.table, to suggest from when a name is misspelt."""
    names = inspector.get_table_names(schema) + inspector.get_view_names(schema)
    default = inspector.default_schema_name
    others = [
        other
        for other in inspector.get_schema_names()
        if other not in (schema, default) and other not in SYSTEM_SCHEMAS
    ]
    for other in others[:MAX_SCHEMAS_SEARCHED]:
        tables = inspector.get_table_names(other) + inspector.get_view_names(other)
        names += [f"{other}.{table}" for table in tables]
    return names


def check_table_exists(connection: Connection, table: str, url: str) -> tuple[str | None, str]:
    """(schema, name) of an existing table or view; BadInputError suggesting close names."""
    schema, name = split_table_name(table)
    inspector = sa.inspect(connection)
    if schema is not None:
        schemas = inspector.get_schema_names()
        if schema not in schemas:  # asking for its tables would fail with a less clear error
            raise BadInputError(
                f"--table {table!r}: the schema {schema!r} does not exist in "
                f"{redact_url(url)!r}; {names_hint(schema, schemas, 'schemas')}"
            )
    if inspector.has_table(name, schema=schema):
        return schema, name
    hint = names_hint(table, table_names(inspector, schema), "tables")
    raise BadInputError(f"--table {table!r} does not exist in {redact_url(url)!r}; {hint}")


def names_hint(name: str, candidates: list[str], kind: str) -> str:
    """'did you mean ...?' with the closest candidates, else a few of them, else 'no <kind>'."""
    suggestions = closest_names(name, candidates)
    if suggestions:
        return "did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
    if candidates:
        more = ", ..." if len(candidates) > 8 else ""
        return f"its {kind} are " + ", ".join(repr(c) for c in candidates[:8]) + more
    return f"it has no {kind}"


def declared_date_columns(connection: Connection, schema: str | None, name: str) -> list[str]:
    """Columns the table declares DATE / TIMESTAMP (SQLite returns them as text)."""
    columns = sa.inspect(connection).get_columns(name, schema=schema)
    return [
        str(column["name"])
        for column in columns
        if isinstance(column["type"], sa.Date | sa.DateTime)
    ]


# ---------------------------------------------------------------- reading


def fetch_frame(
    connection: Connection,
    sql: str,
    what: str,
    url: str,
    max_read_mb: float = DEFAULTS.max_read_mb,
    timeout: float = DEFAULTS.query_timeout,
) -> pd.DataFrame:
    """Run `sql` and return every row as one frame. Rows stream from a server-side cursor
    (ROW_BUFFER at a time) and are built into one frame at the end, so pandas infers each
    column's dtype from all of its values (per-chunk frames would disagree on sparse columns).
    The rows fetched are measured batch by batch: past `max_read_mb` the read stops with
    BadInputError naming --max-read-mb, before the frame is built. The database stops a
    statement after `timeout` seconds, but a server-side cursor's rows come in many short FETCH
    statements, so the whole read is also held to it here."""
    options = {"stream_results": True, "max_row_buffer": ROW_BUFFER, "no_parameters": True}
    limit = max_read_mb * 1024 * 1024
    deadline = time.monotonic() + timeout if timeout > 0 else math.inf
    rows: list[Any] = []
    try:
        # no_parameters: the SQL goes to the driver as written ('%' and ':' are not placeholders)
        result = connection.exec_driver_sql(sql, execution_options=options)
        if not result.returns_rows:
            raise BadInputError(f"{what} returns no table from {redact_url(url)!r}")
        columns = list(map(str, result.keys()))
        held = 0.0
        while batch := result.fetchmany(ROW_BUFFER):
            rows.extend(batch)
            held += batch_bytes(batch)
            if held > limit:
                result.close()
                raise BadInputError(
                    f"{what} from {redact_url(url)!r} returns more than {max_read_mb:g} MB "
                    f"(--max-read-mb {max_read_mb:g}); raise --max-read-mb to read it, or "
                    "select fewer rows or columns"
                )
            if time.monotonic() > deadline:
                result.close()
                raise BadInputError(
                    f"{what} failed on {redact_url(url)!r}: the read took longer than "
                    f"{timeout:g} s{STOPPED_BY_TIMEOUT}"
                )
    except sa.exc.DBAPIError as exc:
        detail = error_detail(exc)
        if TIMED_OUT.search(detail):
            detail += STOPPED_BY_TIMEOUT
        raise BadInputError(f"{what} failed on {redact_url(url)!r}: {detail}") from exc
    frame = pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)
    check_frame(frame, what, url)
    return dates_as_datetimes(frame)


SIZE_SAMPLE = 64  # rows of a batch whose values are measured; the batch is counted at their mean


def batch_bytes(batch: Any) -> float:
    """About how many bytes of memory a batch of fetched rows holds: a sample of its rows
    measured as Python holds them (each row and each of its values, by sys.getsizeof), scaled
    up. A row of numbers costs several times its 8-byte values until the frame is built, and
    that is what the cap protects."""
    sample = batch[:: max(1, len(batch) // SIZE_SAMPLE)]
    measured = sum(
        sys.getsizeof(row) + sum(sys.getsizeof(value) for value in row) for row in sample
    )
    return measured * len(batch) / max(1, len(sample))


def check_frame(frame: pd.DataFrame, what: str, url: str) -> None:
    """A table to train on needs columns, rows, and one name per column."""
    if len(frame.columns) == 0:
        raise BadInputError(f"{what} returns no columns from {redact_url(url)!r}")
    if len(frame) == 0:
        raise BadInputError(f"{what} returns no rows from {redact_url(url)!r}")
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise BadInputError(
            f"{what} returns the column {repeated[0]!r} more than once; give each column its "
            "own name (SELECT ... AS ...)"
        )


def dates_as_datetimes(frame: pd.DataFrame) -> pd.DataFrame:
    """DATE values arrive as `datetime.date` objects, which pandas keeps as `object`; make
    them datetime64 like TIMESTAMP columns (pandas converts `datetime` objects itself)."""
    for column in frame.columns:
        if not pd.api.types.is_object_dtype(frame[column]):
            continue
        values = frame[column].dropna()
        if len(values) and all(isinstance(value, datetime.date) for value in values):
            frame[column] = to_datetimes(frame[column])
    return frame


def to_datetimes(values: pd.Series) -> pd.Series:
    """`values` as datetime64, or unchanged when they do not all parse (text stays text)."""
    try:
        return pd.to_datetime(values)
    except (ValueError, TypeError, OverflowError):
        return values


def check_table_or_query(table: str, query: str) -> None:
    """Exactly one of the two says what to read."""
    if table and query:
        raise BadInputError(
            f"give either --table or --query with a database --data, not both; got --table "
            f"{table!r} and --query {shorten(query)!r}"
        )
    if not table and not query:
        raise BadInputError(
            "a database --data needs --table NAME or --query 'SELECT ...'; got neither"
        )


def read_database(
    url: str,
    table: str = "",
    query: str = "",
    timeout: float = DEFAULTS.query_timeout,
    max_read_mb: float = DEFAULTS.max_read_mb,
) -> pd.DataFrame:
    """Read a whole table (`SELECT *`, `schema.table` allowed) or the result of one read-only
    query from the database at `url`, each statement stopped after `timeout` seconds and the
    rows held to `max_read_mb`; BadInputError for anything the user has to fix."""
    check_table_or_query(table, query)
    sql = check_read_only_query(query) if query else ""
    with read_only_connection(url, timeout) as connection:
        if query:
            return fetch_frame(connection, sql, "--query", url, max_read_mb, timeout)
        try:
            schema, name = check_table_exists(connection, table, url)
            date_columns = declared_date_columns(connection, schema, name)
        except sa.exc.DBAPIError as exc:
            raise BadInputError(
                f"cannot read --table {table!r} from {redact_url(url)!r}: {error_detail(exc)}"
            ) from exc
        frame = fetch_frame(
            connection,
            f"SELECT * FROM {quoted_table(connection, schema, name)}",
            f"--table {table!r}",
            url,
            max_read_mb,
            timeout,
        )
    for column in date_columns:
        if column in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = to_datetimes(frame[column])
    return frame


# ---------------------------------------------------------------- fingerprint


def frame_fingerprint(frame: pd.DataFrame, url: str, table: str = "", query: str = "") -> str:
    """SHA-256 of where the rows came from (URL redacted) and of the rows themselves: column
    names, dtypes and a hash of every value in order. Ingest can call this on the frame it
    read instead of reading the database twice."""
    digest = hashlib.sha256()
    header = {
        "url": redact_url(url),
        "table": table,
        "query": query,
        "columns": [str(column) for column in frame.columns],
        "dtypes": [str(dtype) for dtype in frame.dtypes],
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    try:
        rows = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # unhashable cells (arrays, JSON documents): hash their text instead
        rows = pd.util.hash_pandas_object(frame.astype(str), index=False)
    digest.update(rows.to_numpy().tobytes())
    return digest.hexdigest()


def database_fingerprint(
    url: str,
    table: str = "",
    query: str = "",
    timeout: float = DEFAULTS.query_timeout,
    max_read_mb: float = DEFAULTS.max_read_mb,
) -> str:
    """SHA-256 that changes when the rows change; it reads them (the cache key before a run)."""
    frame = read_database(url, table, query, timeout, max_read_mb)
    return frame_fingerprint(frame, url, table, query)
