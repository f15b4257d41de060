"""The storage interface, the same suite against every backend: a local folder and a real S3
server (SeaweedFS), as optuna's STORAGE_MODES pattern does for its storages."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from components.common.errors import BadInputError
from components.common.storage import (
    LocalStorage,
    S3Storage,
    StorageUnavailable,
    clean_key,
    open_storage,
    parse_endpoint,
    parse_s3_uri,
)
from tests.conftest import make_bucket
from tests.support import seaweedfs

BACKENDS = ["local", "s3"]
_prefixes = itertools.count()


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return open_storage(str(tmp_path / "store"))
    server = request.getfixturevalue("s3_env")
    make_bucket(server, "stablepipe-tests")
    return open_storage(f"s3://stablepipe-tests/run{next(_prefixes)}", server.endpoint)


def test_backends_are_what_the_uri_says(storage, tmp_path: Path) -> None:
    assert isinstance(storage, LocalStorage if not storage.uri.startswith("s3://") else S3Storage)


def test_bytes_and_files_round_trip(storage, tmp_path: Path) -> None:
    storage.put_bytes(b"hello", "a/b.txt")
    assert storage.get_bytes("a/b.txt") == b"hello"
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(1000))
    storage.put_file(source, "c.bin")
    storage.get_file("c.bin", tmp_path / "copy" / "c.bin")
    assert (tmp_path / "copy" / "c.bin").read_bytes() == source.read_bytes()
    storage.put_bytes(b"second", "a/b.txt")
    assert storage.get_bytes("a/b.txt") == b"second"


def test_keys_exists_and_delete(storage) -> None:
    for key in ("runs/1/summary.json", "runs/1/model/model.joblib", "runs/2/summary.json", "x"):
        storage.put_bytes(b"{}", key)
    assert storage.keys("runs/1") == ["runs/1/model/model.joblib", "runs/1/summary.json"]
    assert storage.keys() == sorted(
        ["runs/1/model/model.joblib", "runs/1/summary.json", "runs/2/summary.json", "x"]
    )
    assert storage.keys("x") == ["x"]
    assert storage.keys("nothing") == []
    assert storage.exists("runs/2/summary.json") and not storage.exists("runs/3/summary.json")
    storage.delete_prefix("runs/1")
    assert storage.keys("runs") == ["runs/2/summary.json"]


def test_folders_round_trip(storage, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.json").write_text('{"a": 1}')
    (folder / "sub" / "weights.bin").write_bytes(b"\x00" * 100)
    keys = storage.put_dir(folder, "versions/v1/model")
    assert keys == ["versions/v1/model/model.json", "versions/v1/model/sub/weights.bin"]
    storage.get_dir("versions/v1/model", tmp_path / "back")
    assert (tmp_path / "back" / "model.json").read_text() == '{"a": 1}'
    assert (tmp_path / "back" / "sub" / "weights.bin").read_bytes() == b"\x00" * 100


def test_a_large_file_streams_in_parts(storage, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        for _ in range(40):
            handle.write(os.urandom(1024 * 1024))  # 40 MB: several multipart parts
    storage.put_file(big, "big.bin")
    storage.get_file("big.bin", tmp_path / "big.copy")
    assert (tmp_path / "big.copy").stat().st_size == big.stat().st_size
    assert (tmp_path / "big.copy").read_bytes()[-4096:] == big.read_bytes()[-4096:]


def test_missing_objects_are_clear_errors(storage, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"no such object: .*missing\.txt"):
        storage.get_bytes("missing.txt")
    with pytest.raises(BadInputError, match="nothing is stored under"):
        storage.get_dir("empty", tmp_path / "x")


def test_replace_if_is_a_compare_and_swap(storage) -> None:
    """Absent: only a writer expecting nothing wins. Present: only the tag read last wins; a
    stale tag changes nothing and says so."""
    assert storage.read_tagged("pointer.json") is None
    assert storage.replace_if(b"one", "pointer.json", "stale") is False
    assert storage.read_tagged("pointer.json") is None
    assert storage.replace_if(b"one", "pointer.json", None) is True
    assert storage.replace_if(b"rival", "pointer.json", None) is False  # it exists now
    data, first = storage.read_tagged("pointer.json")
    assert data == b"one"
    assert storage.replace_if(b"two", "pointer.json", first) is True
    assert storage.replace_if(b"three", "pointer.json", first) is False  # `first` is stale
    data, second = storage.read_tagged("pointer.json")
    assert data == b"two" and second != first
    assert storage.keys() == ["pointer.json"]  # no lock or partial file beside it


def test_delete_prefix_leaves_no_empty_folders(storage, tmp_path: Path) -> None:
    storage.put_bytes(b"a", "versions/v1/model/model.skops")
    storage.put_bytes(b"b", "versions/v1/version.json")
    storage.put_bytes(b"c", "versions/v2/version.json")
    storage.delete_prefix("versions/v1")
    assert storage.keys() == ["versions/v2/version.json"]
    if isinstance(storage, LocalStorage):
        assert not (storage.root / "versions" / "v1").exists()


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/absolute"])
def test_keys_may_not_escape_the_root(storage, key: str) -> None:
    with pytest.raises(BadInputError, match=r"without '\.\.'"):
        storage.put_bytes(b"x", key)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://", "names no bucket"),
        ("s3://Upper_Case/x", "not a valid S3 bucket name"),
        ("s3://ab/x", "not a valid S3 bucket name"),
        ("s3://bucket/a/../b", r"without '\.\.'"),
        ("gs://bucket/x", "local folder or s3://"),
    ],
)
def test_malformed_uris(uri: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        if uri.startswith("s3://"):
            parse_s3_uri(uri)
        else:
            open_storage(uri)


def test_endpoint_forms() -> None:
    assert parse_endpoint("http://minio:9000") == ("minio:9000", False)
    assert parse_endpoint("https://minio.example:9000") == ("minio.example:9000", True)
    assert parse_endpoint("minio.example:9000") == ("minio.example:9000", True)
    with pytest.raises(BadInputError, match="--s3-endpoint must be"):
        parse_endpoint("ftp://x:1/path")


def test_clean_key() -> None:
    assert clean_key("a//b/./c") == "a/b/c"


def test_wrong_credentials_fail_at_once_without_leaking_them(s3_env, monkeypatch) -> None:
    make_bucket(s3_env, "stablepipe-tests")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-5f2c")
    store = open_storage("s3://stablepipe-tests/x", s3_env.endpoint)
    with pytest.raises(BadInputError) as error:  # permanent: a BadInputError, not retried
        store.put_bytes(b"x", "a")
    assert "the secret key does not match the access key" in str(error.value)
    assert "not-the-secret-5f2c" not in str(error.value)
    assert seaweedfs.ACCESS_KEY not in str(error.value)


def test_missing_bucket_is_a_clear_error(s3_env) -> None:
    store = open_storage("s3://no-such-bucket-here/x", s3_env.endpoint)
    with pytest.raises(BadInputError, match="the bucket does not exist"):
        store.put_bytes(b"x", "a")


def test_missing_credentials(monkeypatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "MINIO_ACCESS_KEY",
        "MINIO_SECRET_KEY",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BadInputError, match="S3 needs credentials in the environment"):
        open_storage("s3://bucket/x", "http://127.0.0.1:9")


def test_an_endpoint_that_does_not_resolve_is_bad_input(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    monkeypatch.setattr("components.common.storage.RETRY_BACKOFF", 0.01)
    store = open_storage("s3://bucket/x", "http://no-such-host.invalid:9000")
    with pytest.raises(BadInputError, match="does not resolve; set --s3-endpoint"):
        store.get_bytes("a")


def test_unreachable_endpoint_is_retried_then_reported(monkeypatch) -> None:
    from tests.support.seaweedfs import free_ports

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    monkeypatch.setattr("components.common.storage.RETRY_BACKOFF", 0.05)
    (port,) = free_ports(1)  # nothing listens there: connection refused
    store = open_storage("s3://bucket/x", f"http://127.0.0.1:{port}")
    with pytest.raises(StorageUnavailable, match="did not answer after 6 retries"):
        store.get_bytes("a")
