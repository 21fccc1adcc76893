"""A buyer's purchases, newest first, with the files each one unlocks."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from quantoxbay.models import DownloadGrant, Order, OrderItem, OrderStatus, ProductFile
from quantoxbay.services.checkout import ACTIVE_ORDER_STATUSES
from quantoxbay.services.money import format_money


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


def list_library(*, session: Session, buyer_id: int, limit: int = 20, offset: int = 0) -> list[LibraryEntry]:
    rows = session.exec(
        select(Order, OrderItem)
        .join(OrderItem, OrderItem.order_id == Order.id)  # type: ignore[arg-type]
        .where(Order.buyer_id == buyer_id, Order.status != OrderStatus.EXPIRED.value)
        .order_by(Order.created_at.desc(), Order.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)
        .offset(offset)
    ).all()
    entries = []
    for order, item in rows:
        assert order.id is not None
        grant = session.exec(
            select(DownloadGrant).where(
                DownloadGrant.order_id == order.id, DownloadGrant.product_id == item.product_id
            )
        ).first()
        can_download = grant is not None and not grant.revoked and order.status in ACTIVE_ORDER_STATUSES
        files = session.exec(
            select(ProductFile).where(ProductFile.product_id == item.product_id).order_by(ProductFile.id)  # type: ignore[arg-type]
        ).all()
        entries.append(
            LibraryEntry(
                order_id=order.id,
                product_id=item.product_id,
                title=item.title,
                status=order.status,
                total_label=format_money(order.total_cents, order.currency),
                purchased_at=order.created_at,
                can_download=can_download,
                files=[
                    LibraryFile(file_id=f.id, filename=f.filename, size_bytes=f.size_bytes)
                    for f in files
                    if f.id
                ]
                if can_download
                else [],
            )
        )
    return entries


def order_for_session(*, session: Session, buyer_id: int, stripe_session_id: str) -> LibraryEntry | None:
    """The library entry of one Checkout Session (the confirmation page shows it)."""
    order = session.exec(
        select(Order).where(Order.stripe_session_id == stripe_session_id, Order.buyer_id == buyer_id)
    ).first()
    if order is None or order.id is None:
        return None
    for entry in list_library(session=session, buyer_id=buyer_id, limit=1000):
        if entry.order_id == order.id:
            return entry
    return None
