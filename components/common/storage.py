"""One storage interface, two backends: a local folder and an S3 bucket prefix (MinIO, SeaweedFS,
AWS S3) through the `minio` client. Stages and the CLI use `open_storage(uri)` and never ask
which backend they got.

Keys are relative, '/'-separated paths under the storage's root. Files move by streaming
(minio's multipart upload in 5 MiB parts; downloads streamed to a temporary file, then
renamed), so a large artifact needs no memory of its size. Credentials come only from the
environment and never appear in messages. Transient S3 failures (connection refused or reset,
timeouts, 5xx, SlowDown) are retried with exponential backoff for a bounded time, a download
cut midway resumes where it stopped; then StorageUnavailable names the URI, the endpoint and
the cause in one line. Permanent ones (access denied, no such bucket) fail at once as a
BadInputError that names the URI.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from components.common.errors import BadInputError, Unavailable, redact_url

S3_PREFIX = "s3://"
# Default S3 endpoint: the MinIO service of a standard Kubeflow Pipelines install.
DEFAULT_S3_ENDPOINT = "http://minio-service.kubeflow:9000"
CREDENTIAL_ENV_PAIRS = (
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"),
    ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
)
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PERMANENT_CODES = {
    "AccessDenied": "access denied",
    "InvalidAccessKeyId": "the access key is not known to the server",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "NoSuchBucket": "the bucket does not exist",
    "InvalidBucketName": "the bucket name is not valid",
}
# Error codes of an S3 answer that say "try again later" (an HTTP 5xx is always transient).
TRANSIENT_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"}
# Retries of a transient failure: the first try and 6 retries, waiting 0, 1, 2, 4, 8 and 8 s
# before them (urllib3's backoff, 0.5 s doubling, capped at 8 s: about 23 s in all). A
# download cut after its answer began resumes from the bytes it has, up to 6 times as well.
RETRY_ATTEMPTS = 6
RETRY_BACKOFF = 0.5
RETRY_BACKOFF_MAX = 8.0
# Seconds to connect, and to wait for any one read (a silent server: 7 tries of 60 s each).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
DOWNLOAD_CHUNK = 1024 * 1024


def clean_key(key: str) -> str:
    """A relative '/'-separated key; `..`, absolute keys and empty parts are rejected."""
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
    if key.startswith("/") or any(p == ".." for p in parts):
        raise BadInputError(f"storage keys must be relative paths without '..'; got {key!r}")
    return "/".join(parts)


class MissingObject(BadInputError):
    """The key names no object (a BadInputError: the user named it)."""


class Storage(ABC):
    """Objects under one root (a folder or an S3 bucket prefix)."""

    uri: str

    def uri_of(self, key: str) -> str:
        """The full URI of a key, for messages and summaries."""
        key = clean_key(key)
        return f"{self.uri.rstrip('/')}/{key}" if key else self.uri

    @abstractmethod
    def put_file(self, local: str | Path, key: str) -> None: ...

    @abstractmethod
    def get_file(self, key: str, local: str | Path) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def keys(self, prefix: str = "") -> list[str]:
        """Every key under `prefix` (recursively), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def version_tag(self, key: str) -> str:
        """Changes whenever the object's content changes (a hash, or ETag and size on S3)."""

    @abstractmethod
    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and a tag of exactly that content (for `replace_if`), or None
        when there is no such object."""

    @abstractmethod
    def replace_if(self, data: bytes, key: str, tag: str | None) -> bool:
        """Compare and swap: write `data` at `key` only while the object is still the one
        `tag` (from read_tagged) names, or, with `tag` None, only while there is none. True
        when `data` was written; False when another writer changed the object first (then
        nothing is written). Two writers racing never both win."""

    def put_bytes(self, data: bytes, key: str) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "object"
            path.write_bytes(data)
            self.put_file(path, key)

    def get_bytes(self, key: str) -> bytes:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "object"
            self.get_file(key, path)
            return path.read_bytes()

    def put_dir(self, local_dir: str | Path, prefix: str) -> list[str]:
        """Upload every file under `local_dir` to `prefix/<relative path>`; return the keys."""
        root = Path(local_dir)
        keys = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = clean_key(f"{prefix}/{path.relative_to(root).as_posix()}")
            self.put_file(path, key)
            keys.append(key)
        return keys

    def get_dir(self, prefix: str, local_dir: str | Path) -> list[Path]:
        """Download every object under `prefix/` into `local_dir`, keeping relative paths."""
        prefix = clean_key(prefix)
        keys = self.keys(prefix)
        if not keys:
            raise BadInputError(f"nothing is stored under {self.uri_of(prefix)!r}")
        paths = []
        for key in keys:
            relative = PurePosixPath(key).relative_to(prefix) if prefix else PurePosixPath(key)
            target = Path(local_dir) / relative
            self.get_file(key, target)
            paths.append(target)
        return paths

    def delete_prefix(self, prefix: str) -> None:
        for key in self.keys(prefix):
            self.delete(key)


def durable(path: Path) -> None:
    """fsync a file or a folder: an object written is on disk before anyone relies on it (the
    MQTT collector drops readings from its spool once their file is landed)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class LocalStorage(Storage):
    """A folder on the local disk."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.uri = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / clean_key(key)

    def put_file(self, local: str | Path, key: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.copyfile(local, partial)
        durable(partial)
        partial.replace(target)
        durable(target.parent)  # the rename itself

    def get_file(self, key: str, local: str | Path) -> None:
        source = self.path(key)
        if not source.is_file():
            raise MissingObject(f"no such object: {self.uri_of(key)!r}")
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, local)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self, prefix: str = "") -> list[str]:
        base = self.path(prefix) if prefix else self.root
        if base.is_file():
            return [clean_key(prefix)]
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".partial")
        )

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def version_tag(self, key: str) -> str:
        from components.common.frames import file_sha256

        return file_sha256(self.path(key))

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        return data, hashlib.sha256(data).hexdigest()

    def replace_if(self, data: bytes, key: str, tag: str | None) -> bool:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with folder_lock(target.parent):  # writers of this folder's objects take turns
            current = self.read_tagged(key)
            if (current[1] if current else None) != tag:
                return False
            self.put_bytes(data, key)
        return True

    def delete_prefix(self, prefix: str) -> None:
        """Every file under `prefix`, and the folders that held them."""
        base = self.path(prefix)
        if base.is_dir() and not base.is_symlink():
            shutil.rmtree(base)
        else:
            base.unlink(missing_ok=True)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` held for the block: flock(2) on the folder itself, so no
    lock file is left behind, and the kernel releases it when its holder dies (kill -9)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`; BadInputError for anything malformed."""
    if not uri.startswith(S3_PREFIX):
        raise BadInputError(f"an S3 URI must start with s3://; got {uri!r}")
    bucket, _, prefix = uri[len(S3_PREFIX) :].partition("/")
    if not bucket:
        raise BadInputError(f"the S3 URI names no bucket: {uri!r}")
    if not BUCKET_NAME.match(bucket) or ".." in bucket:
        raise BadInputError(
            f"{bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.' or "
            f"'-', starting and ending with a letter or digit); got {uri!r}"
        )
    return bucket, clean_key(prefix)


