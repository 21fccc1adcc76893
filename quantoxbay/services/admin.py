"""The admin panel's domain: users, products, orders, webhook events, platform totals.

Every function takes the acting user and refuses anyone but an admin (the state checks too:
two locks, so a missed check in one layer is not a hole). Changes are written to
``admin_action`` (who did what to what), in the same transaction as the change.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from sqlalchemy import case, distinct, func, or_, true
from sqlmodel import Session, col, select

from quantoxbay.models import (
    AdminAction,
    Order,
    OrderItem,
    Product,
    ProductStatus,
    Role,
    SellerAccount,
    User,
    WebhookEvent,
    utcnow,
)
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import (
    DomainError,
    NotFound,
    PermissionDenied,
    accounts,
    connect,
    ledger,
    receipts,
    webhook_events,
)
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.analytics import COUNTED_STATUSES, PERIODS, period_bounds
from quantoxbay.services.money import format_amount, format_money
from quantoxbay.services.notifier import Announcement
from quantoxbay.services.text import one_line
from quantoxbay.settings import Settings

LIST_LIMIT = 50
MAX_REASON = 500


def require_admin(actor: UserPublic | None) -> UserPublic:
    if actor is None:
        raise PermissionDenied("Please log in first.")
    if actor.role != Role.ADMIN.value:
        raise PermissionDenied("Only admins can do this.")
    return actor


def _log(session: Session, actor: UserPublic, action: str, target: str, detail: str = "") -> None:
    session.add(AdminAction(actor_id=actor.id, action=action, target=target, detail=detail[:1000]))


def _like(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _id(value: int | None) -> int:
    """The primary key of a row read from (or flushed to) the database: never None there."""
    assert value is not None, "a stored row has an id"
    return value


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


# --- the rows the admin page shows (AdminState holds them as they are) -------------


class RevenueRow(TypedDict):
    currency: str  # upper case
    orders: int
    gross: str  # formatted money
    refunds: str
    net: str


class PlatformTotals(TypedDict):
    revenue: list[RevenueRow]
    orders: int
    active_sellers: int
    users: int


class UserRow(TypedDict):
    id: int
    email: str
    display_name: str
    role: str
    disabled: bool
    created: str


class ProductRow(TypedDict):
    id: int
    title: str
    seller: str  # e-mail
    status: str
    price: str
    reason: str  # why an admin unpublished it
    sales: int


class UnpublishedProduct(TypedDict):
    id: int
    status: str
    reason: str


class OrderRow(TypedDict):
    id: int
    buyer: str  # e-mail
    status: str
    total: str
    refunded: str  # "" when nothing was refunded
    session: str  # the Stripe Checkout Session id
    created: str


class OrderHead(OrderRow):
    """An order opened on the admin page: its row plus the amounts and ids."""

    currency: str
    subtotal: str
    discount: str
    promo_code: str
    payment_intent: str
    paid_at: str
    refundable_cents: int


class OrderItemRow(TypedDict):
    product_id: int
    title: str
    quantity: int
    price: str
    discount: str
    total: str


class RefundRow(TypedDict):
    amount: str
    status: str
    reason: str
    created: str


class EventRow(TypedDict):
    id: int
    event_id: str
    type: str
    received: str
    processed: str
    outcome: str
    reason: str  # why fulfilment refused the event's Checkout Session
    error: str  # the last line of the traceback of a failed run


class OrderDetail(TypedDict):
    order: OrderHead
    items: list[OrderItemRow]
    events: list[EventRow]  # the webhook events that mention the order
    refunds: list[RefundRow]


class ActionRow(TypedDict):
    when: str
    who: str  # the admin's e-mail
    action: str
    target: str
    detail: str


# --- platform totals ----------------------------------------------------------------


def platform_totals(*, session: Session, actor: UserPublic) -> PlatformTotals:
    """Revenue per currency (gross, refunds, net), paid orders, active sellers (a published product)."""
    require_admin(actor)
    rows = session.exec(
        select(Order.currency, func.count(), func.sum(Order.total_cents), func.sum(Order.refunded_cents))
        .where(col(Order.status).in_(COUNTED_STATUSES))
        .group_by(Order.currency)
    ).all()
    revenue = [
        RevenueRow(
            currency=currency.upper(),
            orders=int(n),
            gross=format_amount(int(gross or 0), currency),
            refunds=format_amount(int(refunded or 0), currency),
            net=format_amount(int(gross or 0) - int(refunded or 0), currency),
        )
        for currency, n, gross, refunded in sorted(rows, key=lambda r: -int(r[2] or 0))
    ]
    active_sellers = session.exec(
        select(func.count(distinct(col(Product.seller_id))))
        .join(User, col(User.id) == Product.seller_id)
        .where(Product.status == ProductStatus.PUBLISHED.value, User.disabled == False)  # noqa: E712
    ).one()
    return PlatformTotals(
        revenue=revenue,
        orders=sum(r["orders"] for r in revenue),
        active_sellers=int(active_sellers),
        users=accounts.count_users(session=session),
    )


# --- platform fees --------------------------------------------------------------------


class FeeTotalRow(TypedDict):
    period: str  # a key of PERIODS
    label: str  # "Last 7 days"
    currency: str  # "USD"
    fees_cents: int
    fees: str
    orders: int


class SellerPayoutRow(TypedDict):
    seller_id: int
    email: str
    status: str  # connect.PayoutStatus.label
    needs: str  # what Stripe still asks for, in words
    account: str  # acct_... ("" without one)


class PlatformFees(TypedDict):
    schedule: str  # "10% + $0.00 per sale"
    totals: list[FeeTotalRow]
    sellers: list[SellerPayoutRow]


def fee_schedule_label(settings: Settings) -> str:
    """PLATFORM_FEE_PERCENT and PLATFORM_FEE_FIXED_CENTS in words: "10% + $0.00 per sale"."""
    percent = Decimal(settings.platform_fee_percent).normalize()
    return f"{percent:f}% + {format_amount(settings.platform_fee_fixed_cents, 'usd')} per sale"


def _fee_kept() -> Any:
    """What the platform keeps of an order's fee (``ledger.platform_fee_kept_cents``)."""
    return ledger.platform_fee_kept_sql()


