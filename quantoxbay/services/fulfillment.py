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
exists (left pending, now paid) is moved by a conditional UPDATE below; its effects go through the
same ``_grant`` as a batch's, with one row (tests/integration/test_webhook_fast_path.py).

It trusts only what the shop sold: anyone holding the Stripe key can create a Checkout Session
with shop-looking metadata, a lower price or a 100%-off code of their own. An order is granted
only for a session services.checkout recorded (``CheckoutRecord``) whose currency and subtotal
match the record, whose discount comes from one of the shop's promotion codes allowed for that
session and product (no more than its coupon gives; once per buyer when the code says so), and
whose product is still published. Anything else is refused with a reason (``Refusal``) and grants
nothing; a session without the shop's metadata is not ours and is ignored.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic_core import PydanticUndefined
from sqlalchemy import Connection, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from quantoxbay.db import bulk_writes, insert_rows
from quantoxbay.models import (
    CheckoutRecord,
    DownloadGrant,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    ProductStatus,
    Promotion,
    utcnow,
)
from quantoxbay.services import DomainError, analytics, charge_events, notifier, receipts
from quantoxbay.services.fees import NO_FEES, FeeSchedule
from quantoxbay.services.notifier import Announcement, buyer_topic, checkout_topic, seller_topic
from quantoxbay.services.promotions import REDEEMED_STATUSES, coupon_discount_cents

logger = logging.getLogger(__name__)

FULFILLABLE_PAYMENT_STATUSES = ("paid", "no_payment_required")
#: ``FulfillmentResult.status`` of a session refused by the checks (no order, nothing granted) ...
REJECTED = "rejected"
#: ... and of a session that is not the shop's at all (no shop metadata, no record).
IGNORED = "ignored"


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
    reason: str = ""  # why a session was rejected or ignored

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
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return json.loads(json.dumps(obj))  # deep copy into plain types
    raise TypeError(f"not a checkout session: {type(obj).__name__}")


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
    # The shop's models take no default factory that reads the other fields' values.
    factories = {
        n: cast(Callable[[], Any], f.default_factory)
        for n, f in model.model_fields.items()
        if f.default_factory is not None
    }
    return lambda: fixed | {n: factory() for n, factory in factories.items()}


_order_defaults = _defaults(Order)
_grant_defaults = _defaults(DownloadGrant)


