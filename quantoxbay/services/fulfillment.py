"""fulfill_checkout: the only place an order becomes paid.

Called from the webhook (with the verified event's session object) and from the
success page (with the session it retrieved). It may run twice at once for the same
Checkout Session; the unique ``order.stripe_session_id`` and a conditional UPDATE
make exactly one of them create the order and its download grants.

It writes before it reads: on SQLite a transaction that reads first and writes
later can be refused the write lock; one that writes first waits for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from quantoxbay.models import DownloadGrant, Order, OrderItem, OrderStatus, Product, utcnow
from quantoxbay.services import DomainError
from quantoxbay.services.notifier import Announcement, buyer_topic, checkout_topic, seller_topic

FULFILLABLE_PAYMENT_STATUSES = ("paid", "no_payment_required")


class MalformedCheckoutSession(DomainError):
    """The session lacks what we put into it at checkout (not one of ours, or tampered)."""


@dataclass
class FulfillmentResult:
    """What happened: ``order_id`` is None while unpaid; ``changed`` is True for exactly one caller."""

    stripe_session_id: str
    order_id: int | None
    status: str
    changed: bool
    buyer_id: int | None = None
    seller_ids: list[int] = field(default_factory=list)

    def announcements(self) -> list[Announcement]:
        """What to tell live pages once the transaction has committed."""
        if not self.changed:
            return []
        topics = [checkout_topic(self.stripe_session_id)]
        if self.buyer_id is not None:
            topics.append(buyer_topic(self.buyer_id))
        topics += [seller_topic(s) for s in self.seller_ids]
        return [
            Announcement(
                kind=f"order.{self.status}",
                topics=tuple(topics),
                data={"order_id": self.order_id, "stripe_session_id": self.stripe_session_id},
            )
        ]


def as_dict(obj: Any) -> dict[str, Any]:
    """A StripeObject or a parsed event payload, as plain dicts."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()  # type: ignore[no-any-return]
    if isinstance(obj, Mapping):
        return json.loads(json.dumps(obj))  # deep copy into plain types
    raise TypeError(f"not a checkout session: {type(obj).__name__}")