def platform_fee_totals(*, session: Session, now: datetime | None = None) -> list[FeeTotalRow]:
    """The platform's fees per currency for each dashboard period (UTC days; "all" is the total
    since the first sale), in one pass over the paid orders."""
    bounds = {period: period_bounds(period, "UTC", now) for period in PERIODS}
    _start, end = bounds["all"]
    columns = []
    for start, _end in bounds.values():
        within = col(Order.created_at) >= start if start is not None else true()
        columns.append(func.sum(case((within, _fee_kept()), else_=0)))
        columns.append(func.sum(case((within, 1), else_=0)))
    rows = session.exec(
        select(Order.currency, *columns)
        .where(col(Order.status).in_(COUNTED_STATUSES), col(Order.created_at) < end)
        .group_by(Order.currency)
    ).all()
    by_currency: dict[str, list[int]] = {str(r[0]): [int(v or 0) for v in tuple(r)[1:]] for r in rows}
    by_currency = by_currency or {"usd": []}
    # The busiest currency first (all-time fees), so the platform's main currency leads.
    ordered = sorted(by_currency, key=lambda c: (-(by_currency[c] or [0, 0])[-2], c))
    totals = []
    for index, (period, label) in enumerate(PERIODS.items()):
        for currency in ordered:
            values = by_currency[currency] or [0] * (2 * len(PERIODS))
            fees, orders = values[2 * index], values[2 * index + 1]
            totals.append(
                FeeTotalRow(
                    period=period,
                    label=label,
                    currency=currency.upper(),
                    fees_cents=fees,
                    fees=format_amount(fees, currency),
                    orders=orders,
                )
            )
    return totals


#: Sellers whose account needs them first, then those without one, then the enabled ones.
_STATUS_ORDER = {connect.ACTION_REQUIRED: 0, connect.NOT_SET_UP: 1, connect.PAYOUTS_ENABLED: 2}