def _new_order(cs: Mapping[str, Any], sold: _Sold, status: str) -> dict[str, Any]:
    """The order's column values (no id), as the ORM would insert them. Its money comes from
    Stripe's checked amounts and from what the shop asked for when it created the session (the
    seller's account, the fee schedule, the application fee): never from the payload's claims."""
    now = utcnow()
    discount = int((cs.get("total_details") or {}).get("amount_discount") or 0)
    total = int(cs.get("amount_total") or 0)
    platform_fee = sold.fees.fee_cents(total) if sold.seller_account_id else 0
    return _order_defaults() | dict(
        buyer_id=sold.buyer_id,
        seller_account_id=sold.seller_account_id,
        transfer_group=sold.transfer_group,
        # No charge, no fee: a 100%-off sale moves no money at all.
        application_fee_cents=sold.application_fee_cents if total > 0 else 0,
        platform_fee_cents=platform_fee,
        seller_share_cents=total - platform_fee if sold.seller_account_id else 0,
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
_RECORD = CheckoutRecord.__table__  # type: ignore[attr-defined]
_PROMOTION = Promotion.__table__  # type: ignore[attr-defined]
_SALES_COUNT_UPDATE = (
    update(_PRODUCT)
    .where(_PRODUCT.c.id == bindparam("product_id"))
    .values(sales_count=_PRODUCT.c.sales_count + bindparam("sold"))
)
# What the shop sold in each session, with the product as it is now: one read per batch.
_RECORD_ROWS = (
    sa_select(
        _RECORD.c.stripe_session_id,
        _RECORD.c.buyer_id,
        _RECORD.c.product_id,
        _RECORD.c.currency,
        _RECORD.c.subtotal_cents,
        _RECORD.c.allow_promotion_codes,
        _RECORD.c.promotion_id,
        _RECORD.c.seller_account_id,
        _RECORD.c.fee_basis_points,
        _RECORD.c.fee_fixed_cents,
        _RECORD.c.application_fee_cents,
        _RECORD.c.transfer_group,
        _PRODUCT.c.seller_id,
        _PRODUCT.c.title,
        _PRODUCT.c.status.label("product_status"),
    )
    .join(_PRODUCT, _PRODUCT.c.id == _RECORD.c.product_id)
    .where(_RECORD.c.stripe_session_id.in_(bindparam("ids", expanding=True)))
)
_PROMOTION_ROWS = sa_select(_PROMOTION).where(
    _PROMOTION.c.stripe_promotion_code_id.in_(bindparam("ids", expanding=True))
)
_REDEEMED_BY_BUYER = (
    sa_select(_ORDER.c.id)
    .where(
        _ORDER.c.buyer_id == bindparam("buyer_id"),
        _ORDER.c.promo_code.in_(bindparam("codes", expanding=True)),
        _ORDER.c.status.in_(REDEEMED_STATUSES),
        _ORDER.c.stripe_session_id != bindparam("session_id"),
    )
    .limit(1)
)


@dataclass(frozen=True)
class _Sold:
    """What the shop sold in one Checkout Session that passed the checks."""

    buyer_id: int
    product_id: int
    seller_id: int
    title: str
    # The destination charge the shop asked for (CheckoutRecord); no account: the platform's own.
    seller_account_id: str | None = None
    fees: FeeSchedule = NO_FEES
    application_fee_cents: int = 0
    transfer_group: str | None = None


def _sold(record: Any) -> _Sold:
    return _Sold(
        record.buyer_id,
        record.product_id,
        record.seller_id,
        record.title,
        record.seller_account_id,
        FeeSchedule(record.fee_basis_points, record.fee_fixed_cents),
        record.application_fee_cents,
        record.transfer_group,
    )


@dataclass(frozen=True)
class Refusal:
    """Why a session gets no order: ``outcome`` is REJECTED (refused) or IGNORED (not ours)."""

    outcome: str
    reason: str


def _promotion_code_ids(cs: Mapping[str, Any]) -> set[str]:
    """The promotion code ids the session's discounts name (ids or expanded objects)."""
    found = list(cs.get("discounts") or [])
    breakdown = (cs.get("total_details") or {}).get("breakdown") or {}
    found += [d.get("discount") for d in breakdown.get("discounts") or [] if isinstance(d, Mapping)]
    ids = set()
    for discount in found:
        promo = discount.get("promotion_code") if isinstance(discount, Mapping) else None
        if isinstance(promo, Mapping):
            promo = promo.get("id")
        if promo:
            ids.add(str(promo))
    return ids


def _cents(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _refusal(
    conn: Connection,
    cs: Mapping[str, Any],
    record: Any,
    promos: Mapping[str, Any],
    used: set[tuple[int, int]],
) -> Refusal | None:
    """None when the session is what the shop sold (``record``); else why not."""
    session_id = str(cs["id"])
    metadata = cs.get("metadata") or {}
    if record is None:
        if not isinstance(metadata, Mapping) or not (metadata.get("product_id") or metadata.get("buyer_id")):
            return Refusal(IGNORED, "not a checkout session of this shop (no shop metadata)")
        return Refusal(REJECTED, "checkout session not created by this shop")
    claimed = (cs.get("client_reference_id"), metadata.get("buyer_id"), metadata.get("product_id"))
    if tuple(str(v) for v in claimed) != (str(record.buyer_id), str(record.buyer_id), str(record.product_id)):
        return Refusal(REJECTED, "buyer or product differ from what the shop sold")
    if record.product_status != ProductStatus.PUBLISHED.value:
        return Refusal(
            REJECTED, f"product {record.product_id} is no longer for sale ({record.product_status})"
        )
    currency = str(cs.get("currency") or "").lower()
    if currency != record.currency:
        return Refusal(REJECTED, f"currency {currency or 'none'} instead of {record.currency}")
    subtotal, total = _cents(cs.get("amount_subtotal")), _cents(cs.get("amount_total"))
    if subtotal is None or subtotal != record.subtotal_cents:
        return Refusal(REJECTED, f"subtotal {subtotal} instead of {record.subtotal_cents}")
    discount = _cents((cs.get("total_details") or {}).get("amount_discount") or 0)
    if total is None or discount is None or discount < 0 or total != subtotal - discount:
        return Refusal(REJECTED, f"total {total} does not match subtotal {subtotal} less discount {discount}")
    if discount == 0:
        return None
    codes = _promotion_code_ids(cs)
    if len(codes) != 1:
        return Refusal(REJECTED, f"discount of {discount} without one promotion code of the shop")
    code_id = codes.pop()
    promo = promos.get(code_id)
    if promo is None:
        return Refusal(REJECTED, f"promotion code {code_id} is not one of the shop's")
    if promo.seller_id != record.seller_id:
        return Refusal(REJECTED, f"promotion code {code_id} belongs to another seller")
    if promo.product_id is not None and promo.product_id != record.product_id:
        return Refusal(REJECTED, f"promotion code {code_id} is for another product")
    if record.promotion_id is not None:
        if promo.id != record.promotion_id:
            return Refusal(REJECTED, f"promotion code {code_id} is not the one the shop applied")
    elif not record.allow_promotion_codes or promo.once_per_buyer:
        return Refusal(REJECTED, f"promotion code {code_id} was not allowed on this checkout")
    if promo.amount_off_cents is not None and promo.currency != record.currency:
        return Refusal(REJECTED, f"promotion code {code_id} is in {promo.currency}")
    allowed = coupon_discount_cents(promo, record.subtotal_cents)
    # Less than the code gives only costs the buyer (and Stripe's rounding may differ): more is refused.
    if discount > allowed:
        return Refusal(
            REJECTED, f"discount {discount} is more than promotion code {code_id} gives ({allowed})"
        )
    if promo.once_per_buyer:
        key = (promo.id, record.buyer_id)
        earlier = conn.execute(
            _REDEEMED_BY_BUYER,
            {"buyer_id": record.buyer_id, "codes": [promo.stripe_promotion_code_id, promo.stripe_code],
             "session_id": session_id},
        ).first()  # fmt: skip
        if earlier is not None or key in used:
            return Refusal(REJECTED, f"buyer already used the once-per-buyer promotion code {code_id}")
        used.add(key)
    return None


def _check(
    conn: Connection, sessions: list[Mapping[str, Any]]
) -> tuple[dict[str, _Sold], dict[str, Refusal]]:
    """Split sessions into what the shop sold (by session id) and the refused ones (with why).
    One read for the records and products, one for the promotions named by discounted sessions."""
    ids = sorted({str(cs["id"]) for cs in sessions})
    records = {row.stripe_session_id: row for row in conn.execute(_RECORD_ROWS, {"ids": ids})}
    code_ids = sorted({c for cs in sessions if (cs.get("total_details") or {}).get("amount_discount")
                       for c in _promotion_code_ids(cs)})  # fmt: skip
    promos = (
        {row.stripe_promotion_code_id: row for row in conn.execute(_PROMOTION_ROWS, {"ids": code_ids})}
        if code_ids
        else {}
    )
    sold: dict[str, _Sold] = {}
    refused: dict[str, Refusal] = {}
    used: set[tuple[int, int]] = set()  # (promotion, buyer) once-per-buyer pairs accepted in this batch
    for cs in sorted(sessions, key=lambda cs: str(cs["id"])):
        session_id = str(cs["id"])
        record = records.get(session_id)
        refusal = _refusal(conn, cs, record, promos, used)
        if refusal is not None or record is None:
            refused[session_id] = refusal or Refusal(REJECTED, "checkout session not created by this shop")
        else:
            sold[session_id] = _sold(record)
    return sold, refused


@dataclass(frozen=True)
class _NewOrder:
    values: dict[str, Any]  # the order row as inserted
    order_id: int
    product_id: int
    seller_id: int


def _create_orders(
    session: Session, sessions: list[Mapping[str, Any]], status: str, sold: Mapping[str, _Sold]
) -> list[_NewOrder]:
    """Insert one order of one item per Checkout Session (distinct ids, each checked: ``sold``),
    with one multi-row statement per table, in session id order (two writers never wait on each
    other in opposite order). Returns the orders created; a session whose order exists already is
    left out."""
    wanted = {}
    for cs in sorted(sessions, key=lambda cs: str(cs["id"])):
        what = sold[str(cs["id"])]
        wanted[str(cs["id"])] = (_new_order(cs, what, status), what)
    if len(wanted) != len(sessions):
        raise ValueError("checkout sessions must be distinct")
    if not wanted:
        return []
    conn = session.connection()
    inserted = insert_rows(
        conn,
        _ORDER,
        [order for order, _ in wanted.values()],
        skip_conflicts_on=("stripe_session_id",),
        returning=("id", "stripe_session_id"),
    )
    if not inserted:
        return []
    created, items = [], []
    for order_id, session_id in sorted(inserted, key=lambda row: row[1]):
        order, what = wanted[session_id]
        created.append(_NewOrder(order, order_id, what.product_id, what.seller_id))
        items.append(
            {"order_id": order_id, "product_id": what.product_id, "seller_id": what.seller_id, "title": what.title,
             "quantity": 1, "unit_price_cents": order["subtotal_cents"], "discount_cents": order["discount_cents"],
             "total_cents": order["total_cents"], "created_at": order["created_at"]}
        )  # fmt: skip
    with bulk_writes(conn):
        insert_rows(conn, _ITEM, items)
        if status == OrderStatus.PAID.value:
            _grant(conn, [_PaidItem(o.order_id, o.values["buyer_id"], _new_sale(o)) for o in created])
    # Refund and dispute events that came before their order (services.charge_events).
    charge_events.apply_kept_events(session, [o.values["stripe_payment_intent_id"] for o in created])
    if status == OrderStatus.PAID.value and logger.isEnabledFor(logging.INFO):  # the webhook's hot path
        for o in created:
            _log_paid(o.order_id, o.values)
    return created


def _log_paid(order_id: int | None, order: Mapping[str, Any]) -> None:
    logger.info(
        "order.paid",
        extra={"order_id": order_id, "buyer_id": order["buyer_id"], "amount_cents": order["total_cents"],
               "currency": order["currency"], "payment_intent": order["stripe_payment_intent_id"]},
    )  # fmt: skip


@dataclass(frozen=True)
class _PaidItem:
    """One item of an order that has just become paid: what its effects are written from."""

    order_id: int
    buyer_id: int
    sale: analytics.Sale  # product, seller and amounts, as the rollup counts them


def _new_sale(new: _NewOrder) -> analytics.Sale:
    """The one item of an order created in this transaction (``_create_orders``)."""
    order = new.values
    return analytics.Sale(seller_id=new.seller_id, product_id=new.product_id, currency=order["currency"],
                          created_at=order["created_at"], quantity=1, total_cents=order["total_cents"],
                          discount_cents=order["discount_cents"])  # fmt: skip


def _grant(conn: Connection, paid: list[_PaidItem]) -> None:
    """The effects of orders that have just become paid, however many, and the only place they
    are written: a download grant per item, the products' sales counts, a receipt row per order
    (post-purchase) and the dashboards' rollup (analytics), one statement each. Nothing is read
    back, so callers run it inside ``db.bulk_writes``. New orders come from ``_create_orders`` (a
    whole batch), an order left pending that turns paid from ``fulfill_checkout`` (one)."""
    insert_rows(
        conn,
        _GRANT,
        [_grant_defaults() | {"order_id": p.order_id, "product_id": p.sale.product_id, "buyer_id": p.buyer_id}
         for p in paid],
    )  # fmt: skip
    sold = Counter(p.sale.product_id for p in paid)
    conn.execute(_SALES_COUNT_UPDATE, [{"product_id": p, "sold": n} for p, n in sorted(sold.items())])
    receipts.queue_receipts(conn, list(dict.fromkeys((p.order_id, p.buyer_id) for p in paid)))
    analytics.record_sales(conn, [p.sale for p in paid])


def _result(new: _NewOrder, status: str) -> FulfillmentResult:
    session_id = new.values["stripe_session_id"]
    return FulfillmentResult(session_id, new.order_id, status, True, new.values["buyer_id"], [new.seller_id])


def _announced(session: Session, result: FulfillmentResult) -> FulfillmentResult:
    """The result, its announcements queued for after the commit (none unless it changed the order)."""
    notifier.queue(session, *result.announcements())
    return result


def _grant_existing(session: Session, order: Order) -> None:
    """``_grant`` for one order created earlier (left pending, now paid), with its items."""
    assert order.id is not None
    items = session.exec(
        select(OrderItem).where(col(OrderItem.order_id) == order.id).order_by(col(OrderItem.id))
    ).all()
    conn = session.connection()
    with bulk_writes(conn):
        _grant(
            conn,
            [_PaidItem(order.id, order.buyer_id, sale) for sale in analytics.order_sales(order, list(items))],
        )


def _seller_ids(session: Session, order_id: int) -> list[int]:
    return sorted(set(session.exec(select(OrderItem.seller_id).where(OrderItem.order_id == order_id)).all()))


def _refused(session: Session, session_id: str, refusal: Refusal) -> FulfillmentResult:
    """A refused session's result; an order the checks let through before (the product has been
    unpublished since, say) stays as it is."""
    existing = session.exec(select(Order).where(Order.stripe_session_id == session_id)).first()
    if existing is not None and existing.status not in (OrderStatus.PENDING.value, OrderStatus.FAILED.value):
        return FulfillmentResult(session_id, existing.id, existing.status, False, existing.buyer_id)
    return FulfillmentResult(session_id, None, refusal.outcome, False, reason=refusal.reason)


def _checked(session: Session, cs: Mapping[str, Any]) -> tuple[dict[str, _Sold], FulfillmentResult | None]:
    session_id = str(cs.get("id") or "")
    if not session_id.startswith("cs_"):
        raise MalformedCheckoutSession("not a checkout session")
    sold, refused = _check(session.connection(), [cs])
    return sold, (_refused(session, session_id, refused[session_id]) if session_id in refused else None)


def fulfill_checkout(*, session: Session, checkout_session: Any) -> FulfillmentResult:
    """Create the paid order and its download grants for a Checkout Session the shop sold, exactly
    once; a session it did not sell gets a REJECTED (or IGNORED) result and nothing else."""
    cs = as_dict(checkout_session)
    sold, refused = _checked(session, cs)
    if refused is not None:
        return refused
    session_id = str(cs["id"])
    buyer_id = sold[session_id].buyer_id
    paid = is_paid(cs)
    if not paid and cs.get("status") != "complete":
        # Still open (the buyer has not paid yet) or expired: there is no order to make.
        return FulfillmentResult(session_id, None, str(cs.get("status") or "open"), False, buyer_id)
    status = OrderStatus.PAID.value if paid else OrderStatus.PENDING.value

    created = _create_orders(session, [cs], status, sold)
    if created:
        return _announced(session, _result(created[0], status))
    order = _new_order(cs, sold[session_id], status)

    existing = session.exec(select(Order).where(Order.stripe_session_id == session_id)).one()
    assert existing.id is not None
    if not paid:
        return FulfillmentResult(session_id, existing.id, existing.status, False, buyer_id)
    # An order left pending (async payment) or failed turns paid: the conditional UPDATE lets
    # exactly one concurrent caller make the change and write the grants.
    moved = session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
        update(Order)
        .where(
            col(Order.id) == existing.id,
            col(Order.status).in_((OrderStatus.PENDING.value, OrderStatus.FAILED.value)),
        )
        .values(
            status=OrderStatus.PAID.value,
            paid_at=utcnow(),
            total_cents=order["total_cents"],
            application_fee_cents=order["application_fee_cents"],
            platform_fee_cents=order["platform_fee_cents"],
            seller_share_cents=order["seller_share_cents"],
            stripe_payment_intent_id=order["stripe_payment_intent_id"],
        )
    ).rowcount
    if moved != 1:
        session.refresh(existing)
        return FulfillmentResult(session_id, existing.id, existing.status, False, buyer_id)
    session.refresh(existing)
    _grant_existing(session, existing)
    _log_paid(existing.id, existing.model_dump())
    return _announced(
        session,
        FulfillmentResult(
            session_id, existing.id, OrderStatus.PAID.value, True, buyer_id, _seller_ids(session, existing.id)
        ),
    )


def is_paid(checkout_session: Mapping[str, Any]) -> bool:
    return checkout_session.get("payment_status") in FULFILLABLE_PAYMENT_STATUSES


def fulfill_new_paid_checkouts(
    *, session: Session, checkout_sessions: list[Mapping[str, Any]]
) -> dict[str, FulfillmentResult]:
    """``fulfill_checkout`` for many paid Checkout Sessions with distinct ids at once (the webhook's
    group commit), one multi-row statement per table. Returns the results by session id for the
    orders it created; a session whose order existed already, or that the checks refused, is left
    to ``fulfill_checkout`` (which says why)."""
    for cs in checkout_sessions:
        if not str(cs.get("id") or "").startswith("cs_"):
            raise MalformedCheckoutSession("not a checkout session")
        if not is_paid(cs):
            raise ValueError(f"checkout session {cs['id']} is not paid")
    conn = session.connection()
    sold, _refused_here = _check(conn, checkout_sessions)
    paid = OrderStatus.PAID.value
    created = _create_orders(session, [cs for cs in checkout_sessions if str(cs["id"]) in sold], paid, sold)
    return {c.values["stripe_session_id"]: _announced(session, _result(c, paid)) for c in created}


#: The prefix of a free order's ``stripe_session_id``: no Checkout Session, so the shop makes the id.
FREE_ORDER_PREFIX = "free_"


def free_order_key(*, buyer_id: int, product_id: int) -> str:
    """The ``stripe_session_id`` of a buyer's free order of a product: one key per buyer and
    product, so the order table's unique column makes a double click or a second tab one order."""
    return f"{FREE_ORDER_PREFIX}{buyer_id}_{product_id}"


def fulfill_free_order(*, session: Session, buyer_id: int, product: Product) -> FulfillmentResult:
    """A paid order of 0 for a free product, with the effects of a sale (``_grant``: grant, sales
    count, receipt, rollup) and its announcement, exactly once per buyer and product. The caller
    has checked the buyer and the product (services.checkout.get_free_product). No Stripe: no
    payment intent, no connected account, no fee."""
    assert product.id is not None
    key = free_order_key(buyer_id=buyer_id, product_id=product.id)
    # Shaped like the Checkout Session ``_new_order`` reads, so the order's columns come from the
    # same code as a sale's.
    free = {"id": key, "currency": product.currency, "amount_subtotal": 0, "amount_total": 0}
    sold = {key: _Sold(buyer_id, product.id, product.seller_id, product.title)}
    paid = OrderStatus.PAID.value
    created = _create_orders(session, [free], paid, sold)
    if created:
        return _announced(session, _result(created[0], paid))
    existing = session.exec(select(Order).where(Order.stripe_session_id == key)).one()
    return FulfillmentResult(key, existing.id, existing.status, False, buyer_id)


def fail_checkout(*, session: Session, checkout_session: Any) -> FulfillmentResult:
    """An async payment failed: the order (created or pending) is marked failed, no grants."""
    cs = as_dict(checkout_session)
    sold, refused = _checked(session, cs)
    if refused is not None:
        return refused
    session_id = str(cs["id"])
    buyer_id = sold[session_id].buyer_id
    created = _create_orders(session, [cs], OrderStatus.FAILED.value, sold)
    if created:
        return _announced(session, _result(created[0], OrderStatus.FAILED.value))
    moved = session.execute(
        update(Order)
        .where(col(Order.stripe_session_id) == session_id, col(Order.status) == OrderStatus.PENDING.value)
        .values(status=OrderStatus.FAILED.value)
    ).rowcount  # type: ignore[attr-defined]
    existing = session.exec(select(Order).where(Order.stripe_session_id == session_id)).one()
    return _announced(
        session, FulfillmentResult(session_id, existing.id, existing.status, moved == 1, buyer_id)
    )


def order_status_for_session(*, session: Session, stripe_session_id: str, buyer_id: int) -> str | None:
    """The buyer's order status for a Checkout Session, or None when there is no order yet."""
    return session.exec(
        select(Order.status).where(Order.stripe_session_id == stripe_session_id, Order.buyer_id == buyer_id)
    ).first()
