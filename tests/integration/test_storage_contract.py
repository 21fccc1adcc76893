"""One contract for every storage backend: LocalStorage and S3Storage (moto server)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from quantoxbay.storage import (
    FileTooLarge,
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageError,
    storage_from_url,
    validate_key,
)

pytestmark = pytest.mark.timeout(60)

BUCKET = "quantoxbay-test"
MIB = 1024 * 1024


class GeneratedStream(io.RawIOBase):
    """A deterministic, non-seekable stream of ``size`` bytes made on the fly."""

    def __init__(self, size: int, seed: int = 1) -> None:
        self._size = size
        self._pos = 0
        self._block = hashlib.sha256(str(seed).encode()).digest() * (MIB // 32 + 1)
        self.max_read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        self.max_read = max(self.max_read, n)
        n = min(n, self._size - self._pos)
        out = bytearray()
        while len(out) < n:
            offset = (self._pos + len(out)) % MIB
            out += self._block[offset : offset + min(n - len(out), MIB - offset)]
        self._pos += n
        return bytes(out)


def binary(stream: io.RawIOBase) -> BinaryIO:
    """A raw stream as the ``BinaryIO`` that ``Storage.put`` is typed with (it only calls read)."""
    return cast(BinaryIO, stream)


def sha256_of(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


# --- backends -------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (real HTTP), with fake credentials, one bucket."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_SESSION_TOKEN", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="module")
def s3_client(moto_endpoint: str) -> Any:
    """One boto3 client for the module (building one per test costs ~0.2 s)."""
    client = S3Storage(BUCKET, endpoint_url=moto_endpoint).client
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each backend, empty: a fresh root, or a fresh prefix in the shared bucket."""
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    client = request.getfixturevalue("s3_client")
    return S3Storage(BUCKET, f"t/{uuid.uuid4().hex}", client=client)


def put_bytes(storage: Storage, key: str, data: bytes, **kw: Any) -> int:
    return storage.put(key, io.BytesIO(data), **kw)


def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(storage.open_range(key, start, end))


# --- the contract ----------------------------------------------------------------


def test_storage_satisfies_protocol(storage: Storage) -> None:
    assert isinstance(storage, Storage)


def test_put_then_read_round_trip(storage: Storage) -> None:
    data = os.urandom(3 * MIB + 17)
    assert put_bytes(storage, "products/1/file.bin", data, content_type="application/zip") == len(data)
    assert read_all(storage, "products/1/file.bin") == data
    assert storage.size("products/1/file.bin") == len(data)
    assert storage.exists("products/1/file.bin")


def test_chunks_are_bounded_by_chunk_size(storage: Storage) -> None:
    data = os.urandom(100_000)
    put_bytes(storage, "k", data)
    chunks = list(storage.open_range("k", chunk_size=4096))
    assert b"".join(chunks) == data
    assert all(0 < len(c) <= 4096 for c in chunks)
    assert len(chunks) == -(-len(data) // 4096)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, slice(0, 1)),  # first byte
        (1000, 1999, slice(1000, 2000)),  # middle
        (4999, 4999, slice(4999, 5000)),  # last byte
        (4999, None, slice(4999, 5000)),  # last byte, open end
        (0, 4999, slice(0, 5000)),  # whole, explicit
        (0, None, slice(0, 5000)),  # whole, default
        (123, None, slice(123, 5000)),  # suffix
    ],
)
def test_ranges(storage: Storage, start: int, end: int | None, expected: slice) -> None:
    data = os.urandom(5000)
    put_bytes(storage, "r/data", data)
    assert read_all(storage, "r/data", start, end) == data[expected]


@pytest.mark.parametrize(("start", "end"), [(5000, None), (5000, 5000), (0, 5000), (-1, 10), (10, 9)])
def test_out_of_range_raises_before_streaming(storage: Storage, start: int, end: int | None) -> None:
    put_bytes(storage, "r/data", os.urandom(5000))
    with pytest.raises(ValueError):
        storage.open_range("r/data", start, end)  # raises on the call, not on next()


