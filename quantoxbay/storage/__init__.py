"""File storage: one :class:`Storage` interface, local disk (default) or S3.

Use :func:`get_storage` for the configured backend (``STORAGE_URL``)::

    storage = get_storage()
    size = storage.put("products/42/abc/manual.pdf", upload, max_bytes=limit)
    for chunk in storage.open_range("products/42/abc/manual.pdf", 0, 1023):
        ...
"""

from quantoxbay.storage.base import (
    CHUNK_SIZE,
    FileTooLarge,
    InvalidKey,
    ObjectNotFound,
    Storage,
    StorageError,
    resolve_range,
    validate_key,
)
from quantoxbay.storage.factory import get_storage, storage_from_url
from quantoxbay.storage.local import LocalStorage
from quantoxbay.storage.s3 import S3Storage

__all__ = [
    "CHUNK_SIZE",
    "FileTooLarge",
    "InvalidKey",
    "LocalStorage",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "get_storage",
    "resolve_range",
    "storage_from_url",
    "validate_key",
]
