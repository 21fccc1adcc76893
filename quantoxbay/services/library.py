"""A buyer's purchases, newest first, with the files each one unlocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from quantoxbay.models import DownloadGrant, Order, OrderItem, OrderStatus, Product, ProductFile
from quantoxbay.services.checkout import ACTIVE_ORDER_STATUSES
from quantoxbay.services.money import format_amount


class LibraryFile(BaseModel):
    file_id: int
    filename: str
    size_bytes: int


class LibraryEntry(BaseModel):
    order_id: int
    product_id: int
    title: str
    status: str
    total_label: str
    purchased_at: datetime
    can_download: bool
    files: list[LibraryFile]
    downloads_used: int = 0
    download_limit: int | None = None
    refunded_label: str = ""


class LibraryPage(BaseModel):
    """One page of the library (newest first) and whether there are more."""

    entries: list[LibraryEntry]
    page: int
    has_next: bool


PAGE_SIZE = 20


def library_page(
    *, session: Session, buyer_id: int, page: int = 0, page_size: int = PAGE_SIZE
) -> LibraryPage:
    page = max(page, 0)
    rows = list_library(session=session, buyer_id=buyer_id, limit=page_size + 1, offset=page * page_size)
    return LibraryPage(entries=rows[:page_size], page=page, has_next=len(rows) > page_size)


def list_library(*, session: Session, buyer_id: int, limit: int = 20, offset: int = 0) -> list[LibraryEntry]:
    rows = session.exec(
        select(Order, OrderItem)
        .join(OrderItem, col(OrderItem.order_id) == Order.id)
        .where(Order.buyer_id == buyer_id, Order.status != OrderStatus.EXPIRED.value)
        .order_by(col(Order.created_at).desc(), col(Order.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return _entries(session, rows)


def _entries(session: Session, rows: Sequence[tuple[Order, OrderItem]]) -> list[LibraryEntry]:
    """Library entries for (order, item) rows, with grants, limits and files."""
    entries = []
    for order, item in rows:
        assert order.id is not None
        grant = session.exec(
            select(DownloadGrant).where(
                DownloadGrant.order_id == order.id, DownloadGrant.product_id == item.product_id
            )
        ).first()
        can_download = grant is not None and not grant.revoked and order.status in ACTIVE_ORDER_STATUSES
        download_limit = session.exec(
            select(Product.download_limit).where(Product.id == item.product_id)
        ).first()
        files = session.exec(
            select(ProductFile)
            .where(col(ProductFile.product_id) == item.product_id)
            .order_by(col(ProductFile.id))
        ).all()
        entries.append(
            LibraryEntry(
                order_id=order.id,
                product_id=item.product_id,
                title=item.title,
                status=order.status,
                total_label=format_amount(order.total_cents, order.currency),
                purchased_at=order.created_at,
                can_download=can_download,
                files=[
                    LibraryFile(file_id=f.id, filename=f.filename, size_bytes=f.size_bytes)
                    for f in files
                    if f.id
                ]
                if can_download
                else [],
                downloads_used=grant.downloads_used if grant else 0,
                download_limit=download_limit,
                refunded_label=format_amount(order.refunded_cents, order.currency)
                if order.refunded_cents
                else "",
            )
        )
    return entries


def order_for_session(*, session: Session, buyer_id: int, stripe_session_id: str) -> LibraryEntry | None:
    """The library entry of one Checkout Session (the confirmation page shows it)."""
    rows = session.exec(
        select(Order, OrderItem)
        .join(OrderItem, col(OrderItem.order_id) == Order.id)
        .where(Order.stripe_session_id == stripe_session_id, Order.buyer_id == buyer_id)
    ).all()
    entries = _entries(session, rows)
    return entries[0] if entries else None