def parse_endpoint(endpoint: str) -> tuple[str, bool]:
    """(host:port, secure): `http://h:p` is plain, `https://h:p` and a bare `h:p` use TLS."""
    value = endpoint.strip().rstrip("/")
    secure = not value.startswith("http://")
    host = re.sub(r"^https?://", "", value)
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host):
        raise BadInputError(
            f"--s3-endpoint must be http://host:port, https://host:port or host:port; "
            f"got {redact_url(endpoint)!r}"
        )
    return host, secure


def s3_credentials() -> tuple[str, str]:
    """Access and secret key from the environment (AWS_* or the MinIO names)."""
    for access_name, secret_name in CREDENTIAL_ENV_PAIRS:
        access, secret = os.environ.get(access_name), os.environ.get(secret_name)
        if access and secret:
            return access, secret
    names = " or ".join(f"{a}/{s}" for a, s in CREDENTIAL_ENV_PAIRS)
    raise BadInputError(f"S3 needs credentials in the environment: set {names}")


def retrying_http_client() -> Any:
    """urllib3 pool that retries connection errors, timeouts, 5xx and SlowDown with backoff."""
    import urllib3

    retry = urllib3.Retry(
        total=RETRY_ATTEMPTS,
        connect=RETRY_ATTEMPTS,
        read=RETRY_ATTEMPTS,
        status=RETRY_ATTEMPTS,
        backoff_factor=RETRY_BACKOFF,
        backoff_max=RETRY_BACKOFF_MAX,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # S3 requests are safe to repeat (a part, a whole object)
        raise_on_status=False,
    )
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=retry,
        maxsize=10,
    )


