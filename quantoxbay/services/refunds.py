"""Refunds and disputes.

``refund_order`` (seller for their own orders, or admin) reserves the amount in a ``refund``
row, then asks Stripe (idempotency key per row). Stripe's ``charge.refunded`` event is the
truth: it carries the charge's ``amount_refunded``, which sets ``Order.refunded_cents`` and
the status (``partially_refunded``, or ``refunded`` which revokes the downloads). The service
applies the same figure right away so the seller sees it without waiting for the webhook;
both paths only ever raise the figure, so they agree whatever order they run in.

``charge.dispute.created`` freezes access (status ``disputed``); ``charge.dispute.closed``
with status ``won`` restores it (``paid`` or ``partially_refunded``), ``lost`` revokes it.
The webhook reaches these handlers through ``charge_events``, which keeps the events that come
before their order and skips a dispute's events that a later one of it superseded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypedDict

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from quantoxbay.constants import REFUND_REASONS as REFUND_REASONS
from quantoxbay.errors import PaymentRefused, PaymentsUnavailable
from quantoxbay.models import (
    DownloadGrant,
    LedgerTaskKind,
    Order,
    OrderItem,
    OrderStatus,
    Refund,
    RefundStatus,
    Role,
    User,
    utcnow,
)
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import DomainError, NotFound, analytics, ledger, notifier
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.money import format_amount
from quantoxbay.services.notifier import Announcement, buyer_topic, checkout_topic, seller_topic

logger = logging.getLogger(__name__)

#: Refund rows that hold money: asked for, in flight, or done.
HOLDING_STATUSES = (RefundStatus.REQUESTED.value, RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value)
REFUNDABLE_STATUSES = OrderStatus.active()


class RefundRefused(DomainError):
    """The refund is not possible (too much, twice, wrong state); nothing was changed."""


def _announce(session: Session, order: Order, kind: str) -> list[Announcement]:
    assert order.id is not None
    sellers = sorted(
        set(session.exec(select(OrderItem.seller_id).where(OrderItem.order_id == order.id)).all())
    )
    topics = (
        checkout_topic(order.stripe_session_id),
        buyer_topic(order.buyer_id),
        *(seller_topic(s) for s in sellers),
    )
    announcements = [
        Announcement(
            kind=kind,
            topics=topics,
            data={"order_id": order.id, "status": order.status, "refunded_cents": order.refunded_cents},
        )
    ]
    notifier.queue(session, *announcements)  # published after the commit
    return announcements


def _set_grants(session: Session, order_id: int, *, revoked: bool) -> None:
    session.execute(
        update(DownloadGrant).where(col(DownloadGrant.order_id) == order_id).values(revoked=revoked)
    )


def _apply_refunded_total(
    session: Session, order: Order, refunded_cents: int, *, allow_lower: bool = False
) -> bool:
    """Set the refunded figure and the status it implies. Returns True when something changed."""
    assert order.id is not None
    new_total = refunded_cents if allow_lower else max(order.refunded_cents, refunded_cents)
    new_total = max(0, min(new_total, order.total_cents))
    before = (order.refunded_cents, order.status)
    order.refunded_cents = new_total
    analytics.record_refund(session=session, order_id=order.id, delta_cents=new_total - before[0])  # rollup
    if order.status not in (OrderStatus.DISPUTED.value, *REFUNDABLE_STATUSES, OrderStatus.REFUNDED.value):
        session.add(order)
        return before != (order.refunded_cents, order.status)
    if order.status != OrderStatus.DISPUTED.value:  # a dispute keeps access frozen whatever happens
        if new_total >= order.total_cents and order.total_cents > 0:
            order.status = OrderStatus.REFUNDED.value
        elif new_total > 0:
            order.status = OrderStatus.PARTIALLY_REFUNDED.value
        else:
            order.status = OrderStatus.PAID.value
        _set_grants(session, order.id, revoked=order.status == OrderStatus.REFUNDED.value)
    session.add(order)
    session.flush()
    return before != (order.refunded_cents, order.status)


def _lock_order(session: Session, order_id: int) -> Order | None:
    """Write first (a no-op UPDATE) so concurrent refunds of one order queue on its row."""
    session.execute(
        update(Order).where(col(Order.id) == order_id).values(refunded_cents=Order.refunded_cents)
    )
    order = session.get(Order, order_id)
    if order is not None:
        session.refresh(order)
    return order


def _held_cents(session: Session, order_id: int) -> int:
    return int(
        session.exec(
            select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
                Refund.order_id == order_id,
                col(Refund.status).in_(HOLDING_STATUSES),
            )
        ).one()
    )


def refundable_cents(*, session: Session, order_id: int) -> int:
    order = session.get(Order, order_id)
    if order is None:
        return 0
    return max(order.total_cents - max(order.refunded_cents, _held_cents(session, order_id)), 0)


def refund_order(
    *,
    session: Session,
    gateway: StripeGateway,
    actor: UserPublic,
    order_id: int,
    amount_cents: int | None,
    reason: str = "requested_by_customer",
) -> tuple[Refund, list[Announcement]]:
    """Refund ``amount_cents`` of an order (None: all that is left). Returns the refund row and
    the announcements to make after the commit. Raises RefundRefused / NotFound with a message
    fit to show; on refusal nothing is written."""
    order = _lock_order(session, order_id)
    if order is None or order.id is None:
        raise NotFound("This order does not exist.")
    if actor.role != Role.ADMIN.value:
        sellers = set(session.exec(select(OrderItem.seller_id).where(OrderItem.order_id == order.id)).all())
        if sellers != {actor.id}:
            raise NotFound("This order does not exist.")  # other sellers' orders stay invisible
    if reason not in REFUND_REASONS:
        raise RefundRefused(
            f"Choose a reason among: {', '.join(r.replace('_', ' ') for r in REFUND_REASONS)}."
        )
    if order.status == OrderStatus.REFUNDED.value:
        raise RefundRefused(f"Order #{order.id} has already been refunded in full.")
    if order.status == OrderStatus.DISPUTED.value:
        raise RefundRefused(f"Order #{order.id} is disputed; the bank decides, so it cannot be refunded now.")
    if order.status not in REFUNDABLE_STATUSES or not order.stripe_payment_intent_id:
        raise RefundRefused(f"Order #{order.id} is {order.status}; only paid orders can be refunded.")
    left = order.total_cents - max(order.refunded_cents, _held_cents(session, order.id))
    if left <= 0:
        raise RefundRefused(f"Order #{order.id} has already been refunded in full.")
    amount = left if amount_cents is None else amount_cents
    if not isinstance(amount, int) or amount <= 0:
        raise RefundRefused("Enter an amount greater than zero.")
    if amount > left:
        raise RefundRefused(
            f"You can refund at most {format_amount(left, order.currency)} of order #{order.id} "
            f"(paid {format_amount(order.total_cents, order.currency)}, "
            f"already refunded {format_amount(order.total_cents - left, order.currency)})."
        )
    refund = Refund(
        order_id=order.id, amount_cents=amount, currency=order.currency, reason=reason, actor_id=actor.id
    )
    with session.begin_nested():
        session.add(refund)
        session.flush()
    assert refund.id is not None
    destination_charge = order.seller_account_id is not None
    try:
        result = gateway.create_refund(
            payment_intent=order.stripe_payment_intent_id,
            amount_cents=amount,
            reason=reason,
            order_id=order.id,
            refund_row_id=refund.id,
            destination_charge=destination_charge,
        )
    except PaymentRefused as exc:
        session.delete(refund)
        session.flush()
        raise RefundRefused(f"Stripe refused the refund: {exc.detail}") from exc
    except PaymentsUnavailable as exc:
        session.delete(refund)
        session.flush()
        raise DomainError("Stripe could not be reached; nothing was refunded. Please try again.") from exc
    refund.stripe_refund_id = str(result["id"])
    refund.status = str(result["status"] or RefundStatus.PENDING.value)
    refund.updated_at = utcnow()
    session.add(refund)
    session.flush()
    if destination_charge:
        # The seller's share of the refund came back from their account, and the platform's fee on
        # it went back to the buyer: record both as Stripe made them.
        ledger.record_refund_reversal(session=session, gateway=gateway, order=order, refund=result)
    logger.info(
        "refund.requested",
        extra={"order_id": order.id, "refund_id": refund.id, "amount_cents": amount, "currency": order.currency,
               "reason": reason, "actor_id": actor.id, "stripe_status": refund.status},
    )  # fmt: skip
    changed = False
    if refund.status in (RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value):
        done = _held_cents(session, order.id) - _requested_cents(session, order.id)
        changed = _apply_refunded_total(session, order, done)
    return refund, (_announce(session, order, f"order.{order.status}") if changed else [])


def refund_notice(*, session: Session, refund_id: int) -> str:
    """The refund in plain words for the seller or admin who asked: "Refunded $2.00 of order #16."
    (with the currency), and when the order is now refunded in full, that its downloads ended."""
    refund = session.get(Refund, refund_id)
    order = session.get(Order, refund.order_id) if refund is not None else None
    if refund is None or order is None:
        raise NotFound("This refund does not exist.")
    amount = format_amount(refund.amount_cents, refund.currency)
    if refund.status == RefundStatus.SUCCEEDED.value:
        text = f"Refunded {amount} of order #{order.id}."
    elif refund.status in (RefundStatus.FAILED.value, RefundStatus.CANCELED.value):
        return f"Stripe did not refund {amount} of order #{order.id} ({refund.status})."
    else:  # requested or pending: Stripe confirms it later (charge.refunded)
        text = f"Refunding {amount} of order #{order.id}: Stripe is processing it."
    if order.status == OrderStatus.REFUNDED.value:
        text += " The order is refunded in full, so the buyer can no longer download its files."
    return text


def _requested_cents(session: Session, order_id: int) -> int:
    return int(
        session.exec(
            select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
                Refund.order_id == order_id, Refund.status == RefundStatus.REQUESTED.value
            )
        ).one()
    )


# --- webhook handlers (Stripe's truth) ------------------------------------------------


def _order_for(session: Session, obj: Mapping[str, Any]) -> Order | None:
    pi = obj.get("payment_intent")
    if isinstance(pi, Mapping):
        pi = pi.get("id")
    if not pi:
        return None
    order = session.exec(select(Order).where(Order.stripe_payment_intent_id == str(pi))).first()
    return _lock_order(session, order.id) if order is not None and order.id is not None else None


def on_charge_refunded(*, session: Session, charge: Mapping[str, Any]) -> list[Announcement]:
    """``charge.refunded`` (full or partial): the charge's ``amount_refunded`` is the total."""
    order = _order_for(session, charge)
    if order is None:
        return []  # not one of our payments
    refunded = int(charge.get("amount_refunded") or 0)
    changed = _apply_refunded_total(session, order, refunded)
    # Stripe's word, whether or not refund_order already showed the figure.
    logger.info(
        "refund.confirmed",
        extra={"order_id": order.id, "refunded_cents": refunded, "currency": order.currency,
               "order_status": order.status},
    )  # fmt: skip
    return _announce(session, order, f"order.{order.status}") if changed else []


