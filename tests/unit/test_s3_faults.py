"""The S3 backend through a fault-injecting TCP proxy (tests/s3_proxy.py) in front of the real
test server (SeaweedFS): connections reset mid-request or mid-response, every k-th connection
reset, an endpoint that never answers, and one that answers slowly. The project's own storage
functions, the s3:// data reader and the registry's reads go through the proxy; what is stored is
checked with a plain minio client that bypasses it. No wall-clock assertions."""

from __future__ import annotations

import io
import itertools
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from minio import Minio

from components.common.storage import RETRY_ATTEMPTS, StorageUnavailable, open_storage
from components.core.registry import champion_pointer, history
from components.core.source.files import ReadOptions, read_s3_table
from tests.conftest import make_bucket, s3_client
from tests.s3_proxy import FaultProxy, Faults
from tests.support import seaweedfs

BUCKET = "fault-tests"
MB = 1024 * 1024
_prefixes = itertools.count()


@pytest.fixture()
def server(s3_env, monkeypatch: pytest.MonkeyPatch):
    """The test server with the bucket, and retries that back off in hundredths of a second
    (the number of attempts stays the project's)."""
    make_bucket(s3_env, BUCKET)
    monkeypatch.setattr("components.common.storage.RETRY_BACKOFF", 0.01)
    monkeypatch.setattr("components.common.storage.RETRY_BACKOFF_MAX", 0.05)
    return s3_env


@pytest.fixture()
def proxy(server):
    port = int(server.endpoint.rpartition(":")[2])
    with FaultProxy(port) as running:
        yield running


@pytest.fixture()
def direct(server) -> Minio:
    """A plain minio client on the server itself, not through the proxy."""
    return s3_client(server)


@pytest.fixture()
def prefix() -> str:
    return f"run{os.getpid()}-{next(_prefixes)}"


def store_via(proxy: FaultProxy, prefix: str):
    return open_storage(f"s3://{BUCKET}/{prefix}", proxy.endpoint)


def stored(direct: Minio, name: str) -> bytes | None:
    """The object's bytes as the server holds them, None when it is absent."""
    from minio.error import S3Error

    try:
        response = direct.get_object(BUCKET, name)
    except S3Error as error:
        if error.code == "NoSuchKey":
            return None
        raise
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def put_direct(direct: Minio, name: str, data: bytes) -> None:
    direct.put_object(BUCKET, name, io.BytesIO(data), len(data))


def check_one_clear_line(message: str, proxy: FaultProxy) -> None:
    assert "\n" not in message
    assert f"127.0.0.1:{proxy.port}" in message  # names the endpoint
    assert f"after {RETRY_ATTEMPTS} retries" in message
    for secret in (seaweedfs.SECRET_KEY, seaweedfs.ACCESS_KEY):
        assert secret not in message


# (a) transient resets are retried and the operation gets the right bytes


def test_an_upload_reset_midway_is_retried(proxy: FaultProxy, direct: Minio, prefix: str) -> None:
    data = os.urandom(MB)
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_request=300_000, limit=2)
    store.put_bytes(data, "model/weights.bin")
    assert proxy.resets == 2
    assert stored(direct, f"{prefix}/model/weights.bin") == data


def test_a_download_reset_midway_is_retried(
    proxy: FaultProxy, direct: Minio, prefix: str, tmp_path: Path
) -> None:
    data = os.urandom(3 * MB)
    put_direct(direct, f"{prefix}/data.bin", data)
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_response=MB, limit=2)
    target = tmp_path / "down" / "data.bin"
    store.get_file("data.bin", target)
    assert proxy.resets == 2
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["data.bin"]  # no partial file beside it


def test_a_multipart_upload_retries_the_part_that_was_reset(
    proxy: FaultProxy, direct: Minio, prefix: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * MB))  # three 5 MiB parts
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_request=3 * MB, limit=2)  # parts go up in parallel
    store.put_file(big, "big.bin")
    assert proxy.resets >= 1
    assert stored(direct, f"{prefix}/big.bin") == big.read_bytes()


