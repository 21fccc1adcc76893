"""Build the configured storage backend from a URL (``STORAGE_URL``)."""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import unquote, urlsplit

from quantoxbay.storage.base import Storage


def storage_from_url(url: str, *, s3_endpoint_url: str | None = None) -> Storage:
    """Return the backend a storage URL names.

    Args:
        url: ``file:///absolute/dir`` for :class:`LocalStorage`, or
            ``s3://bucket/optional/prefix`` for :class:`S3Storage`.
        s3_endpoint_url: Endpoint of an S3-compatible store (MinIO, moto);
            ``None`` for AWS.

    Returns:
        The storage backend.

    Raises:
        ValueError: If the URL's scheme is unknown, or it lacks a directory or bucket.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file storage URL must be file:///absolute/path, got {url!r}")
        path = unquote(parts.path)
        if not path or not path.startswith("/"):
            raise ValueError(f"file storage URL needs an absolute path, got {url!r}")
        from quantoxbay.storage.local import LocalStorage

        return LocalStorage(Path(path))
    if scheme == "s3":
        bucket = parts.netloc
        if not bucket:
            raise ValueError(f"s3 storage URL needs a bucket: s3://bucket/prefix, got {url!r}")
        from quantoxbay.storage.s3 import S3Storage

        return S3Storage(bucket, unquote(parts.path).strip("/"), endpoint_url=s3_endpoint_url)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} in {url!r}")


@functools.cache
def get_storage() -> Storage:
    """The process-wide storage, built once from :func:`quantoxbay.settings.get_settings`.

    Tests that change ``STORAGE_URL`` call ``get_storage.cache_clear()``
    (after ``reset_settings_cache()``).
    """
    from quantoxbay.settings import get_settings

    settings = get_settings()
    return storage_from_url(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url)