def on_refund_failed(*, session: Session, refund: Mapping[str, Any]) -> list[Announcement]:
    """``refund.failed``: the money stayed with the seller; give the amount (and access) back."""
    order = _order_for(session, refund)
    if order is None or order.id is None:
        return []
    row = session.exec(select(Refund).where(Refund.stripe_refund_id == str(refund.get("id")))).first()
    if row is not None and row.status == RefundStatus.FAILED.value:
        return []  # already handled
    amount = int(refund.get("amount") or 0)
    if row is None:
        row = Refund(order_id=order.id, stripe_refund_id=str(refund.get("id")), amount_cents=amount)
    row.status, row.updated_at = RefundStatus.FAILED.value, utcnow()
    session.add(row)
    session.flush()
    _apply_refunded_total(session, order, order.refunded_cents - amount, allow_lower=True)
    logger.warning("refund.failed", extra={"order_id": order.id, "refund_id": row.id, "amount_cents": amount})
    return _announce(session, order, "order.refund_failed")


def on_dispute_created(*, session: Session, dispute: Mapping[str, Any]) -> list[Announcement]:
    """Freeze access and flag the order."""
    order = _order_for(session, dispute)
    if order is None or order.id is None or order.status == OrderStatus.DISPUTED.value:
        return []
    if order.status not in (*REFUNDABLE_STATUSES, OrderStatus.REFUNDED.value):
        return []
    order.status = OrderStatus.DISPUTED.value
    session.add(order)
    _set_grants(session, order.id, revoked=True)
    session.flush()
    # The platform is debited; the seller's share comes back by a transfer reversal (off the webhook).
    ledger.queue_dispute_task(
        session=session,
        order=order,
        dispute_id=str(dispute.get("id") or ""),
        kind=LedgerTaskKind.DISPUTE_REVERSAL,
    )
    logger.warning(
        "dispute.opened",
        extra={"order_id": order.id, "dispute": dispute.get("id"), "dispute_reason": dispute.get("reason")},
    )
    return _announce(session, order, "order.disputed")