def seller_payout_statuses(*, session: Session, limit: int = LIST_LIMIT) -> list[SellerPayoutRow]:
    """Every seller's payout status (sellers, and anyone with a connected account), those that
    need action first."""
    needs_action = case(
        (col(SellerAccount.id).is_(None), 1),
        (
            col(SellerAccount.charges_enabled).is_(True)
            & col(SellerAccount.payouts_enabled).is_(True)
            & (col(SellerAccount.requirements_due) == ""),
            2,
        ),
        else_=0,
    )
    rows = session.exec(
        select(User.id, User.email)
        .outerjoin(SellerAccount, col(SellerAccount.user_id) == User.id)
        .where(or_(col(User.role) == Role.SELLER.value, col(SellerAccount.id).is_not(None)))
        .order_by(needs_action, col(User.email))
        .limit(limit)
    ).all()
    sellers = []
    for user_id, email in rows:
        assert user_id is not None
        status = connect.payout_status(session=session, seller_id=user_id)
        sellers.append(
            SellerPayoutRow(
                seller_id=user_id,
                email=email,
                status=status.label,
                needs=" ".join(status.needs),
                account=status.stripe_account_id,
            )
        )
    # The SQL order is the same rule; sorting again keeps the page right whatever the flags say.
    return sorted(sellers, key=lambda s: _STATUS_ORDER.get(s["status"], 0))


def platform_fees(
    *, session: Session, actor: UserPublic, settings: Settings, now: datetime | None = None
) -> PlatformFees:
    """The admin's "Platform fees" section: the fee in force, fees per period and currency, and
    each seller's payout status."""
    require_admin(actor)
    return PlatformFees(
        schedule=fee_schedule_label(settings),
        totals=platform_fee_totals(session=session, now=now),
        sellers=seller_payout_statuses(session=session),
    )


# --- users --------------------------------------------------------------------------


def _user_row(user: User) -> UserRow:
    return UserRow(
        id=_id(user.id),
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        disabled=user.disabled,
        created=_when(user.created_at),
    )


def search_users(
    *, session: Session, actor: UserPublic, query: str = "", limit: int = LIST_LIMIT
) -> list[UserRow]:
    """Users whose e-mail, name or id matches, newest first."""
    require_admin(actor)
    stmt = select(User)
    q = query.strip()
    if q.isdigit():
        stmt = stmt.where(User.id == int(q))
    elif q:
        pattern = _like(q.lower())
        stmt = stmt.where(
            or_(
                col(User.email).like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
            )
        )
    users = session.exec(stmt.order_by(col(User.id).desc()).limit(min(limit, 200))).all()
    return [_user_row(u) for u in users]


