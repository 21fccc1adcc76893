"""Short-lived signed download links, bound to one user, order and file; download limits and log.

A link (itsdangerous, salted, ``download_link_ttl_seconds`` long) names the user, the order and
the file. Each request is checked against the requester and the order's *current* state, so a
refund, a dispute or a revoked grant stops links already handed out.

Download limits (``Product.download_limit``, per purchase) count downloads, not requests: a
repeat of the same file by the same user within ``REPEAT_WINDOW`` counts once, and so does a
Range continuation (start > 0), but only on the very link (the same signed token) that started
the download within ``CONTINUATION_WINDOW``. Any other request past byte 0 is a download of
its own: a bare ``Range: bytes=1-`` cannot get round a used-up limit. Every request let through
is logged (time, user, IP, link).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from quantoxbay import routes
from quantoxbay.models import DownloadGrant, DownloadLog, Order, OrderItem, Product, ProductFile, Role, utcnow
from quantoxbay.services import DomainError, NotFound, PermissionDenied
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.checkout import ACTIVE_ORDER_STATUSES

logger = logging.getLogger(__name__)

_SALT = "quantoxbay.download.v1"
#: A second request for the same file by the same user this soon is the same download.
REPEAT_WINDOW = timedelta(seconds=60)
#: A Range request on a link this soon after that link started a download continues it.
CONTINUATION_WINDOW = timedelta(minutes=15)


class LinkExpired(DomainError):
    """The link is older than its lifetime; the library makes a fresh one."""


class LimitReached(PermissionDenied):
    """The purchase's download limit is used up; the seller can reset it."""


@dataclass(frozen=True)
class DownloadTarget:
    storage_key: str
    filename: str
    size_bytes: int
    content_type: str
    order_id: int
    file_id: int
    grant_id: int = 0
    #: Names the signed link the request came with (a hash: the log never holds a usable token).
    link_id: str = ""


def link_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def make_download_token(*, secret: str, user_id: int, order_id: int, file_id: int) -> str:
    return _serializer(secret).dumps({"u": user_id, "o": order_id, "f": file_id})


def download_url(*, secret: str, user_id: int, order_id: int, file_id: int) -> str:
    token = make_download_token(secret=secret, user_id=user_id, order_id=order_id, file_id=file_id)
    return f"{routes.API_DOWNLOADS}/{token}"


def _refused(error: DomainError, reason: str, **facts: object) -> DomainError:
    """Log a refused download (never its token: the link itself is the key) and return the error."""
    logger.info("download.refused", extra={"reason": reason, **facts})
    return error


def resolve_download(
    *, session: Session, secret: str, token: str, user_id: int | None, max_age_seconds: int
) -> DownloadTarget:
    """Check a link against the requester and the order's current state; raise when refused."""
    try:
        claims = _serializer(secret).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        expired = LinkExpired("This download link has expired. Open your library for a fresh one.")
        raise _refused(expired, "expired", user_id=user_id) from exc
    except BadSignature as exc:
        raise _refused(
            NotFound("This download link is not valid."), "bad_signature", user_id=user_id
        ) from exc
    facts = {"user_id": user_id, "order_id": claims.get("o"), "file_id": claims.get("f")}
    if user_id is None:
        raise _refused(PermissionDenied("Please log in to download."), "not_logged_in", **facts)
    if claims.get("u") != user_id:
        raise _refused(
            PermissionDenied("This download link belongs to another account."), "other_account", **facts
        )
    row = session.exec(
        select(ProductFile, Order, DownloadGrant)
        .join(DownloadGrant, col(DownloadGrant.product_id) == ProductFile.product_id)
        .join(Order, col(Order.id) == DownloadGrant.order_id)
        .where(ProductFile.id == claims.get("f"), Order.id == claims.get("o"), Order.buyer_id == user_id)
    ).first()
    if row is None:
        raise _refused(NotFound("This file is not part of your order."), "not_in_order", **facts)
    product_file, order, grant = row
    if grant.revoked or order.status not in ACTIVE_ORDER_STATUSES:
        withdrawn = PermissionDenied("Access to this order has been withdrawn.")
        raise _refused(withdrawn, "withdrawn", order_status=order.status, **facts)
    assert product_file.id is not None and order.id is not None and grant.id is not None
    return DownloadTarget(
        storage_key=product_file.storage_key,
        filename=product_file.filename,
        size_bytes=product_file.size_bytes,
        content_type=product_file.content_type,
        order_id=order.id,
        file_id=product_file.id,
        grant_id=grant.id,
        link_id=link_id(token),
    )


def authorize_download(
    *,
    session: Session,
    secret: str,
    token: str,
    user_id: int | None,
    max_age_seconds: int,
    ip: str = "",
    range_start: int = 0,
) -> DownloadTarget:
    """``resolve_download`` then ``record_download``: check, apply the limit, log."""
    target = resolve_download(
        session=session, secret=secret, token=token, user_id=user_id, max_age_seconds=max_age_seconds
    )
    assert user_id is not None
    record_download(session=session, target=target, user_id=user_id, ip=ip, range_start=range_start)
    return target