def on_dispute_closed(*, session: Session, dispute: Mapping[str, Any]) -> list[Announcement]:
    """Won: access comes back (paid, or partially refunded). Lost: the money went back to the
    buyer's bank, so the order counts as refunded and access stays revoked."""
    order = _order_for(session, dispute)
    if order is None or order.id is None:
        return []
    if order.status != OrderStatus.DISPUTED.value:
        # Closed before its opening was seen (events come in any order): won changes nothing,
        # lost still takes the money back, and the access with it.
        if dispute.get("status") != "lost" or order.status not in REFUNDABLE_STATUSES:
            return []
        _set_grants(session, order.id, revoked=True)
    if dispute.get("status") == "won":
        order.status = (
            OrderStatus.PARTIALLY_REFUNDED.value if order.refunded_cents else OrderStatus.PAID.value
        )
        _set_grants(session, order.id, revoked=False)
        # The money came back to the platform: the seller's share goes back to the seller.
        ledger.queue_dispute_task(
            session=session,
            order=order,
            dispute_id=str(dispute.get("id") or ""),
            kind=LedgerTaskKind.DISPUTE_RETURN,
        )
    elif dispute.get("status") == "lost":
        order.status = OrderStatus.REFUNDED.value
        order.refunded_cents = order.total_cents
    else:
        return []
    session.add(order)
    session.flush()
    logger.info(
        "dispute.closed",
        extra={"order_id": order.id, "dispute": dispute.get("id"), "outcome": dispute.get("status"),
               "order_status": order.status},
    )  # fmt: skip
    return _announce(session, order, f"order.{order.status}")


