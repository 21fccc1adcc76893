"""Product files and cover images: checked, streamed into storage, then recorded."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import unicodedata
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from sqlalchemy import func
from sqlmodel import Session, select

from quantoxbay.models import Product, ProductFile, ProductStatus, utcnow
from quantoxbay.services import DomainError, NotFound
from quantoxbay.services.catalog.products import _has_orders, _owned_product
from quantoxbay.services.uploads import SniffedStream, check_upload_name, make_cover_images
from quantoxbay.storage import Storage, StorageError

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()-]+")


def safe_filename(name: str) -> str:
    """The last path part of a client-supplied name, reduced to harmless characters."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if not name or set(name) <= {"_"}:
        raise DomainError("That file name is not allowed. Rename the file and try again.")
    return name[:200]


class _HashingReader:
    """Wraps a stream, hashing what passes through (one pass, constant memory)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.sha256.update(chunk)
        return chunk


def _store_upload(
    storage: Storage, product_id: int, filename: str, stream: BinaryIO, content_type: str, max_bytes: int
) -> tuple[str, str, int, str]:
    """Check and stream one upload into storage under a fresh key: (name, key, size, sha256).

    Keeps nothing on refusal: a file too large, empty, or cut off by an error while it
    streamed leaves no object behind.
    """
    name = check_upload_name(filename)
    sniffed = SniffedStream(stream, name)
    key = f"products/{product_id}/{uuid.uuid4().hex}/{name}"
    reader = _HashingReader(sniffed)  # type: ignore[arg-type]
    try:
        size = storage.put(key, reader, content_type=content_type, max_bytes=max_bytes)  # type: ignore[arg-type]
        if size == 0:
            raise DomainError(f"{name} is empty. Upload a file with content.")
    except BaseException:
        # The backends keep nothing of a refused put; this also covers a stream that failed part way.
        _delete_quietly(storage, [key])
        raise
    return name, key, size, reader.sha256.hexdigest()


def _delete_quietly(storage: Storage, keys: list[str]) -> None:
    """Delete objects nobody points at; an orphan left behind is harmless, so never raise."""
    for key in keys:
        with contextlib.suppress(StorageError):
            storage.delete(key)


# Uploads are slow (a 2 GiB file over a home connection takes many minutes) and must not hold a
# pooled connection idle in a transaction meanwhile. Given a session with no transaction open
# (run_service's), the functions below check ownership in a short read, end it, stream the
# bytes into storage with no connection held, then record the row in a short transaction they
# commit themselves. Given a session already in a transaction (a caller's unit of work: the
# CLI, the demo data, tests), they only flush, and its caller commits.


def _owns_transaction(session: Session) -> bool:
    return not session.in_transaction()


def _end_read(session: Session, owned: bool) -> None:
    if owned:
        # Returns the connection to the pool. Rolling back (nothing was written) also expires
        # what was read, so the recording step reads the product afresh.
        session.rollback()


@contextlib.contextmanager
def _recorded_or_removed(session: Session, storage: Storage, keys: list[str], owned: bool) -> Iterator[None]:
    """The short transaction that records stored objects; if it fails, the objects are deleted."""
    try:
        yield
        if owned:
            session.commit()
        else:
            session.flush()
    except BaseException:
        if owned:
            session.rollback()
        _delete_quietly(storage, keys)
        raise


def add_product_file(
    *,
    session: Session,
    storage: Storage,
    product_id: int,
    seller_id: int,
    filename: str,
    stream: BinaryIO,
    content_type: str = "application/octet-stream",
    max_bytes: int,
) -> ProductFile:
    """Stream a file into storage, then attach it to the seller's product.

    With a session that has no transaction open, no connection is held while the bytes
    stream and the row is committed here (see the note above).

    Raises:
        DomainError: Empty file, blocked type (by extension or by content), path tricks in the name.
        FileTooLarge: More than ``max_bytes``. In every case nothing is stored or recorded.
    """
    owned = _owns_transaction(session)
    _owned_product(session, product_id, seller_id)
    _end_read(session, owned)
    name, key, size, digest = _store_upload(storage, product_id, filename, stream, content_type, max_bytes)
    with _recorded_or_removed(session, storage, [key], owned):
        # Checked again: the product may have been deleted or changed hands while the bytes streamed.
        product = _owned_product(session, product_id, seller_id)
        record = ProductFile(
            product_id=product_id,
            filename=name,
            storage_key=key,
            size_bytes=size,
            content_type=(content_type or "application/octet-stream")[:120],
            sha256=digest,
        )
        session.add(record)
        product.updated_at = utcnow()
        session.add(product)
        session.flush()
    return record


def replace_product_file(
    *,
    session: Session,
    storage: Storage,
    product_id: int,
    seller_id: int,
    file_id: int,
    filename: str,
    stream: BinaryIO,
    content_type: str = "application/octet-stream",
    max_bytes: int,
) -> ProductFile:
    """Upload a new version of a file. The row stays (buyers keep access and get the new version).

    The new version streams into storage first (with no connection held, as in
    :func:`add_product_file`); the old object is deleted once the row points at the new one.
    """
    owned = _owns_transaction(session)
    _owned_file(session, product_id, seller_id, file_id)
    _end_read(session, owned)
    name, key, size, digest = _store_upload(storage, product_id, filename, stream, content_type, max_bytes)
    with _recorded_or_removed(session, storage, [key], owned):
        record = _owned_file(session, product_id, seller_id, file_id)
        old_key = record.storage_key
        record.filename, record.storage_key, record.size_bytes, record.sha256 = name, key, size, digest
        record.content_type = (content_type or "application/octet-stream")[:120]
        record.version += 1
        record.updated_at = utcnow()
        session.add(record)
        session.flush()
    # An orphaned old object would be harmless; a failed replace is not: never raise here.
    _delete_quietly(storage, [old_key])
    return record


def _owned_file(session: Session, product_id: int, seller_id: int, file_id: int) -> ProductFile:
    product = _owned_product(session, product_id, seller_id)
    record = session.get(ProductFile, file_id)
    if record is None or record.product_id != product.id:
        raise NotFound("That file is not part of this product.")
    return record


def remove_product_file(
    *, session: Session, storage: Storage, product_id: int, seller_id: int, file_id: int
) -> None:
    """Remove a file from a product; a published product keeps at least one file."""
    product = _owned_product(session, product_id, seller_id)
    record = session.get(ProductFile, file_id)
    if record is None or record.product_id != product.id:
        raise NotFound("That file is not part of this product.")
    count = session.exec(
        select(func.count()).select_from(ProductFile).where(ProductFile.product_id == product_id)
    ).one()
    if product.status == ProductStatus.PUBLISHED.value and count <= 1:
        raise DomainError("A published product needs at least one file. Unpublish it first.")
    if _has_orders(session, product_id):
        raise DomainError("Buyers own this file. Replace it with a new version instead of removing it.")
    key = record.storage_key
    session.delete(record)
    session.flush()
    with contextlib.suppress(StorageError):
        storage.delete(key)


def set_cover_image(
    *, session: Session, storage: Storage, product_id: int, seller_id: int, stream: BinaryIO
) -> Product:
    """Decode a cover image, store its thumbnails, then point the product at them.

    Decoding and storing happen with no connection held when the session has no
    transaction open (as in :func:`add_product_file`).
    """
    owned = _owns_transaction(session)
    _owned_product(session, product_id, seller_id)
    _end_read(session, owned)
    images = make_cover_images(stream)
    prefix = f"covers/{product_id}/{uuid.uuid4().hex}"
    keys = [f"{prefix}/{variant}.{images.extension}" for variant in images.variants]
    try:
        for key, data in zip(keys, images.variants.values(), strict=True):
            storage.put(key, io.BytesIO(data), content_type=images.content_type)
    except BaseException:
        _delete_quietly(storage, keys)
        raise
    with _recorded_or_removed(session, storage, keys, owned):
        product = _owned_product(session, product_id, seller_id)
        old = product.cover_key
        product.cover_key = prefix
        product.updated_at = utcnow()
        session.add(product)
        session.flush()
    if old:
        _delete_quietly(storage, [f"{old}/{variant}.{images.extension}" for variant in images.variants])
    return product
