"""Product files and cover images: checked, streamed into storage, then recorded."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import unicodedata
import uuid
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
    """Check and stream one upload into storage: (name, key, size, sha256). Stores nothing on refusal."""
    name = check_upload_name(filename)
    sniffed = SniffedStream(stream, name)
    key = f"products/{product_id}/{uuid.uuid4().hex}/{name}"
    reader = _HashingReader(sniffed)  # type: ignore[arg-type]
    # FileTooLarge propagates: the storage has kept nothing.
    size = storage.put(key, reader, content_type=content_type, max_bytes=max_bytes)  # type: ignore[arg-type]
    if size == 0:
        storage.delete(key)
        raise DomainError(f"{name} is empty. Upload a file with content.")
    return name, key, size, reader.sha256.hexdigest()


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
    """Stream a file into storage and attach it to the seller's product.

    Raises:
        DomainError: Empty file, blocked type (by extension or by content), path tricks in the name.
        FileTooLarge: More than ``max_bytes``. In every case nothing is stored.
    """
    product = _owned_product(session, product_id, seller_id)
    assert product.id is not None
    name, key, size, digest = _store_upload(storage, product.id, filename, stream, content_type, max_bytes)
    record = ProductFile(
        product_id=product.id,
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

    The old object is deleted once the new one is stored and the row points at it.
    """
    product = _owned_product(session, product_id, seller_id)
    record = session.get(ProductFile, file_id)
    if record is None or record.product_id != product.id:
        raise NotFound("That file is not part of this product.")
    name, key, size, digest = _store_upload(storage, product_id, filename, stream, content_type, max_bytes)
    old_key = record.storage_key
    record.filename, record.storage_key, record.size_bytes, record.sha256 = name, key, size, digest
    record.content_type = (content_type or "application/octet-stream")[:120]
    record.version += 1
    record.updated_at = utcnow()
    session.add(record)
    session.flush()
    # An orphaned old object would be harmless; a failed replace is not: never raise here.
    with contextlib.suppress(StorageError):
        storage.delete(old_key)
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
    """Decode a cover image, store its thumbnails and point the product at them."""
    product = _owned_product(session, product_id, seller_id)
    images = make_cover_images(stream)
    prefix = f"covers/{product_id}/{uuid.uuid4().hex}"
    for variant, data in images.variants.items():
        storage.put(
            f"{prefix}/{variant}.{images.extension}", io.BytesIO(data), content_type=images.content_type
        )
    old = product.cover_key
    product.cover_key = prefix
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    if old:
        for variant in images.variants:
            with contextlib.suppress(StorageError):
                storage.delete(f"{old}/{variant}.{images.extension}")
    return product
