"""S3Storage: objects in an S3 (or S3-compatible: MinIO, moto) bucket, through boto3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from quantoxbay.storage.base import (
    CHUNK_SIZE,
    FileTooLarge,
    ObjectNotFound,
    StorageError,
    resolve_range,
    validate_key,
)

#: Uploads above this size use multipart upload; also the part size.
MULTIPART_THRESHOLD = 8 * 1024 * 1024

#: Longest lifetime SigV4 allows for a presigned URL (7 days).
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class _LimitedReader:
    """A read-only, non-seekable view of a stream that counts and caps the bytes read.

    boto3's transfer manager reads it from its own threads; going over
    ``max_bytes`` raises :class:`FileTooLarge` there, which fails (and aborts)
    the upload, and the flag is kept so the caller can tell why it failed.
    """

    def __init__(self, stream: BinaryIO, max_bytes: int | None) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self.count = 0
        self.too_large = False

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            if self.too_large:
                raise FileTooLarge(self._max_bytes or 0)
            if size is None or size < 0:
                # Never slurp the whole stream: read a bounded amount instead.
                size = CHUNK_SIZE
            data = self._stream.read(size)
            self.count += len(data)
            if self._max_bytes is not None and self.count > self._max_bytes:
                self.too_large = True
                raise FileTooLarge(self._max_bytes)
            return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    fallback = (
        "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\;%' else "_" for ch in filename).strip()
        or "download"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3Storage:
    """Objects in ``bucket`` under ``prefix``; key ``k`` is stored as ``prefix/k``.

    Uploads stream through boto3's transfer manager (multipart above
    :data:`MULTIPART_THRESHOLD`, a bounded number of parts in memory at once);
    downloads stream the body of a ranged ``GetObject``.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client: Any | None = None,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_THRESHOLD,
        max_concurrency: int = 4,
    ) -> None:
        """Create the store.

        Args:
            bucket: Bucket name; the bucket must exist.
            prefix: Key prefix inside the bucket (``/`` at the ends is ignored).
            endpoint_url: S3-compatible endpoint (MinIO, moto); ``None`` for AWS.
            client: A ready boto3 S3 client; built from the environment (AWS_*)
                when ``None``.
            multipart_threshold: Uploads larger than this use multipart upload.
            multipart_chunksize: Size of each part of a multipart upload.
            max_concurrency: Parts uploaded at once.
        """
        if not bucket:
            raise ValueError("bucket must not be empty")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        if client is None:
            config = Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
            )
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        self.client: Any = client
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            preferred_transfer_client="classic",
        )
        # A non-seekable upload is buffered part by part: bound how many parts
        # wait in memory (s3transfer's knob; boto3's TransferConfig omits it).
        self.transfer_config.max_in_memory_upload_chunks = max_concurrency + 1

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _head(self, key: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from exc
            raise StorageError(f"cannot stat {key!r}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot stat {key!r}: {exc}") from exc
        return result

    def put(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        """Upload ``stream`` with ``upload_fileobj`` (multipart for large files).

        Args:
            key: Where to store it.
            stream: Binary stream, read in parts until EOF.
            content_type: Stored as the object's ``Content-Type``
                (``application/octet-stream`` by default).
            max_bytes: Refuse more than this many bytes; a multipart upload in
                progress is aborted, so nothing is stored.

        Returns:
            The number of bytes uploaded.

        Raises:
            InvalidKey: If the key is not acceptable.
            FileTooLarge: If more than ``max_bytes`` bytes arrived.
            StorageError: If S3 refuses or cannot be reached.
        """
        object_key = self._object_key(key)
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        reader = _LimitedReader(stream, max_bytes)
        extra = {"ContentType": content_type or "application/octet-stream"}
        try:
            self.client.upload_fileobj(
                reader, self.bucket, object_key, ExtraArgs=extra, Config=self.transfer_config
            )
        except FileTooLarge:
            raise
        except (ClientError, BotoCoreError) as exc:
            if reader.too_large:
                raise FileTooLarge(max_bytes or 0) from exc
            raise StorageError(f"cannot upload {key!r}: {exc}") from exc
        except Exception:
            if reader.too_large:
                raise FileTooLarge(max_bytes or 0) from None
            raise
        if reader.too_large:  # pragma: no cover - upload_fileobj always re-raises
            raise FileTooLarge(max_bytes or 0)
        return reader.count

    def open_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Stream an inclusive byte range of the object with a ranged ``GetObject``.

        The object is looked up (``HeadObject``) and the range checked here; the
        download starts on the first ``next()`` and asks for the same ETag, so an
        object replaced in between fails loudly instead of mixing versions.

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If nothing is stored under the key.
            ValueError: If the range does not fit the object or ``chunk_size`` < 1.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        head = self._head(key)
        first, stop = resolve_range(start, end, int(head["ContentLength"]))
        return self._stream_range(key, first, stop, chunk_size, head.get("ETag"))

    def _stream_range(
        self, key: str, start: int, stop: int, chunk_size: int, etag: str | None
    ) -> Iterator[bytes]:
        if stop == start:
            return
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._object_key(key),
            "Range": f"bytes={start}-{stop - 1}",
        }
        if etag:
            params["IfMatch"] = etag
        try:
            response = self.client.get_object(**params)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from exc
            raise StorageError(f"cannot read {key!r}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {key!r}: {exc}") from exc
        body = response["Body"]
        remaining = stop - start
        try:
            while remaining > 0:
                try:
                    chunk = body.read(min(chunk_size, remaining))
                except BotoCoreError as exc:
                    raise StorageError(f"reading {key!r} failed: {exc}") from exc
                if not chunk:
                    raise StorageError(f"{key!r} ended early while being read")
                remaining -= len(chunk)
                yield chunk
        finally:
            body.close()

    def size(self, key: str) -> int:
        """Return the object's size in bytes (``HeadObject``).

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If nothing is stored under the key.
        """
        return int(self._head(key)["ContentLength"])

    def exists(self, key: str) -> bool:
        """Return whether an object is stored under ``key``."""
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Delete the object (S3 deletes are idempotent).

        Raises:
            InvalidKey: If the key is not acceptable.
            StorageError: If S3 refuses or cannot be reached.
        """
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot delete {key!r}: {exc}") from exc

    def presigned_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str | None:
        """Return a presigned ``GetObject`` URL, valid for ``expires_in`` seconds.

        Args:
            key: The object's key (its existence is not checked).
            expires_in: Lifetime in seconds, 1 to 604800 (7 days).
            filename: When given, the download is served as an attachment
                with this name.

        Returns:
            The URL.

        Raises:
            InvalidKey: If the key is not acceptable.
            ValueError: If ``expires_in`` is out of bounds.
        """
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS}")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._object_key(key)}
        if filename:
            params["ResponseContentDisposition"] = _content_disposition(filename)
        try:
            url: str = self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot presign {key!r}: {exc}") from exc
        return url

    def local_path(self, key: str) -> Path | None:
        """S3 objects have no local file: always ``None``."""
        validate_key(key)
        return None