def _ids(cs: Mapping[str, Any]) -> tuple[int, int]:
    metadata = cs.get("metadata") or {}
    try:
        buyer_id = int(cs.get("client_reference_id") or metadata["buyer_id"])
        product_id = int(metadata["product_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedCheckoutSession(
            f"checkout session {cs.get('id')} carries no buyer/product ids"
        ) from exc
    return buyer_id, product_id


def _payment_intent_id(cs: Mapping[str, Any]) -> str | None:
    pi = cs.get("payment_intent")
    if isinstance(pi, Mapping):
        return str(pi.get("id"))
    return str(pi) if pi else None


def _promo_code(cs: Mapping[str, Any]) -> str:
    for discount in cs.get("discounts") or []:
        promo = discount.get("promotion_code") if isinstance(discount, Mapping) else None
        if isinstance(promo, Mapping):
            return str(promo.get("code") or promo.get("id") or "")[:60]
        if promo:
            return str(promo)[:60]
    return ""


def _new_order(cs: Mapping[str, Any], buyer_id: int, status: str) -> Order:
    now = utcnow()
    discount = int((cs.get("total_details") or {}).get("amount_discount") or 0)
    total = int(cs.get("amount_total") or 0)
    return Order(
        buyer_id=buyer_id,
        status=status,
        currency=str(cs.get("currency") or "usd").lower(),
        subtotal_cents=int(cs.get("amount_subtotal") or total + discount),
        discount_cents=discount,
        total_cents=total,
        promo_code=_promo_code(cs),
        stripe_session_id=str(cs["id"]),
        stripe_payment_intent_id=_payment_intent_id(cs),
        created_at=now,
        paid_at=now if status == OrderStatus.PAID.value else None,
    )


def _insert_order(session: Session, order: Order) -> bool:
    """INSERT in a savepoint; False when another caller already created the order."""
    try:
        with session.begin_nested():
            session.add(order)
            session.flush()
    except IntegrityError:
        return False
    return True


def _add_items(session: Session, order: Order, product_id: int) -> list[int]:
    product = session.get(Product, product_id)
    if product is None:
        raise MalformedCheckoutSession(
            f"product {product_id} of session {order.stripe_session_id} does not exist"
        )
    assert order.id is not None and product.id is not None
    session.add(
        OrderItem(
            order_id=order.id,
            product_id=product.id,
            seller_id=product.seller_id,
            title=product.title,
            quantity=1,
            unit_price_cents=order.subtotal_cents,
            discount_cents=order.discount_cents,
            total_cents=order.total_cents,
            created_at=order.created_at,
        )
    )
    return [product.seller_id]


def _grant(session: Session, order: Order) -> None:
    assert order.id is not None
    items = session.exec(select(OrderItem).where(OrderItem.order_id == order.id)).all()
    for item in items:
        session.add(DownloadGrant(order_id=order.id, product_id=item.product_id, buyer_id=order.buyer_id))
        session.execute(
            update(Product).where(Product.id == item.product_id).values(sales_count=Product.sales_count + 1)
        )
    session.flush()


def _seller_ids(session: Session, order_id: int) -> list[int]:
    return sorted(set(session.exec(select(OrderItem.seller_id).where(OrderItem.order_id == order_id)).all()))


def fulfill_checkout(*, session: Session, checkout_session: Any) -> FulfillmentResult:
    """Create the paid order and its download grants for a Checkout Session, exactly once."""
    cs = as_dict(checkout_session)
    session_id = str(cs.get("id") or "")
    if not session_id.startswith("cs_"):
        raise MalformedCheckoutSession("not a checkout session")
    buyer_id, product_id = _ids(cs)
    paid = cs.get("payment_status") in FULFILLABLE_PAYMENT_STATUSES
    if not paid and cs.get("status") != "complete":
        # Still open (the buyer has not paid yet) or expired: there is no order to make.
        return FulfillmentResult(session_id, None, str(cs.get("status") or "open"), False, buyer_id)
    status = OrderStatus.PAID.value if paid else OrderStatus.PENDING.value

    order = _new_order(cs, buyer_id, status)
    if _insert_order(session, order):
        seller_ids = _add_items(session, order, product_id)
        if paid:
            _grant(session, order)
        session.flush()
        return FulfillmentResult(session_id, order.id, status, True, buyer_id, seller_ids)

    existing = session.exec(select(Order).where(Order.stripe_session_id == session_id)).one()
    assert existing.id is not None
    if not paid:
        return FulfillmentResult(session_id, existing.id, existing.status, False, buyer_id)
    # An order left pending (async payment) or failed turns paid: the conditional UPDATE lets
    # exactly one concurrent caller make the change and write the grants.
    moved = session.execute(
        update(Order)
        .where(
            Order.id == existing.id,  # type: ignore[arg-type]
            Order.status.in_((OrderStatus.PENDING.value, OrderStatus.FAILED.value)),  # type: ignore[attr-defined]
        )
        .values(
            status=OrderStatus.PAID.value,
            paid_at=utcnow(),
            total_cents=order.total_cents,
            stripe_payment_intent_id=order.stripe_payment_intent_id,
        )
    ).rowcount  # type: ignore[attr-defined]
    if moved != 1:
        session.refresh(existing)
        return FulfillmentResult(session_id, existing.id, existing.status, False, buyer_id)
    session.refresh(existing)
    _grant(session, existing)
    return FulfillmentResult(
        session_id, existing.id, OrderStatus.PAID.value, True, buyer_id, _seller_ids(session, existing.id)
    )


def fail_checkout(*, session: Session, checkout_session: Any) -> FulfillmentResult:
    """An async payment failed: the order (created or pending) is marked failed, no grants."""
    cs = as_dict(checkout_session)
    session_id = str(cs.get("id") or "")
    buyer_id, product_id = _ids(cs)
    order = _new_order(cs, buyer_id, OrderStatus.FAILED.value)
    if _insert_order(session, order):
        seller_ids = _add_items(session, order, product_id)
        return FulfillmentResult(session_id, order.id, OrderStatus.FAILED.value, True, buyer_id, seller_ids)
    moved = session.execute(
        update(Order)
        .where(Order.stripe_session_id == session_id, Order.status == OrderStatus.PENDING.value)  # type: ignore[arg-type]
        .values(status=OrderStatus.FAILED.value)
    ).rowcount  # type: ignore[attr-defined]
    existing = session.exec(select(Order).where(Order.stripe_session_id == session_id)).one()
    return FulfillmentResult(session_id, existing.id, existing.status, moved == 1, buyer_id)


def order_status_for_session(*, session: Session, stripe_session_id: str, buyer_id: int) -> str | None:
    """The buyer's order status for a Checkout Session, or None when there is no order yet."""
    return session.exec(
        select(Order.status).where(Order.stripe_session_id == stripe_session_id, Order.buyer_id == buyer_id)
    ).first()