def record_download(
    *, session: Session, target: DownloadTarget, user_id: int, ip: str = "", range_start: int = 0
) -> bool:
    """Apply the purchase's download limit and log the request; True when it counted.

    A request from byte 0 counts unless the same user fetched the same file of this purchase
    within ``REPEAT_WINDOW``. A request past byte 0 (Range) counts unless it continues a
    download started on the same link within ``CONTINUATION_WINDOW``. It writes before it
    reads (a no-op UPDATE of the grant): concurrent requests for one grant (a double click)
    queue on that row, so the second one sees the first one's log.
    """
    session.execute(
        update(DownloadGrant)
        .where(col(DownloadGrant.id) == target.grant_id)
        .values(downloads_used=DownloadGrant.downloads_used)
    )
    grant = session.get(DownloadGrant, target.grant_id)
    if grant is None:
        raise NotFound("This file is not part of your order.")
    session.refresh(grant)
    limit = session.exec(select(Product.download_limit).where(Product.id == grant.product_id)).one()
    recent = (
        select(func.count())
        .select_from(DownloadLog)
        .where(
            DownloadLog.grant_id == grant.id,
            DownloadLog.file_id == target.file_id,
            DownloadLog.user_id == user_id,
        )
    )
    if range_start > 0:
        # The link's start: a counted request, or a whole-file request let through as a repeat.
        # Continuations themselves never extend the window.
        repeat = bool(target.link_id) and (
            session.exec(
                recent.where(
                    DownloadLog.link_id == target.link_id,
                    (DownloadLog.counted == True) | (DownloadLog.range_start == 0),  # noqa: E712
                    DownloadLog.created_at > utcnow() - CONTINUATION_WINDOW,
                )
            ).one()
            > 0
        )
    else:
        repeat = (
            session.exec(
                recent.where(
                    DownloadLog.counted == True,  # noqa: E712
                    DownloadLog.created_at > utcnow() - REPEAT_WINDOW,
                )
            ).one()
            > 0
        )
    counted = not repeat
    if counted and limit is not None and grant.downloads_used >= limit:
        used_up = LimitReached(
            f"You have used all {limit} downloads of this purchase. Ask the seller to reset the limit."
        )
        raise _refused(
            used_up, "limit_reached", user_id=user_id, order_id=target.order_id, file_id=target.file_id
        )
    if counted:
        grant.downloads_used += 1
        session.add(grant)
    session.add(
        DownloadLog(
            grant_id=grant.id,  # type: ignore[arg-type]
            order_id=target.order_id,
            file_id=target.file_id,
            user_id=user_id,
            ip=ip[:64],
            range_start=range_start,
            counted=counted,
            link_id=target.link_id,
        )
    )
    session.flush()
    return counted


# --- sellers: reset a limit, reissue access -------------------------------------------


def _seller_grant(session: Session, actor: UserPublic, order_id: int) -> tuple[Order, list[DownloadGrant]]:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("This order does not exist.")
    if actor.role != Role.ADMIN.value:
        sellers = set(session.exec(select(OrderItem.seller_id).where(OrderItem.order_id == order_id)).all())
        if sellers != {actor.id}:
            raise NotFound("This order does not exist.")  # do not reveal other sellers' orders
    grants = list(session.exec(select(DownloadGrant).where(DownloadGrant.order_id == order_id)).all())
    if not grants:
        raise DomainError("This order has no downloads (it was never paid).")
    return order, grants


def reset_download_limit(*, session: Session, actor: UserPublic, order_id: int) -> int:
    """The seller gives the buyer their full download allowance again. Returns grants reset."""
    _, grants = _seller_grant(session, actor, order_id)
    for grant in grants:
        grant.downloads_used = 0
        session.add(grant)
    session.flush()
    return len(grants)


def reissue_access(*, session: Session, actor: UserPublic, order_id: int) -> int:
    """Give a buyer their downloads back (revoked by hand, or limit used up). Refunded or disputed
    orders stay closed: refusing here keeps the rule in one place (the order's status)."""
    order, grants = _seller_grant(session, actor, order_id)
    if order.status not in ACTIVE_ORDER_STATUSES:
        raise DomainError(
            f"This order is {order.status.replace('_', ' ')}; its downloads cannot be reissued."
        )
    for grant in grants:
        grant.revoked, grant.downloads_used = False, 0
        session.add(grant)
    session.flush()
    return len(grants)


def download_log(*, session: Session, order_id: int, limit: int = 100) -> list[DownloadLog]:
    return list(
        session.exec(
            select(DownloadLog)
            .where(DownloadLog.order_id == order_id)
            .order_by(col(DownloadLog.created_at).desc())
            .limit(limit)
        ).all()
    )
