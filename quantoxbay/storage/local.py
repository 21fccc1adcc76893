"""LocalStorage: files under one root directory on local disk (the default backend)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from quantoxbay.private_files import make_dirs, open_private
from quantoxbay.storage.base import (
    CHUNK_SIZE,
    FileTooLarge,
    InvalidKey,
    ObjectNotFound,
    StorageError,
    resolve_range,
    validate_key,
)

_TMP_SUFFIX = ".qbtmp"


class LocalStorage:
    """Objects as plain files under ``root``, one file per key.

    A key ``a/b/c.pdf`` is stored as ``root/a/b/c.pdf``. Every key is checked by
    :func:`~quantoxbay.storage.base.validate_key` and then, as a second line of
    defence, the fully resolved path (symlinks followed) must lie inside the
    resolved root, so neither ``..`` nor a symlink can lead outside it.

    Uploads go to a temporary file in the target directory, are fsynced and
    then renamed over the final name with :func:`os.replace`: readers see the
    old file or the whole new one, never a partial file. Files are 0600 and the
    directories this creates 0700, whatever the umask.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Create the store, making ``root`` if it does not exist.

        Args:
            root: Directory that holds the files.
        """
        path = Path(root).expanduser()
        make_dirs(path)
        self.root: Path = path.resolve(strict=True)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        """Map a key to its path, refusing anything that resolves outside the root."""
        validate_key(key)
        candidate = self.root.joinpath(*key.split("/"))
        try:
            resolved = candidate.resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # symlink loop and the like
            raise InvalidKey(f"key {key!r} cannot be resolved: {exc}") from exc
        if resolved == self.root or not resolved.is_relative_to(self.root):
            raise InvalidKey(f"key {key!r} resolves outside the storage root")
        return resolved

    def _existing_file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def put(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        """Write ``stream`` to the key's file atomically (temp file, fsync, rename).

        Args:
            key: Where to store it.
            stream: Binary stream read in 1 MiB chunks until EOF.
            content_type: Ignored: local files carry no MIME type.
            max_bytes: Refuse more than this many bytes (nothing is kept).

        Returns:
            The number of bytes written.

        Raises:
            InvalidKey: If the key is not acceptable.
            FileTooLarge: If more than ``max_bytes`` bytes arrived.
            StorageError: If the file cannot be written.
        """
        path = self._path(key)
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        try:
            make_dirs(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot create the directory for {key!r}: {exc}") from exc
        # Re-check after mkdir: a directory created meanwhile may be a symlink.
        if self._path(key) != path:
            raise InvalidKey(f"key {key!r} changed meaning while being stored")
        tmp = path.with_name(f".{path.name[:200]}.{secrets.token_hex(8)}{_TMP_SUFFIX}")
        written = 0
        try:
            # Only this account reads products: the app streams them to buyers.
            fd = open_private(tmp, os.O_WRONLY | os.O_EXCL | os.O_NOFOLLOW)
        except OSError as exc:
            raise StorageError(f"cannot create a file for {key!r}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                while True:
                    chunk = stream.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise FileTooLarge(max_bytes)
                    view = memoryview(chunk)
                    while view:
                        n = out.write(view)
                        view = view[n or 0 :]
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {key!r}: {exc}") from exc
            raise
        self._fsync_dir(path.parent)
        return written

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        """Make the rename durable; best effort (not every file system allows it)."""
        try:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    def open_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Stream an inclusive byte range of the key's file.

        The file is opened here, so a missing key or a bad range raises at
        once; the returned iterator closes the file when exhausted or closed.

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If no file is stored under the key.
            ValueError: If the range does not fit the file or ``chunk_size`` < 1.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        path = self._path(key)
        try:
            fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the generator
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot open {key!r}: {exc}") from exc
        try:
            size = os.fstat(fh.fileno()).st_size
            first, stop = resolve_range(start, end, size)
        except BaseException:
            fh.close()
            raise
        return _read_file_range(fh, key, first, stop, chunk_size)

    def size(self, key: str) -> int:
        """Return the file's size in bytes.

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If no file is stored under the key.
        """
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        if not path.is_file():
            raise ObjectNotFound(key)
        return st.st_size

    def exists(self, key: str) -> bool:
        """Return whether a file is stored under ``key``."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the key's file; a missing file is fine.

        Raises:
            InvalidKey: If the key is not acceptable.
            StorageError: If the file exists but cannot be removed.
        """
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r}: {exc}") from exc

    def presigned_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str | None:
        """Local disk has no presigned URLs: always ``None`` (the app streams the file)."""
        validate_key(key)
        return None

    def local_path(self, key: str) -> Path | None:
        """Return the key's file, resolved and inside the root.

        Raises:
            InvalidKey: If the key is not acceptable.
            ObjectNotFound: If no file is stored under the key.
        """
        return self._existing_file(key)


def _read_file_range(fh: BinaryIO, key: str, start: int, stop: int, chunk_size: int) -> Iterator[bytes]:
    """Yield ``fh[start:stop]`` in chunks, then close ``fh``."""
    try:
        remaining = stop - start
        if remaining:
            fh.seek(start)
        while remaining > 0:
            chunk = fh.read(min(chunk_size, remaining))
            if not chunk:
                raise StorageError(f"{key!r} was truncated while being read")
            remaining -= len(chunk)
            yield chunk
    finally:
        fh.close()
