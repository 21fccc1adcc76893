"""fulfill_checkout: the only place an order becomes paid.

Called from the webhook (with the verified event's session object) and from the
success page (with the session it retrieved). It may run twice at once for the same
Checkout Session; the unique ``order.stripe_session_id`` and a conditional UPDATE
make exactly one of them create the order and its download grants.

It writes before it reads: on SQLite a transaction that reads first and writes
later can be refused the write lock; one that writes first waits for it.

New orders (the common case: every sale's first webhook) are written together, however many
sessions the caller has (the webhook's group commit passes a whole batch to
``fulfill_new_paid_checkouts``): one multi-row ``INSERT ... ON CONFLICT (stripe_session_id) DO
NOTHING RETURNING id`` for the orders (no savepoint: on PostgreSQL a concurrent insert of the
same session waits for the other transaction, then does nothing), the product rows read once,
then the items, grants, sales counts, receipt rows and rollup as one statement each, sent
together (``db.insert_rows``, ``db.bulk_writes``). ORM objects cost ten times what the database
did, and a statement per row a round trip each (bench/bench_webhook.py). An order that already
exists takes the ORM path below (``_grant``), which writes the same rows
(tests/integration/test_webhook_fast_path.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import Connection, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, select

from quantoxbay.db import bulk_writes, insert_rows
from quantoxbay.models import DownloadGrant, Order, OrderItem, OrderStatus, Product, utcnow
from quantoxbay.services import DomainError, analytics, charge_events, receipts
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


def _defaults(model: type[SQLModel]) -> Callable[[], dict[str, Any]]:
    """A model's column defaults as a plain dict (default factories called each time), without
    building the model: constructing a SQLModel table object costs ~0.1 ms."""
    fixed = {n: f.default for n, f in model.model_fields.items() if not f.is_required() and n != "id"}
    fixed = {n: v for n, v in fixed.items() if v is not PydanticUndefined}
    factories = {n: f.default_factory for n, f in model.model_fields.items() if f.default_factory is not None}
    return lambda: fixed | {n: factory() for n, factory in factories.items()}  # type: ignore[call-arg,misc]


_order_defaults = _defaults(Order)
_grant_defaults = _defaults(DownloadGrant)


def _new_order(cs: Mapping[str, Any], buyer_id: int, status: str) -> dict[str, Any]:
    """The order's column values (no id), as the ORM would insert them."""
    now = utcnow()
    discount = int((cs.get("total_details") or {}).get("amount_discount") or 0)
    total = int(cs.get("amount_total") or 0)
    return _order_defaults() | dict(
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


_ORDER = Order.__table__  # type: ignore[attr-defined]
_ITEM = OrderItem.__table__  # type: ignore[attr-defined]
_GRANT = DownloadGrant.__table__  # type: ignore[attr-defined]
_PRODUCT = Product.__table__  # type: ignore[attr-defined]
_PRODUCT_ROWS = sa_select(_PRODUCT.c.id, _PRODUCT.c.seller_id, _PRODUCT.c.title).where(
    _PRODUCT.c.id.in_(bindparam("ids", expanding=True))
)
_SALES_COUNT_UPDATE = (
    update(_PRODUCT)
    .where(_PRODUCT.c.id == bindparam("product_id"))
    .values(sales_count=_PRODUCT.c.sales_count + bindparam("sold"))
)


@dataclass(frozen=True)
class _NewOrder:
    values: dict[str, Any]  # the order row as inserted
    order_id: int
    product_id: int
    seller_id: int


def _create_orders(conn: Connection, sessions: list[Mapping[str, Any]], status: str) -> list[_NewOrder]:
    """Insert one order of one item per Checkout Session (distinct ids), with one multi-row
    statement per table, in session id order (two writers never wait on each other in opposite
    order). Returns the orders created; a session whose order exists already is left out."""
    wanted = {}
    for cs in sorted(sessions, key=lambda cs: str(cs["id"])):
        buyer_id, product_id = _ids(cs)
        wanted[str(cs["id"])] = (_new_order(cs, buyer_id, status), product_id)
    if len(wanted) != len(sessions):
        raise ValueError("checkout sessions must be distinct")
    if not wanted:
        return []
    inserted = insert_rows(
        conn,
        _ORDER,
        [order for order, _ in wanted.values()],
        skip_conflicts_on=("stripe_session_id",),
        returning=("id", "stripe_session_id"),
    )
    if not inserted:
        return []
    products = {
        row.id: row for row in conn.execute(_PRODUCT_ROWS, {"ids": sorted({p for _, p in wanted.values()})})
    }
    created, items = [], []
    for order_id, session_id in sorted(inserted, key=lambda row: row[1]):
        order, product_id = wanted[session_id]
        product = products.get(product_id)
        if product is None:
            raise MalformedCheckoutSession(f"product {product_id} of session {session_id} does not exist")
        created.append(_NewOrder(order, order_id, product_id, product.seller_id))
        items.append(
            {"order_id": order_id, "product_id": product_id, "seller_id": product.seller_id, "title": product.title,
             "quantity": 1, "unit_price_cents": order["subtotal_cents"], "discount_cents": order["discount_cents"],
             "total_cents": order["total_cents"], "created_at": order["created_at"]}
        )  # fmt: skip
    with bulk_writes(conn):
        insert_rows(conn, _ITEM, items)
        if status == OrderStatus.PAID.value:
            _grant_new(conn, created)
    # Refund and dispute events that came before their order (services.charge_events).
    charge_events.apply_kept_events(conn, [o.values["stripe_payment_intent_id"] for o in created])
    return created


def _grant_new(conn: Connection, orders: list[_NewOrder]) -> None:
    """``_grant`` for orders of one item created in this transaction: grants, sales counts, receipt
    rows and the rollup, one statement each (inside ``db.bulk_writes``: nothing is read back)."""
    insert_rows(
        conn,
        _GRANT,
        [_grant_defaults() | {"order_id": o.order_id, "product_id": o.product_id, "buyer_id": o.values["buyer_id"]}
         for o in orders],
    )  # fmt: skip
    sold = Counter(o.product_id for o in orders)
    conn.execute(_SALES_COUNT_UPDATE, [{"product_id": p, "sold": n} for p, n in sorted(sold.items())])
    receipts.queue_new_receipts(conn, [(o.order_id, o.values["buyer_id"]) for o in orders])  # post-purchase
    analytics.record_new_sales(  # analytics: the dashboards' rollup
        conn,
        [analytics.NewSale(seller_id=o.seller_id, product_id=o.product_id, currency=o.values["currency"],
                           created_at=o.values["created_at"], quantity=1, total_cents=o.values["total_cents"],
                           discount_cents=o.values["discount_cents"]) for o in orders],
    )  # fmt: skip


def _result(new: _NewOrder, status: str) -> FulfillmentResult:
    session_id = new.values["stripe_session_id"]
    return FulfillmentResult(session_id, new.order_id, status, True, new.values["buyer_id"], [new.seller_id])


def _grant(session: Session, order: Order) -> None:
    assert order.id is not None
    items = session.exec(select(OrderItem).where(OrderItem.order_id == order.id)).all()
    for item in items:
        session.add(DownloadGrant(order_id=order.id, product_id=item.product_id, buyer_id=order.buyer_id))
        session.execute(
            update(Product).where(Product.id == item.product_id).values(sales_count=Product.sales_count + 1)
        )
    session.flush()
    receipts.queue_receipt(session=session, order_id=order.id)  # post-purchase: receipt outbox row, same txn
    analytics.record_sale(session=session, order=order)  # analytics: the dashboards' rollup, same txn


def _seller_ids(session: Session, order_id: int) -> list[int]:
    return sorted(set(session.exec(select(OrderItem.seller_id).where(OrderItem.order_id == order_id)).all()))


def fulfill_checkout(*, session: Session, checkout_session: Any) -> FulfillmentResult:
    """Create the paid order and its download grants for a Checkout Session, exactly once."""
    cs = as_dict(checkout_session)
    session_id = str(cs.get("id") or "")
    if not session_id.startswith("cs_"):
        raise MalformedCheckoutSession("not a checkout session")
    buyer_id, _ = _ids(cs)
    paid = is_paid(cs)
    if not paid and cs.get("status") != "complete":
        # Still open (the buyer has not paid yet) or expired: there is no order to make.
        return FulfillmentResult(session_id, None, str(cs.get("status") or "open"), False, buyer_id)
    status = OrderStatus.PAID.value if paid else OrderStatus.PENDING.value

    created = _create_orders(session.connection(), [cs], status)
    if created:
        return _result(created[0], status)
    order = _new_order(cs, buyer_id, status)

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
            total_cents=order["total_cents"],
            stripe_payment_intent_id=order["stripe_payment_intent_id"],
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


def is_paid(checkout_session: Mapping[str, Any]) -> bool:
    return checkout_session.get("payment_status") in FULFILLABLE_PAYMENT_STATUSES


def fulfill_new_paid_checkouts(
    *, session: Session, checkout_sessions: list[Mapping[str, Any]]
) -> dict[str, FulfillmentResult]:
    """``fulfill_checkout`` for many paid Checkout Sessions with distinct ids at once (the webhook's
    group commit), one multi-row statement per table. Returns the results by session id for the
    orders it created; a session whose order existed already is left to ``fulfill_checkout``."""
    for cs in checkout_sessions:
        if not str(cs.get("id") or "").startswith("cs_"):
            raise MalformedCheckoutSession("not a checkout session")
        if not is_paid(cs):
            raise ValueError(f"checkout session {cs['id']} is not paid")
    paid = OrderStatus.PAID.value
    created = _create_orders(session.connection(), checkout_sessions, paid)
    return {c.values["stripe_session_id"]: _result(c, paid) for c in created}


def fail_checkout(*, session: Session, checkout_session: Any) -> FulfillmentResult:
    """An async payment failed: the order (created or pending) is marked failed, no grants."""
    cs = as_dict(checkout_session)
    session_id = str(cs.get("id") or "")
    buyer_id, _ = _ids(cs)
    created = _create_orders(session.connection(), [cs], OrderStatus.FAILED.value)
    if created:
        return _result(created[0], OrderStatus.FAILED.value)
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