def transport_cause(error: BaseException) -> str:
    """A few words for why a connection failed: urllib3 wraps the socket's error in one or two
    layers (MaxRetryError.reason, ProtocolError's last argument, the exception's context)."""
    from urllib3.exceptions import NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain and len(chain) < 10:
        chain.append(seen)
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException) and seen.args:
            inner = seen.args[-1]
        if not isinstance(inner, BaseException):
            inner = seen.__cause__ or seen.__context__
        seen = inner if isinstance(inner, BaseException) else None
    for kind, words in (
        (ConnectionRefusedError, "connection refused"),
        ((ConnectionResetError, BrokenPipeError), "connection reset"),
        (NewConnectionError, "cannot connect"),
        ((Urllib3Timeout, TimeoutError), "timed out"),
        (ConnectionError, "connection closed"),
    ):
        if any(isinstance(link, kind) for link in chain):
            return words
    if "IncompleteRead" in str(error) or "RemoteDisconnected" in str(error):
        return "connection closed mid-answer"
    return type(error).__name__


class S3Storage(Storage):
    """A bucket prefix on an S3 server, through the minio client."""

    def __init__(self, uri: str, endpoint: str) -> None:
        from minio import Minio

        self.bucket, self.prefix = parse_s3_uri(uri)
        self.uri = f"{S3_PREFIX}{self.bucket}/{self.prefix}".rstrip("/")
        host, secure = parse_endpoint(endpoint)
        self.host = host
        access, secret = s3_credentials()
        self.client = Minio(
            host,
            access_key=access,
            secret_key=secret,
            secure=secure,
            http_client=retrying_http_client(),
        )

    def object_name(self, key: str) -> str:
        key = clean_key(key)
        return f"{self.prefix}/{key}" if self.prefix and key else (self.prefix or key)

    def call(self, what: str, key: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; permanent errors become one clear BadInputError, transient ones
        that outlasted the retries one StorageUnavailable (urllib3 retried them already)."""
        from minio.error import InvalidResponseError, S3Error, ServerError
        from urllib3.exceptions import HTTPError as TransportError
        from urllib3.exceptions import NameResolutionError

        try:
            return func(*args, **kwargs)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject"):
                raise MissingObject(f"no such object: {self.uri_of(key)!r}") from error
            status = getattr(error.response, "status", 0) or 0
            if error.code in TRANSIENT_CODES or status >= 500:
                raise self.unavailable(what, key, f"HTTP {status} {error.code}") from error
            reason = PERMANENT_CODES.get(error.code or "", f"S3 error {error.code}")
            raise BadInputError(f"cannot {what} {self.uri_of(key)!r}: {reason}") from error
        except (ServerError, InvalidResponseError) as error:  # a 5xx without S3's XML, a proxy
            status = (
                error.status_code if isinstance(error, ServerError) else getattr(error, "_code", 0)
            )
            if status >= 500 or status == 429:
                raise self.unavailable(what, key, f"HTTP {status}") from error
            raise BadInputError(
                f"cannot {what} {self.uri_of(key)!r}: the S3 endpoint {self.host!r} did not "
                f"answer as S3 does (HTTP {status}); check --s3-endpoint"
            ) from error
        except TransportError as error:
            if isinstance(getattr(error, "reason", None), NameResolutionError):
                raise BadInputError(
                    f"cannot {what} {self.uri_of(key)!r}: the S3 endpoint {self.host!r} does not "
                    "resolve; set --s3-endpoint (or s3_endpoint in the config)"
                ) from error
            raise self.unavailable(what, key, transport_cause(error)) from error

    def unavailable(self, what: str, key: str, cause: str) -> StorageUnavailable:
        return StorageUnavailable(
            f"cannot {what} {self.uri_of(key)!r}: the S3 endpoint {self.host!r} did not answer "
            f"after {RETRY_ATTEMPTS} retries ({cause})"
        )

    def put_file(self, local: str | Path, key: str) -> None:
        self.call(
            "write",
            key,
            self.client.fput_object,
            self.bucket,
            self.object_name(key),
            str(local),
        )

    def get_file(self, key: str, local: str | Path) -> None:
        """Stream the object to a partial file beside `local`, renamed into place once whole
        (never a torn file at `local`, nothing left beside it on failure)."""
        target = Path(local)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            self.call("read", key, self.download, self.object_name(key), partial)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    def download(self, name: str, partial: Path) -> None:
        """The object's bytes into `partial`. urllib3 retries a request until its answer
        begins, not a body cut midway (minio's fget_object gives up on the first reset and
        leaves its .part.minio file): such a cut resumes from the bytes already written, with
        If-Match on the ETag so a changed object starts over, up to RETRY_ATTEMPTS times."""
        from minio.error import S3Error
        from urllib3.exceptions import ProtocolError, ReadTimeoutError

        stat = self.client.stat_object(self.bucket, name)
        failures = 0
        with open(partial, "wb") as out:
            while True:
                headers: dict[str, str | list[str] | tuple[str]] | None = (
                    {"If-Match": f'"{stat.etag}"'} if stat.etag else None
                )
                try:
                    response = self.client.get_object(
                        self.bucket, name, offset=out.tell(), request_headers=headers
                    )
                except S3Error as error:
                    if error.code != "PreconditionFailed":
                        raise
                    failures += 1  # the object was replaced meanwhile: start over
                    if failures > RETRY_ATTEMPTS:
                        raise
                    stat = self.client.stat_object(self.bucket, name)
                    out.seek(0)
                    out.truncate()
                    continue
                try:
                    for data in response.stream(DOWNLOAD_CHUNK):
                        out.write(data)
                    if stat.size is None or out.tell() >= stat.size:
                        return
                    raise ProtocolError(f"the answer ended at byte {out.tell()} of {stat.size}")
                except (ProtocolError, ReadTimeoutError):
                    failures += 1
                    if failures > RETRY_ATTEMPTS:
                        raise
                    time.sleep(min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2 ** (failures - 1)))
                finally:
                    response.close()
                    response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self.call("check", key, self.client.stat_object, self.bucket, self.object_name(key))
        except MissingObject:
            return False
        return True

    def keys(self, prefix: str = "") -> list[str]:
        name = self.object_name(prefix)
        strip = f"{self.prefix}/" if self.prefix else ""

        def names() -> list[str]:  # the listing is lazy: errors surface while iterating
            objects = self.client.list_objects(
                self.bucket, prefix=f"{name}/" if name else None, recursive=True
            )
            return [o.object_name for o in objects if not o.object_name.endswith("/")]

        found = sorted(n.removeprefix(strip) for n in self.call("list", prefix, names))
        if not found and prefix and self.exists(prefix):
            return [clean_key(prefix)]
        return found

    def delete(self, key: str) -> None:
        self.call("delete", key, self.client.remove_object, self.bucket, self.object_name(key))

    def version_tag(self, key: str) -> str:
        stat = self.call("check", key, self.client.stat_object, self.bucket, self.object_name(key))
        return f"{stat.etag}:{stat.size}"

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        def fetch() -> tuple[bytes, str]:
            response = self.client.get_object(self.bucket, self.object_name(key))
            try:
                return response.read(), str(response.headers.get("etag", ""))
            finally:
                response.close()
                response.release_conn()

        try:
            return self.call("read", key, fetch)
        except MissingObject:
            return None

    def replace_if(self, data: bytes, key: str, tag: str | None) -> bool:
        """S3's conditional write (If-Match on the ETag, If-None-Match: * for a new object;
        AWS S3, MinIO and SeaweedFS honour both). A retried request whose first attempt was
        stored but whose answer was lost meets its own object: that counts as written."""
        from minio.error import S3Error

        condition: dict[str, str | list[str] | tuple[str]] = (
            {"If-Match": tag} if tag else {"If-None-Match": "*"}
        )

        def put() -> bool:
            try:
                # minio's public put_object sends no conditional headers; its PutObject call does
                self.client._put_object(self.bucket, self.object_name(key), data, condition)
            except S3Error as error:
                if error.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
            return True

        if self.call("write", key, put):
            return True
        current = self.read_tagged(key)
        return current is not None and current[0] == data


class StorageUnavailable(Unavailable):
    """The store did not answer within the retry budget (an internal failure, exit code 1)."""


def open_parent(location: str, endpoint: str = "") -> tuple[Storage, str]:
    """The storage of a file's folder (local or s3://) and the file's name in it."""
    parent, _, name = location.rstrip("/").rpartition("/")
    if not parent:  # "/file" lives in the root folder, "file" in the current one
        parent = "/" if location.startswith("/") else "."
    return open_storage(parent, endpoint), name


def open_storage(uri: str, endpoint: str = "") -> Storage:
    """`s3://bucket/prefix` (with `endpoint`, default the in-cluster MinIO) or a local folder."""
    if uri.startswith(S3_PREFIX):
        return S3Storage(uri, endpoint or DEFAULT_S3_ENDPOINT)
    if "://" in uri:
        raise BadInputError(f"storage must be a local folder or s3://bucket/prefix; got {uri!r}")
    return LocalStorage(Path(uri))
