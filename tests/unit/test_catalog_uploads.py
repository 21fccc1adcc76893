"""Uploads stream into storage before the database transaction opens, on SQLite and PostgreSQL.

These tests commit (as the app does through run_service), so they live in their own module:
each module gets a fresh database.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

import pytest
from PIL import Image
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from quantoxbay.db import session_scope
from quantoxbay.models import Product, ProductFile, Role
from quantoxbay.services import NotFound, PermissionDenied, catalog
from quantoxbay.storage import FileTooLarge, LocalStorage, StorageError
from tests.factories import create_user

LIMIT = 10_000_000


class WatchedStorage:
    """Local storage whose put() first runs a check (what the database holds meanwhile)."""

    def __init__(self, inner: LocalStorage, during_put: Callable[[str], None]) -> None:
        self.inner = inner
        self.during_put = during_put
        self.puts: list[str] = []

    def put(self, key: str, stream: BinaryIO, **kwargs: object) -> int:
        self.puts.append(key)
        self.during_put(key)
        return self.inner.put(key, stream, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _stored(storage: LocalStorage) -> list[str]:
    return [p.name for p in storage.root.rglob("*") if p.is_file()]


def _rows(engine: Engine, product_id: int) -> list[ProductFile]:
    with Session(engine) as s:
        return list(s.exec(select(ProductFile).where(ProductFile.product_id == product_id)).all())


@pytest.fixture
def draft(engine: Engine) -> tuple[int, int]:
    """A committed seller and draft product: (seller id, product id)."""
    with session_scope(engine) as s:
        seller = create_user(s, Role.SELLER)
        product = catalog.create_product(session=s, seller_id=seller.id, title="Draft", price_cents=500)
        assert product.id is not None
    return seller.id, product.id


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _upload(engine: Engine, storage: object, what: str, seller_id: int, product_id: int, **kwargs: object):
    """Call the service as run_service does: a fresh session, committed after the call."""
    with session_scope(engine) as s:
        if what == "cover":
            return catalog.set_cover_image(
                session=s, storage=storage, product_id=product_id, seller_id=seller_id,  # type: ignore[arg-type]
                stream=io.BytesIO(_png()),
            )  # fmt: skip
        fields = {"filename": "guide.pdf", "stream": io.BytesIO(b"%PDF-1.7 " * 1000), "max_bytes": LIMIT}
        fields.update(kwargs)
        if what == "replace":
            return catalog.replace_product_file(
                session=s,
                storage=storage,
                product_id=product_id,
                seller_id=seller_id,
                **fields,  # type: ignore[arg-type]
            )
        return catalog.add_product_file(
            session=s,
            storage=storage,
            product_id=product_id,
            seller_id=seller_id,
            **fields,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("what", ["add", "replace", "cover"])
def test_no_connection_is_held_while_the_bytes_stream(
    engine: Engine, storage: LocalStorage, draft: tuple[int, int], what: str
) -> None:
    seller_id, product_id = draft
    first = _upload(engine, storage, "add", seller_id, product_id) if what == "replace" else None

    def nothing_checked_out(key: str) -> None:
        assert engine.pool.checkedout() == 0, f"a pooled connection is held while {key} streams"  # type: ignore[attr-defined]

    watched = WatchedStorage(storage, nothing_checked_out)
    extra = {"file_id": first.id} if first is not None else {}
    _upload(engine, watched, what, seller_id, product_id, **extra)

    assert watched.puts, "the upload went through the storage"
    with Session(engine) as s:
        product = s.get(Product, product_id)
        assert product is not None
        files = s.exec(select(ProductFile).where(ProductFile.product_id == product_id)).all()
    if what == "cover":
        assert product.cover_key and watched.puts[0].startswith(product.cover_key)
    else:
        assert [f.storage_key for f in files] == [watched.puts[0]]
        assert storage.exists(watched.puts[0])
    if first is not None:
        assert files[0].version == 2 and not storage.exists(first.storage_key)


@pytest.mark.parametrize("what", ["add", "replace"])
def test_a_failed_database_write_deletes_the_stored_object(
    engine: Engine, storage: LocalStorage, draft: tuple[int, int], what: str
) -> None:
    seller_id, product_id = draft
    first = _upload(engine, storage, "add", seller_id, product_id) if what == "replace" else None
    before = _stored(storage)

    def refuse_file_rows(conn, cursor, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith(("INSERT INTO PRODUCT_FILE", "UPDATE PRODUCT_FILE")):
            raise RuntimeError("the database went away")

    event.listen(engine, "before_cursor_execute", refuse_file_rows)
    try:
        extra = {"file_id": first.id} if first is not None else {}
        with pytest.raises(RuntimeError, match="went away"):
            _upload(engine, storage, what, seller_id, product_id, **extra)
    finally:
        event.remove(engine, "before_cursor_execute", refuse_file_rows)

    assert _stored(storage) == before, "the new object is deleted; nothing else is touched"
    assert [f.storage_key for f in _rows(engine, product_id)] == ([first.storage_key] if first else [])


def test_an_upload_cut_off_part_way_leaves_no_object(
    engine: Engine, storage: LocalStorage, draft: tuple[int, int]
) -> None:
    seller_id, product_id = draft

    class CutOff(WatchedStorage):
        def put(self, key: str, stream: BinaryIO, **kwargs: object) -> int:
            self.inner.put(key, io.BytesIO(stream.read(100)))  # what arrived before the connection broke
            raise StorageError("connection reset while uploading")

    with pytest.raises(StorageError, match="connection reset"):
        _upload(engine, CutOff(storage, lambda key: None), "add", seller_id, product_id)
    assert _stored(storage) == []
    assert _rows(engine, product_id) == []


def test_a_file_too_large_is_neither_stored_nor_recorded(
    engine: Engine, storage: LocalStorage, draft: tuple[int, int]
) -> None:
    seller_id, product_id = draft
    with pytest.raises(FileTooLarge):
        _upload(engine, storage, "add", seller_id, product_id, stream=io.BytesIO(b"x" * 5000), max_bytes=4096)
    assert _stored(storage) == []
    assert _rows(engine, product_id) == []


def test_a_product_deleted_while_its_upload_streamed_gets_no_file(
    engine: Engine, storage: LocalStorage, draft: tuple[int, int]
) -> None:
    seller_id, product_id = draft

    def delete_meanwhile(key: str) -> None:
        with session_scope(engine) as s:
            catalog.delete_product(session=s, storage=storage, product_id=product_id, seller_id=seller_id)

    with pytest.raises(NotFound):
        _upload(engine, WatchedStorage(storage, delete_meanwhile), "add", seller_id, product_id)
    assert _stored(storage) == []
    assert _rows(engine, product_id) == []


def test_a_stranger_is_refused_before_any_byte_is_stored(
    engine: Engine, storage: LocalStorage, draft: tuple[int, int]
) -> None:
    _, product_id = draft
    with session_scope(engine) as s:
        stranger = create_user(s, Role.SELLER)

    def never(key: str) -> None:
        raise AssertionError("bytes from a stranger reached the storage")

    for what in ("add", "cover"):
        with pytest.raises(PermissionDenied):
            _upload(engine, WatchedStorage(storage, never), what, stranger.id, product_id)