def test_every_other_connection_reset_at_once(
    proxy: FaultProxy, direct: Minio, prefix: str, tmp_path: Path
) -> None:
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_response=0, every=2)  # reset before any answer
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "card.json").write_text('{"a": 1}')
    (folder / "sub" / "weights.bin").write_bytes(os.urandom(200_000))
    for round_ in range(3):  # keep-alive reuses connections: open fresh pools each round
        store = store_via(proxy, prefix)
        store.put_dir(folder, f"v{round_}")
        assert store.exists(f"v{round_}/card.json")
        assert store.keys(f"v{round_}") == [f"v{round_}/card.json", f"v{round_}/sub/weights.bin"]
        store.get_dir(f"v{round_}", tmp_path / f"back{round_}")
        back = tmp_path / f"back{round_}" / "sub" / "weights.bin"
        assert back.read_bytes() == (folder / "sub" / "weights.bin").read_bytes()
    assert proxy.resets >= 1


def test_s3_data_and_the_registry_read_through_resets(
    proxy: FaultProxy, direct: Minio, prefix: str, titanic: pd.DataFrame
) -> None:
    half = len(titanic) // 2
    for name, part in (("a.csv", titanic.iloc[:half]), ("b.csv", titanic.iloc[half:])):
        put_direct(direct, f"{prefix}/data/{name}", part.to_csv(index=False).encode())
    pointer = {
        "version": "v1",
        "run_id": "r1",
        "metric": "roc_auc",
        "score": 0.8,
        "previous": None,
        "promoted_at": "2026-12-01T00:00:00Z",
    }
    put_direct(direct, f"{prefix}/reg/champion.json", json.dumps(pointer).encode())
    put_direct(
        direct, f"{prefix}/reg/history/2026-12-01T00:00:00Z-v1.json", json.dumps(pointer).encode()
    )
    proxy.faults = Faults(reset_after_response=20_000, chunk=4096, limit=3)
    table = read_s3_table(f"s3://{BUCKET}/{prefix}/data", proxy.endpoint, ReadOptions())
    assert len(table) == len(titanic)
    assert list(table.columns) == list(titanic.columns)
    registry = f"s3://{BUCKET}/{prefix}/reg"
    assert champion_pointer(registry, proxy.endpoint) == pointer
    assert history(registry, proxy.endpoint) == [pointer]
    assert proxy.resets >= 1


# (b) a persistently failing endpoint: one clear line after a bounded number of retries


def test_an_endpoint_that_always_resets_fails_with_one_clear_line(
    proxy: FaultProxy, prefix: str
) -> None:
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_response=0)
    with pytest.raises(StorageUnavailable) as error:
        store.put_bytes(b"x" * 1000, "a.bin")
    message = str(error.value)
    check_one_clear_line(message, proxy)
    assert message.startswith(f"cannot write 's3://{BUCKET}/{prefix}/a.bin'")
    assert "connection reset" in message
    assert proxy.connections == RETRY_ATTEMPTS + 1  # the first try and six retries, no more
    for attempt in (lambda: store.get_bytes("a.bin"), lambda: store.keys("x")):
        with pytest.raises(StorageUnavailable) as error:
            attempt()
        check_one_clear_line(str(error.value), proxy)


