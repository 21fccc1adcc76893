"""Short-lived signed download links, bound to one user, order and file."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, select

from quantoxbay import routes
from quantoxbay.models import DownloadGrant, Order, ProductFile
from quantoxbay.services import DomainError, NotFound, PermissionDenied
from quantoxbay.services.checkout import ACTIVE_ORDER_STATUSES

_SALT = "quantoxbay.download.v1"


class LinkExpired(DomainError):
    """The link is older than its lifetime; the library makes a fresh one."""


@dataclass(frozen=True)
class DownloadTarget:
    storage_key: str
    filename: str
    size_bytes: int
    content_type: str
    order_id: int
    file_id: int


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def make_download_token(*, secret: str, user_id: int, order_id: int, file_id: int) -> str:
    return _serializer(secret).dumps({"u": user_id, "o": order_id, "f": file_id})


def download_url(*, secret: str, user_id: int, order_id: int, file_id: int) -> str:
    token = make_download_token(secret=secret, user_id=user_id, order_id=order_id, file_id=file_id)
    return f"{routes.API_DOWNLOADS}/{token}"


def resolve_download(
    *, session: Session, secret: str, token: str, user_id: int | None, max_age_seconds: int
) -> DownloadTarget:
    """Check a link against the requester and the order's current state; raise when refused."""
    try:
        claims = _serializer(secret).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise LinkExpired("This download link has expired. Open your library for a fresh one.") from exc
    except BadSignature as exc:
        raise NotFound("This download link is not valid.") from exc
    if user_id is None:
        raise PermissionDenied("Please log in to download.")
    if claims.get("u") != user_id:
        raise PermissionDenied("This download link belongs to another account.")
    row = session.exec(
        select(ProductFile, Order, DownloadGrant)
        .join(DownloadGrant, DownloadGrant.product_id == ProductFile.product_id)  # type: ignore[arg-type]
        .join(Order, Order.id == DownloadGrant.order_id)  # type: ignore[arg-type]
        .where(ProductFile.id == claims.get("f"), Order.id == claims.get("o"), Order.buyer_id == user_id)
    ).first()
    if row is None:
        raise NotFound("This file is not part of your order.")
    product_file, order, grant = row
    if grant.revoked or order.status not in ACTIVE_ORDER_STATUSES:
        raise PermissionDenied("Access to this order has been withdrawn.")
    assert product_file.id is not None and order.id is not None
    return DownloadTarget(
        storage_key=product_file.storage_key,
        filename=product_file.filename,
        size_bytes=product_file.size_bytes,
        content_type=product_file.content_type,
        order_id=order.id,
        file_id=product_file.id,
    )