# --- the seller's "Orders" view -----------------------------------------------------


class SellerOrderRow(TypedDict):
    """One line of the seller's "Orders" page (SellerOrdersState holds them as they are)."""

    order_id: int
    title: str
    buyer: str  # e-mail
    status: str
    status_label: str  # "partially refunded"
    total: str
    refunded: str  # "" when nothing was refunded
    refundable_cents: int
    can_refund: bool
    downloads_used: int
    date: str


def list_seller_orders(
    *, session: Session, seller_id: int, limit: int = 25, offset: int = 0
) -> list[SellerOrderRow]:
    """The seller's paid (and later) orders, newest first, as rows for the page."""
    rows = session.exec(
        select(Order, OrderItem, User.email)
        .join(OrderItem, col(OrderItem.order_id) == Order.id)
        .join(User, col(User.id) == Order.buyer_id)
        .where(col(OrderItem.seller_id) == seller_id, col(Order.paid_at).is_not(None))
        .order_by(col(Order.created_at).desc(), col(Order.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    out: list[SellerOrderRow] = []
    for order, item, email in rows:
        assert order.id is not None
        grant = session.exec(select(DownloadGrant).where(DownloadGrant.order_id == order.id)).first()
        refundable = (
            refundable_cents(session=session, order_id=order.id) if order.status in REFUNDABLE_STATUSES else 0
        )
        out.append(
            SellerOrderRow(
                order_id=order.id,
                title=item.title,
                buyer=email,
                status=order.status,
                status_label=order.status.replace("_", " "),
                total=format_amount(order.total_cents, order.currency),
                refunded=format_amount(order.refunded_cents, order.currency) if order.refunded_cents else "",
                refundable_cents=refundable,
                can_refund=refundable > 0,
                downloads_used=grant.downloads_used if grant else 0,
                date=order.created_at.strftime("%d %b %Y"),
            )
        )
    return out