def test_a_download_always_reset_midway_gives_up_and_leaves_no_file(
    proxy: FaultProxy, direct: Minio, prefix: str, tmp_path: Path
) -> None:
    put_direct(direct, f"{prefix}/data.bin", os.urandom(2 * MB))
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_response=MB // 2)
    target = tmp_path / "down" / "data.bin"
    with pytest.raises(StorageUnavailable) as error:
        store.get_file("data.bin", target)
    check_one_clear_line(str(error.value), proxy)
    assert str(error.value).startswith(f"cannot read 's3://{BUCKET}/{prefix}/data.bin'")
    assert proxy.connections <= 2 * (RETRY_ATTEMPTS + 1)  # bounded
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_an_endpoint_that_never_answers_times_out(
    proxy: FaultProxy, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("components.common.storage.READ_TIMEOUT", 0.3)
    store = store_via(proxy, prefix)
    proxy.faults = Faults(silent=True)
    with pytest.raises(StorageUnavailable) as error:
        store.get_bytes("a.bin")
    check_one_clear_line(str(error.value), proxy)
    assert "timed out" in str(error.value)
    assert proxy.connections == RETRY_ATTEMPTS + 1


def test_the_cli_shows_one_line_and_exit_1(
    proxy: FaultProxy, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main

    proxy.faults = Faults(reset_after_response=0)
    code = main(
        [
            "validate",
            "--data",
            f"s3://{BUCKET}/{prefix}/data.csv",
            "--target",
            "y",
            "--s3-endpoint",
            proxy.endpoint,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("failed: cannot "), err
    check_one_clear_line(lines[0], proxy)


# (c) nothing half-written becomes visible


def test_a_torn_overwrite_leaves_the_old_object(
    proxy: FaultProxy, direct: Minio, prefix: str
) -> None:
    old, new = os.urandom(MB), os.urandom(MB)
    put_direct(direct, f"{prefix}/champion.bin", old)
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_request=600_000)  # every connection, mid-body
    with pytest.raises(StorageUnavailable):
        store.put_bytes(new, "champion.bin")
    assert stored(direct, f"{prefix}/champion.bin") == old
    with pytest.raises(StorageUnavailable):
        store.put_bytes(new, "fresh.bin")
    assert stored(direct, f"{prefix}/fresh.bin") is None


def test_a_torn_multipart_upload_leaves_nothing(
    proxy: FaultProxy, direct: Minio, prefix: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * MB))
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_request=3 * MB)  # every part is cut
    with pytest.raises(StorageUnavailable):
        store.put_file(big, "big.bin")
    assert stored(direct, f"{prefix}/big.bin") is None
    assert [o.object_name for o in direct.list_objects(BUCKET, prefix=f"{prefix}/")] == []


def test_transient_resets_give_the_whole_new_object(
    proxy: FaultProxy, direct: Minio, prefix: str
) -> None:
    old, new = os.urandom(MB), os.urandom(MB)
    put_direct(direct, f"{prefix}/champion.bin", old)
    store = store_via(proxy, prefix)
    proxy.faults = Faults(reset_after_request=600_000, limit=3)
    store.put_bytes(new, "champion.bin")
    assert stored(direct, f"{prefix}/champion.bin") == new


# (d) a slow endpoint still works


def test_a_slow_endpoint_still_works(
    proxy: FaultProxy, direct: Minio, prefix: str, titanic: pd.DataFrame, tmp_path: Path
) -> None:
    put_direct(direct, f"{prefix}/data/t.csv", titanic.to_csv(index=False).encode())
    proxy.faults = Faults(delay=(0.05, 0.2), chunk=32 * 1024)
    store = store_via(proxy, prefix)
    data = os.urandom(200_000)
    store.put_bytes(data, "slow.bin")
    assert store.get_bytes("slow.bin") == data
    assert store.exists("slow.bin") and store.keys("slow.bin") == ["slow.bin"]
    table = read_s3_table(f"s3://{BUCKET}/{prefix}/data", proxy.endpoint, ReadOptions())
    assert len(table) == len(titanic)
    assert proxy.resets == 0


# HTTP errors from the endpoint (a throttling S3, a load balancer in front of a dead one)

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
BAD_GATEWAY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [(503, SLOW_DOWN, "application/xml"), (502, BAD_GATEWAY, "text/html")],
    ids=["503-slowdown", "502-html"],
)
def test_an_endpoint_answering_5xx_is_retried_then_unavailable(
    proxy: FaultProxy, direct: Minio, prefix: str, status: int, body: bytes, content_type: str
) -> None:
    proxy.faults = Faults(status=status, body=body, content_type=content_type, limit=2)
    store = store_via(proxy, prefix)  # a new pool: its first connections get the errors
    store.put_bytes(b"after", "a.bin")  # two errors, then the retry gets through
    assert proxy.faulted == 2 and stored(direct, f"{prefix}/a.bin") == b"after"
    proxy.faults = Faults(status=status, body=body, content_type=content_type)
    for attempt in (
        lambda store: store.put_bytes(b"never", "a.bin"),
        lambda store: store.get_bytes("a.bin"),
        lambda store: store.exists("a.bin"),
        lambda store: store.keys(),
    ):
        before = proxy.connections
        with pytest.raises(StorageUnavailable) as error:
            attempt(store_via(proxy, prefix))  # no kept-alive connection that passes through
        check_one_clear_line(str(error.value), proxy)
        assert f"HTTP {status}" in str(error.value)
        assert proxy.connections - before == RETRY_ATTEMPTS + 1
    assert stored(direct, f"{prefix}/a.bin") == b"after"