def test_zero_byte_object(storage: Storage) -> None:
    assert put_bytes(storage, "empty", b"") == 0
    assert storage.exists("empty")
    assert storage.size("empty") == 0
    assert read_all(storage, "empty") == b""
    with pytest.raises(ValueError):
        storage.open_range("empty", 0, 0)


def test_missing_key_raises_object_not_found(storage: Storage) -> None:
    assert not storage.exists("nope/missing")
    with pytest.raises(ObjectNotFound):
        storage.size("nope/missing")
    with pytest.raises(ObjectNotFound):
        storage.open_range("nope/missing")
    assert issubclass(ObjectNotFound, StorageError)


def test_delete_is_idempotent(storage: Storage) -> None:
    put_bytes(storage, "d/x", b"abc")
    storage.delete("d/x")
    assert not storage.exists("d/x")
    with pytest.raises(ObjectNotFound):
        storage.size("d/x")
    storage.delete("d/x")
    storage.delete("never/was")


def test_overwrite_replaces_content(storage: Storage) -> None:
    put_bytes(storage, "o", b"first version, long")
    put_bytes(storage, "o", b"second")
    assert read_all(storage, "o") == b"second"
    assert storage.size("o") == 6


def test_max_bytes_exact_limit_is_accepted(storage: Storage) -> None:
    assert put_bytes(storage, "m", b"x" * 1000, max_bytes=1000) == 1000
    assert storage.size("m") == 1000


@pytest.mark.parametrize("size", [1001, 12 * MIB])  # single part and multipart for S3
def test_max_bytes_rejects_and_stores_nothing(storage: Storage, size: int) -> None:
    with pytest.raises(FileTooLarge):
        storage.put("m/too-big", binary(GeneratedStream(size)), max_bytes=size - 1)
    assert not storage.exists("m/too-big")
    if isinstance(storage, LocalStorage):
        assert [p for p in storage.root.rglob("*") if p.is_file()] == []
    if isinstance(storage, S3Storage):
        uploads = storage.client.list_multipart_uploads(Bucket=BUCKET, Prefix=storage.prefix)
        assert uploads.get("Uploads", []) == []


def test_failed_overwrite_keeps_old_object(storage: Storage) -> None:
    put_bytes(storage, "keep", b"old content")
    with pytest.raises(FileTooLarge):
        storage.put("keep", binary(GeneratedStream(5000)), max_bytes=100)
    assert read_all(storage, "keep") == b"old content"


def test_large_generated_stream_multipart(storage: Storage) -> None:
    size = 20 * MIB + 12345
    stream = GeneratedStream(size, seed=7)
    assert storage.put("big/file", binary(stream)) == size
    assert stream.max_read <= 8 * MIB  # read in chunks, never whole
    assert storage.size("big/file") == size
    expected = GeneratedStream(size, seed=7).read()
    assert sha256_of(storage.open_range("big/file")) == hashlib.sha256(expected).hexdigest()
    assert read_all(storage, "big/file", size - 10) == expected[-10:]
    if isinstance(storage, S3Storage):
        head = storage.client.head_object(Bucket=BUCKET, Key=f"{storage.prefix}/big/file")
        assert head["ETag"].strip('"').endswith("-3")  # 3 parts of 8 MiB: multipart was used


def test_presigned_url(storage: Storage) -> None:
    data = b"presigned payload \x00\xff"
    put_bytes(storage, "p/file.pdf", data, content_type="application/pdf")
    url = storage.presigned_url("p/file.pdf", expires_in=60, filename="Guide ü.pdf")
    if isinstance(storage, LocalStorage):
        assert url is None
        assert storage.local_path("p/file.pdf") == storage.root / "p" / "file.pdf"
        return
    assert url is not None and url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data
        disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Guide%20%C3%BC.pdf" in disposition
    assert storage.local_path("p/file.pdf") is None
    with pytest.raises(ValueError):
        storage.presigned_url("p/file.pdf", expires_in=0)