def _other_user(session: Session, actor: UserPublic, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("This user does not exist.")
    if user.id == actor.id:
        raise DomainError("You cannot change your own account here (you would lock yourself out).")
    return user


def set_role(*, session: Session, actor: UserPublic, user_id: int, role: str) -> UserRow:
    require_admin(actor)
    try:
        new_role = Role(role).value
    except ValueError as exc:
        raise DomainError(f"Choose a role among: {', '.join(r.value for r in Role)}.") from exc
    user = _other_user(session, actor, user_id)
    if user.role != new_role:
        old = user.role
        user.role = new_role
        if new_role != Role.BUYER.value and not user.handle:
            user.handle = accounts._unique_handle(session, user.email)  # a public seller page needs one
        session.add(user)
        _log(session, actor, "user.role", f"user:{user.id}", f"{old} -> {new_role}")
        session.flush()
    return _user_row(user)


def set_disabled(*, session: Session, actor: UserPublic, user_id: int, disabled: bool) -> UserRow:
    """Disable (or enable) an account. Disabling ends every session: the user is logged out now."""
    require_admin(actor)
    user = _other_user(session, actor, user_id)
    if user.disabled != disabled:
        user.disabled = disabled
        session.add(user)
        _log(session, actor, "user.disable" if disabled else "user.enable", f"user:{user.id}")
        session.flush()
    if disabled:
        accounts.end_all_sessions(session=session, user_id=user_id)
    return _user_row(user)


# --- products -----------------------------------------------------------------------


def search_products(
    *, session: Session, actor: UserPublic, query: str = "", limit: int = LIST_LIMIT
) -> list[ProductRow]:
    """Products (any status but deleted) by title, seller e-mail or id, newest first."""
    require_admin(actor)
    stmt = (
        select(Product, User.email)
        .join(User, col(User.id) == Product.seller_id)
        .where(Product.status != ProductStatus.DELETED.value)
    )
    q = query.strip()
    if q.isdigit():
        stmt = stmt.where(Product.id == int(q))
    elif q:
        pattern = _like(q.lower())
        stmt = stmt.where(
            or_(
                func.lower(Product.title).like(pattern, escape="\\"),
                col(User.email).like(pattern, escape="\\"),
            )
        )
    rows = session.exec(stmt.order_by(col(Product.id).desc()).limit(min(limit, 200))).all()
    return [
        ProductRow(
            id=_id(p.id),
            title=p.title,
            seller=email,
            status=p.status,
            price=format_money(p.price_cents, p.currency),
            reason=p.unpublished_reason,
            sales=p.sales_count,
        )
        for p, email in rows
    ]


def _product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.status == ProductStatus.DELETED.value:
        raise NotFound("This product does not exist.")
    return product


def _tell_seller(session: Session, actor: UserPublic, product: Product, action: str, detail: str) -> None:
    """Log the action and queue the seller's e-mail about it (rendered from the logged row)."""
    row = AdminAction(actor_id=actor.id, action=action, target=f"product:{product.id}", detail=detail[:1000])
    session.add(row)
    session.flush()
    receipts.queue_product_notice(session=session, action=row, product=product)


def unpublish_product(
    *, session: Session, actor: UserPublic, product_id: int, reason: str
) -> UnpublishedProduct:
    """Take a product off the store with a reason its seller sees (on the product and by e-mail).

    It is held down (status ``removed``): its seller's "Publish" is refused until an admin restores
    it (``restore_product``). Buyers keep their downloads. Removing it again changes the reason."""
    require_admin(actor)
    reason = one_line(" ".join(reason.split()), "The reason")
    if not reason:
        raise DomainError("Give a reason: the seller sees it.")
    if len(reason) > MAX_REASON:
        raise DomainError(f"Keep the reason under {MAX_REASON} characters.")
    product = _product(session, product_id)
    now = utcnow()
    product.status = ProductStatus.REMOVED.value
    product.unpublished_reason = reason
    product.removed_by_id, product.removed_at, product.updated_at = actor.id, now, now
    session.add(product)
    _tell_seller(session, actor, product, "product.unpublish", reason)
    return UnpublishedProduct(id=_id(product.id), status=product.status, reason=product.unpublished_reason)


def restore_product(*, session: Session, actor: UserPublic, product_id: int) -> UnpublishedProduct:
    """Lift an admin's removal: the product becomes unpublished (not live), so its seller can
    publish it again, with the usual checks; the seller is told by e-mail."""
    require_admin(actor)
    product = _product(session, product_id)
    if product.status != ProductStatus.REMOVED.value:
        raise DomainError("Only a product an admin took down can be restored.")
    product.status = ProductStatus.UNPUBLISHED.value
    product.unpublished_reason = ""
    product.removed_by_id, product.removed_at, product.updated_at = None, None, utcnow()
    session.add(product)
    _tell_seller(session, actor, product, "product.restore", "")
    return UnpublishedProduct(id=_id(product.id), status=product.status, reason="")


# --- orders -------------------------------------------------------------------------


def search_orders(
    *, session: Session, actor: UserPublic, query: str = "", limit: int = LIST_LIMIT
) -> list[OrderRow]:
    """Orders by buyer e-mail (part of it), order id ("12" or "#12"), Stripe session or payment intent id."""
    require_admin(actor)
    stmt = select(Order, User.email).join(User, col(User.id) == Order.buyer_id)
    q = query.strip()
    if q.lstrip("#").isdigit():
        stmt = stmt.where(Order.id == int(q.lstrip("#")))
    elif q.startswith("cs_"):
        stmt = stmt.where(Order.stripe_session_id == q)
    elif q.startswith("pi_"):
        stmt = stmt.where(Order.stripe_payment_intent_id == q)
    elif q:
        stmt = stmt.where(col(User.email).like(_like(q.lower()), escape="\\"))
    rows = session.exec(stmt.order_by(col(Order.id).desc()).limit(min(limit, 200))).all()
    return [_order_row(order, email) for order, email in rows]


def _order_row(order: Order, email: str) -> OrderRow:
    return OrderRow(
        id=_id(order.id),
        buyer=email,
        status=order.status,
        total=format_amount(order.total_cents, order.currency),
        refunded=format_amount(order.refunded_cents, order.currency) if order.refunded_cents else "",
        session=order.stripe_session_id,
        created=_when(order.created_at),
    )


def order_detail(*, session: Session, actor: UserPublic, order_id: int) -> OrderDetail:
    """An order with its items, amounts, refunds and the webhook events that mention it."""
    require_admin(actor)
    row = session.exec(
        select(Order, User.email).join(User, col(User.id) == Order.buyer_id).where(col(Order.id) == order_id)
    ).first()
    if row is None:
        raise NotFound("This order does not exist.")
    order, email = row
    items = session.exec(select(OrderItem).where(OrderItem.order_id == order_id)).all()
    money = order.currency
    head = OrderHead(
        **_order_row(order, email),
        currency=money,
        subtotal=format_amount(order.subtotal_cents, money),
        discount=format_amount(order.discount_cents, money) if order.discount_cents else "",
        promo_code=order.promo_code,
        payment_intent=order.stripe_payment_intent_id or "",
        paid_at=_when(order.paid_at),
        refundable_cents=max(order.total_cents - order.refunded_cents, 0),
    )
    item_rows = [
        OrderItemRow(
            product_id=i.product_id,
            title=i.title,
            quantity=i.quantity,
            price=format_amount(i.unit_price_cents, money),
            discount=format_amount(i.discount_cents, money) if i.discount_cents else "",
            total=format_amount(i.total_cents, money),
        )
        for i in items
    ]
    needles = [order.stripe_session_id] + (
        [order.stripe_payment_intent_id] if order.stripe_payment_intent_id else []
    )
    events = session.exec(
        select(WebhookEvent)
        .where(or_(*[col(WebhookEvent.payload).contains(n) for n in needles]))
        .order_by(col(WebhookEvent.id))
        .limit(50)
    ).all()
    return OrderDetail(
        order=head,
        items=item_rows,
        events=[_event_row(e) for e in events],
        refunds=_refunds(session, order_id),
    )


def _refunds(session: Session, order_id: int) -> list[RefundRow]:
    try:
        from quantoxbay.models import Refund  # the post-purchase helper's table
    except ImportError:  # pragma: no cover - until it lands
        return []
    rows = session.exec(select(Refund).where(col(Refund.order_id) == order_id).order_by(col(Refund.id))).all()
    return [
        RefundRow(
            amount=format_amount(r.amount_cents, r.currency),
            status=r.status,
            reason=r.reason.replace("_", " "),
            created=_when(r.created_at),
        )
        for r in rows
    ]


def refund_order(
    *,
    session: Session,
    actor: UserPublic,
    gateway: StripeGateway,
    order_id: int,
    amount_cents: int | None,
    reason: str,
) -> tuple[str, list[Announcement]]:
    """Refund through services.refunds (which talks to Stripe); logged. Returns what to tell the
    admin ("Refunded $2.00 of order #16.") and the announcements."""
    require_admin(actor)
    from quantoxbay.services import refunds  # imported here: written beside this module

    refund, announcements = refunds.refund_order(
        session=session,
        gateway=gateway,
        actor=actor,
        order_id=order_id,
        amount_cents=amount_cents,
        reason=reason,
    )
    amount = format_amount(refund.amount_cents, refund.currency)
    _log(session, actor, "order.refund", f"order:{order_id}", f"{amount} ({reason.replace('_', ' ')})")
    session.flush()
    assert refund.id is not None
    return refunds.refund_notice(session=session, refund_id=refund.id), list(announcements)


# --- webhook events -----------------------------------------------------------------


def _event_row(e: WebhookEvent) -> EventRow:
    return EventRow(
        id=_id(e.id),
        event_id=e.stripe_event_id,
        type=e.type,
        received=_when(e.received_at),
        processed=_when(e.processed_at),
        outcome=e.outcome,
        # Why fulfilment refused the event's Checkout Session (outcome "rejected" or "ignored").
        reason=e.reason,
        error=(e.error.strip().splitlines() or [""])[-1][:300],
    )


def list_webhook_events(
    *, session: Session, actor: UserPublic, query: str = "", outcome: str = "", limit: int = LIST_LIMIT
) -> list[EventRow]:
    """Received events, newest first; filter by event id / type (part of it) and outcome
    (``"rejected"``: the Checkout Sessions fulfilment refused, each with its reason)."""
    require_admin(actor)
    stmt = select(WebhookEvent)
    q = query.strip()
    if q:
        pattern = _like(q)
        stmt = stmt.where(
            or_(
                col(WebhookEvent.stripe_event_id).like(pattern, escape="\\"),
                col(WebhookEvent.type).like(pattern, escape="\\"),
                col(WebhookEvent.outcome) == q.lower(),  # "rejected": the refused sessions
            )
        )
    if outcome:
        stmt = stmt.where(WebhookEvent.outcome == outcome)
    rows = session.exec(stmt.order_by(col(WebhookEvent.id).desc()).limit(min(limit, 200))).all()
    return [_event_row(e) for e in rows]


def resend_webhook_event(
    *, session: Session, actor: UserPublic, event_row_id: int
) -> tuple[str, list[Announcement]]:
    """Run a stored event through the webhook handler again (``process_event``), as Stripe would.

    ``process_event`` skips an event already marked processed or ignored (that dedupe is
    what keeps Stripe's at-least-once deliveries harmless), so the outcome is reset first,
    in this same transaction: if the handler fails, the rollback restores the old outcome
    and the caller records the failure (``record_resend_failure``). Re-running is safe
    because every handler is idempotent: fulfilment makes one order per Checkout Session,
    refunds take the charge's running total, disputes set a state.
    """
    require_admin(actor)
    row = session.get(WebhookEvent, event_row_id)
    if row is None:
        raise NotFound("This event does not exist.")
    try:
        event = json.loads(row.payload)
        assert isinstance(event, dict) and event.get("id") == row.stripe_event_id
    except (ValueError, AssertionError) as exc:
        raise DomainError("This event has no stored payload to send again.") from exc
    row.outcome = "resending"
    session.add(row)
    session.flush()
    result = webhook_events.process_event(session=session, event=event, raw=row.payload)
    _log(
        session,
        actor,
        "webhook.resend",
        f"webhook_event:{row.id}",
        f"{row.stripe_event_id} -> {result.outcome}",
    )
    session.flush()
    return result.outcome, list(result.announcements)


def record_resend_failure(
    *, session: Session, actor: UserPublic, event_row_id: int, error: BaseException
) -> None:
    """Keep the traceback of a failed resend on the event row (a separate transaction)."""
    require_admin(actor)
    row = session.get(WebhookEvent, event_row_id)
    if row is None:
        return
    webhook_events.record_failure(
        session=session, event={"id": row.stripe_event_id, "type": row.type}, raw=row.payload, error=error
    )
    _log(session, actor, "webhook.resend", f"webhook_event:{row.id}", f"{row.stripe_event_id} -> failed")


def recent_actions(*, session: Session, actor: UserPublic, limit: int = 20) -> list[ActionRow]:
    require_admin(actor)
    rows = session.exec(
        select(AdminAction, User.email)
        .join(User, col(User.id) == AdminAction.actor_id)
        .order_by(col(AdminAction.id).desc())
        .limit(limit)
    ).all()
    return [
        ActionRow(when=_when(a.created_at), who=email, action=a.action, target=a.target, detail=a.detail)
        for a, email in rows
    ]
