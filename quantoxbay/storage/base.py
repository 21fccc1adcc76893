"""The storage contract: one small interface for the product files.

Every backend stores opaque byte streams under *keys*. A key is a relative,
``/``-separated name such as ``products/42/3f2a.../manual.pdf``; it is checked
by :func:`validate_key` before any backend touches it, so a key can never name
something outside the store, whatever file name a seller uploaded.

Backends never hold a whole file in memory: uploads are read and written in
chunks (:data:`CHUNK_SIZE`), downloads are iterators of chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

#: Default size of the chunks read from uploads and yielded by downloads.
CHUNK_SIZE = 1024 * 1024

#: Longest key accepted, in UTF-8 bytes (S3's own limit).
MAX_KEY_BYTES = 1024

#: Longest single path component, in UTF-8 bytes (NAME_MAX on Linux file systems).
MAX_COMPONENT_BYTES = 255


class StorageError(Exception):
    """Base class of every error raised by a storage backend."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under key {key!r}")
        self.key = key


class InvalidKey(StorageError, ValueError):
    """The key is not an acceptable storage key (see :func:`validate_key`)."""


class FileTooLarge(StorageError):
    """An upload carried more than the allowed number of bytes; nothing was stored."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"upload exceeds the limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe, relative storage key and return it unchanged.

    A valid key is a non-empty ``str`` of at most :data:`MAX_KEY_BYTES` UTF-8
    bytes made of ``/``-separated components, where no component is empty,
    ``.`` or ``..`` or longer than :data:`MAX_COMPONENT_BYTES` bytes. It must
    not start with ``/`` and must not contain a backslash, NUL or any other
    control character.

    Args:
        key: The candidate key.

    Returns:
        The same key, for use in expressions.

    Raises:
        InvalidKey: If any rule above is broken.
    """
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidKey("key must not be empty")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey("key is not valid UTF-8 text") from exc
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidKey("key must be relative, not start with '/'")
    if "\\" in key:
        raise InvalidKey("key must not contain a backslash")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in key):
        raise InvalidKey("key must not contain NUL or other control characters")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(f"key has an empty, '.' or '..' component: {key!r}")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise InvalidKey(f"key component longer than {MAX_COMPONENT_BYTES} bytes")
    return key


def resolve_range(start: int, end: int | None, size: int) -> tuple[int, int]:
    """Check a byte range against an object's size, HTTP ``Range`` style.

    Args:
        start: First byte wanted (0-based).
        end: Last byte wanted, inclusive; ``None`` means the last byte.
        size: Size of the object in bytes.

    Returns:
        ``(start, stop)`` with ``stop`` exclusive, so ``stop - start`` bytes are
        wanted. For an empty object only the whole range ``(0, None)`` is valid
        and gives ``(0, 0)``.

    Raises:
        ValueError: If ``start`` is negative or not below ``size``, or ``end``
            is below ``start`` or not below ``size``.
    """
    if isinstance(start, bool) or not isinstance(start, int):
        raise ValueError("start must be an int")
    if end is not None and (isinstance(end, bool) or not isinstance(end, int)):
        raise ValueError("end must be an int or None")
    if start < 0:
        raise ValueError(f"range start {start} is negative")
    if size == 0 and start == 0 and end is None:
        return 0, 0
    if start >= size:
        raise ValueError(f"range start {start} is beyond the object's {size} bytes")
    last = size - 1 if end is None else end
    if last < start:
        raise ValueError(f"range end {end} is before start {start}")
    if last >= size:
        raise ValueError(f"range end {end} is beyond the object's {size} bytes")
    return start, last + 1


@runtime_checkable
class Storage(Protocol):
    """Where product files live: local disk by default, S3 in production."""

    # A storage is a cache key (cover previews are cached per storage and key).
    def __hash__(self) -> int: ...

    def put(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        """Store everything read from ``stream`` under ``key``, replacing any old object.

        The stream is read in chunks until EOF and never held whole in memory.
        The new object becomes visible all at once or not at all.

        Args:
            key: Where to store it (see :func:`validate_key`).
            stream: A binary file-like object; only ``read(n)`` is used.
            content_type: MIME type recorded where the backend keeps one.
            max_bytes: Refuse uploads larger than this many bytes.

        Returns:
            The number of bytes stored.

        Raises:
            InvalidKey: If the key is not acceptable.
            FileTooLarge: If more than ``max_bytes`` bytes arrived; nothing new
                is stored and an older object under the key is left as it was.
            StorageError: If the backend fails.
        """
        ...

    def open_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Stream bytes ``start`` to ``end`` (inclusive, like HTTP ``Range``) of an object.

        Key, existence and range are checked when this is called, before the
        first chunk is asked for, so callers can answer 404/416 up front.

        Args:
            key: The object's key.
            start: First byte (0-based).
            end: Last byte, inclusive; ``None`` for the end of the object.
            chunk_size: Largest chunk yielded.

        Returns:
            An iterator of non-empty ``bytes`` chunks; close it to release the
            underlying file or connection early.

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If nothing is stored under the key.
            ValueError: If the range does not fit the object (see :func:`resolve_range`).
        """
        ...

    def size(self, key: str) -> int:
        """Return the object's size in bytes.

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If nothing is stored under the key.
        """
        ...

    def exists(self, key: str) -> bool:
        """Return whether an object is stored under ``key``.

        Raises:
            InvalidKey: If the key is not acceptable.
        """
        ...

    def delete(self, key: str) -> None:
        """Delete the object under ``key``; deleting a missing object is not an error.

        Raises:
            InvalidKey: If the key is not acceptable.
        """
        ...

    def presigned_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str | None:
        """Return a URL that lets anyone download the object for ``expires_in`` seconds.

        Args:
            key: The object's key.
            expires_in: Lifetime of the URL in seconds.
            filename: Name offered to the browser (``Content-Disposition:
                attachment``), when the backend supports it.

        Returns:
            The URL, or ``None`` when the backend has no such thing (local disk):
            the caller then streams the file itself.

        Raises:
            InvalidKey: If the key is not acceptable.
            ValueError: If ``expires_in`` is out of the backend's bounds.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """Return the object's file on local disk, for ``FileResponse``/sendfile.

        Returns:
            The path, or ``None`` when the backend does not keep files on local disk.

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If the backend is local and nothing is stored under the key.
        """
        ...