BAD_KEYS = [
    "",
    "../x",
    "/etc/passwd",
    "a/../../b",
    "a/..",
    "..",
    ".",
    "a/./b",
    "a//b",
    "a/",
    "..\\x",
    "a\\b",
    "a\x00b",
    "a\nb",
    "x" * 1025,
    "a/" + "y" * 256,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_rejected_everywhere(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.put(key, io.BytesIO(b"evil"))
    for call in (storage.size, storage.exists, storage.delete, storage.local_path, storage.open_range):
        with pytest.raises(InvalidKey):
            call(key)
    with pytest.raises(InvalidKey):
        storage.presigned_url(key, expires_in=60)


def test_unusual_but_valid_keys(storage: Storage) -> None:
    for key in ["a b/ü €.pdf", "..hidden", "x..y/z", ".dotfile", "a/b/c/d/e/f.txt"]:
        assert validate_key(key) == key
        put_bytes(storage, key, key.encode())
        assert read_all(storage, key) == key.encode()


# --- local only: path traversal and symlinks ------------------------------------------


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../b", "..\\x", "a\x00b", "../outside/escape"])
def test_local_traversal_writes_nothing_outside(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    store = LocalStorage(root)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(InvalidKey):
        store.put(key, io.BytesIO(b"evil"))
    assert sorted(tmp_path.rglob("*")) == before


def test_local_symlink_inside_root_pointing_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    store = LocalStorage(root)
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "filelink").symlink_to(outside / "secret.txt")

    with pytest.raises(InvalidKey):
        store.put("link/new.txt", io.BytesIO(b"evil"))
    with pytest.raises(InvalidKey):
        store.put("filelink", io.BytesIO(b"evil"))
    with pytest.raises(InvalidKey):
        store.open_range("link/secret.txt")
    with pytest.raises(InvalidKey):
        store.open_range("filelink")
    with pytest.raises(InvalidKey):
        store.delete("link/secret.txt")
    with pytest.raises(InvalidKey):
        store.local_path("filelink")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret"


def test_local_symlinked_root_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    store = LocalStorage(tmp_path / "alias")
    put_bytes(store, "a/b.txt", b"ok")
    assert (real / "a" / "b.txt").read_bytes() == b"ok"


def test_local_files_and_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = LocalStorage(tmp_path / "root")
        put_bytes(store, "products/7/abc/manual.pdf", b"secret")
        put_bytes(store, "products/7/abc/manual.pdf", b"replaced")  # an overwrite too
    finally:
        os.umask(old)
    root = tmp_path / "root"
    modes = {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *sorted(root.rglob("*"))]
    }
    assert modes == {
        ".": 0o700,
        "products": 0o700,
        "products/7": 0o700,
        "products/7/abc": 0o700,
        "products/7/abc/manual.pdf": 0o600,
    }


def test_local_put_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")

    class Exploding(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int | None = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("client went away")
            return b"z" * MIB

    put_bytes(store, "f", b"old")
    with pytest.raises(StorageError):
        store.put("f", binary(Exploding()))
    assert read_all(store, "f") == b"old"
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["f"]


# --- factory -------------------------------------------------------------------------


def test_storage_from_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    local = storage_from_url(f"file://{tmp_path / 'files'}")
    assert isinstance(local, LocalStorage) and local.root == (tmp_path / "files").resolve()
    s3 = storage_from_url("s3://bucket-name/some/prefix/", s3_endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == ("bucket-name", "some/prefix", "http://127.0.0.1:1")
    for bad in ["ftp://x/y", "file://host/path", "s3:///prefix", "relative/path"]:
        with pytest.raises(ValueError):
            storage_from_url(bad)
