"""The seller's money page (`/seller/payouts`): account status, Stripe balances, payouts, and what
each recent sale left the seller.

What the shop knows (the account's flags, the order's money columns) comes from the database;
balances and payouts live at Stripe only and are read from the seller's connected account on each
visit (``Stripe-Account``). Stripe being unreachable does not hide the rest: the page keeps the
status and the orders and says the balances are unavailable.

A sale is a destination charge: the seller's share of it (``Order.seller_share_cents``: what the
buyer paid less the platform fee) is transferred to the seller's account; a refund or a dispute
takes part of it back (``transfer_reversed_cents``), a won dispute gives it back
(``transfer_returned_cents``). So the seller's net of an order is
``seller_share - reversed + returned``; orders paid before the seller had an account were not
destination charges and have no net to show.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlalchemy import func
from sqlmodel import Session, col, select

from quantoxbay.models import Order, OrderItem
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import PaymentError, PaymentsUnavailable, connect, ledger
from quantoxbay.services.analytics import COUNTED_STATUSES
from quantoxbay.services.money import format_amount

logger = logging.getLogger(__name__)

#: The currency zero balances are shown in before Stripe knows of any (accounts open in the US).
DEFAULT_CURRENCY = "usd"
RECENT_ORDERS = 20
RECENT_PAYOUTS = 10

BALANCES_UNAVAILABLE = (
    "Balances and payouts are unavailable right now: Stripe could not be reached. Try again in a moment."
)
#: Shown while the seller's account cannot take charges (checkout and publish refuse priced sales).
PUBLISH_NOTE = "Priced products can be published once payouts are set up."
NOT_PAID_OUT = "—"  # an order paid before payouts existed: there is no transfer to show


class StatusView(TypedDict):
    label: str  # connect.PayoutStatus.label: "Payouts enabled" | "Action required" | "Not set up"
    needs: list[str]  # what Stripe still asks for, in words
    has_account: bool
    charges_enabled: bool
    payouts_enabled: bool
    can_open_dashboard: bool  # Stripe makes dashboard links once the onboarding form was submitted


class BalanceRow(TypedDict):
    currency: str  # "USD"
    available_cents: int
    pending_cents: int
    available: str  # "$12.50"
    pending: str


class PayoutRow(TypedDict):
    id: str
    amount_cents: int
    currency: str
    amount: str
    status: str  # Stripe's word, readable: "paid", "in transit", "failed"...
    arrival_date: str  # YYYY-MM-DD (UTC)


class PayoutOrderRow(TypedDict):
    order_id: int
    title: str
    status: str
    paid_at: str
    currency: str
    gross_cents: int  # what the buyer paid, after the discount
    discount_cents: int
    platform_fee_cents: int  # the platform's fee, less what a refund gave back
    refunded_cents: int  # refunded to the buyer
    reversed_cents: int  # taken back from the seller, less what a won dispute returned
    net_cents: int  # seller_share - reversed + returned
    paid_out: bool  # a destination charge to the seller's account (else no fee nor net)
    gross: str
    discount: str
    platform_fee: str
    refunded: str
    reversed: str
    net: str


@dataclass(frozen=True)
class PayoutsPage:
    status: StatusView
    balances: list[BalanceRow]
    payouts: list[PayoutRow]
    orders: list[PayoutOrderRow]
    #: Why balances and payouts are missing ("" when they were read, or when there is no account).
    balances_note: str


def status_view(status: connect.PayoutStatus) -> StatusView:
    return StatusView(
        label=status.label,
        needs=status.needs,
        has_account=status.has_account,
        charges_enabled=status.charges_enabled,
        payouts_enabled=status.payouts_enabled,
        can_open_dashboard=status.details_submitted,
    )


def _as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object (or the plain mapping a test fake hands back) as plain data."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj) if isinstance(obj, Mapping) else {}


def balance_rows(balance: Mapping[str, Any]) -> list[BalanceRow]:
    """Stripe's ``available[]`` and ``pending[]`` per currency, in integer cents, the default
    currency first. A negative amount (refunds larger than the balance) is shown as it is."""
    sums: dict[str, list[int]] = {}
    for index, key in enumerate(("available", "pending")):
        for entry in balance.get(key) or []:
            currency = str(entry.get("currency") or DEFAULT_CURRENCY).lower()
            sums.setdefault(currency, [0, 0])[index] += int(entry.get("amount") or 0)
    if not sums:
        sums[DEFAULT_CURRENCY] = [0, 0]
    ordered = sorted(sums, key=lambda c: (c != DEFAULT_CURRENCY, c))
    return [_balance_row(c, *sums[c]) for c in ordered]


def _balance_row(currency: str, available: int, pending: int) -> BalanceRow:
    return BalanceRow(
        currency=currency.upper(),
        available_cents=available,
        pending_cents=pending,
        available=format_amount(available, currency),
        pending=format_amount(pending, currency),
    )


def _date(unix: Any) -> str:
    return datetime.fromtimestamp(int(unix), UTC).strftime("%Y-%m-%d") if unix else ""


def payout_rows(payouts: list[Any]) -> list[PayoutRow]:
    rows = []
    for raw in payouts:
        p = _as_dict(raw)
        currency = str(p.get("currency") or DEFAULT_CURRENCY).lower()
        amount = int(p.get("amount") or 0)
        rows.append(
            PayoutRow(
                id=str(p.get("id") or ""),
                amount_cents=amount,
                currency=currency.upper(),
                amount=format_amount(amount, currency),
                status=str(p.get("status") or "").replace("_", " "),
                arrival_date=_date(p.get("arrival_date")),
            )
        )
    return rows


def _order_row(order: Order, title: str) -> PayoutOrderRow:
    paid_out = bool(order.seller_account_id)
    fee = ledger.platform_fee_kept_cents(order)
    reversed_ = order.transfer_reversed_cents - order.transfer_returned_cents
    net = ledger.seller_net_cents(order)
    when = order.paid_at or order.created_at
    cur = order.currency

    def shown(cents: int) -> str:
        return format_amount(cents, cur) if paid_out else NOT_PAID_OUT

    assert order.id is not None
    return PayoutOrderRow(
        order_id=order.id,
        title=title,
        status=order.status.replace("_", " "),
        paid_at=when.strftime("%Y-%m-%d %H:%M UTC") if when else "",
        currency=cur.upper(),
        gross_cents=order.total_cents,
        discount_cents=order.discount_cents,
        platform_fee_cents=fee if paid_out else 0,
        refunded_cents=order.refunded_cents,
        reversed_cents=reversed_ if paid_out else 0,
        net_cents=net if paid_out else 0,
        paid_out=paid_out,
        gross=format_amount(order.total_cents, cur),
        discount=format_amount(order.discount_cents, cur),
        platform_fee=shown(fee),
        refunded=format_amount(order.refunded_cents, cur),
        reversed=shown(reversed_),
        net=shown(net),
    )


def recent_orders(*, session: Session, seller_id: int, limit: int = RECENT_ORDERS) -> list[PayoutOrderRow]:
    """The seller's newest paid orders (refunded and disputed ones included), with their money."""
    of_seller = select(OrderItem.order_id).where(OrderItem.seller_id == seller_id)
    orders = session.exec(
        select(Order)
        .where(col(Order.id).in_(of_seller), col(Order.status).in_(COUNTED_STATUSES))
        .order_by(func.coalesce(Order.paid_at, Order.created_at).desc(), col(Order.id).desc())
        .limit(limit)
    ).all()
    titles: dict[int, list[str]] = {}
    if orders:
        for order_id, title in session.exec(
            select(OrderItem.order_id, OrderItem.title)
            .where(col(OrderItem.order_id).in_([o.id for o in orders]), OrderItem.seller_id == seller_id)
            .order_by(col(OrderItem.id))
        ).all():
            titles.setdefault(order_id, []).append(title)
    return [_order_row(o, ", ".join(titles.get(o.id or 0, []))) for o in orders]


def seller_payouts(
    *,
    session: Session,
    gateway: StripeGateway,
    seller_id: int,
    order_limit: int = RECENT_ORDERS,
    payout_limit: int = RECENT_PAYOUTS,
) -> PayoutsPage:
    """Everything `/seller/payouts` shows. Without an account: zero balances, no Stripe call."""
    status = connect.payout_status(session=session, seller_id=seller_id)
    orders = recent_orders(session=session, seller_id=seller_id, limit=order_limit)
    if not status.has_account:
        return PayoutsPage(status_view(status), balance_rows({}), [], orders, "")
    account = status.stripe_account_id
    try:
        balances = balance_rows(_as_dict(gateway.retrieve_balance(account)))
        payouts = payout_rows(gateway.list_payouts(account, limit=payout_limit))
    except PaymentError as exc:
        # The page stays useful: status and orders come from the database.
        logger.warning(
            "payouts.balance_unavailable",
            extra={"seller_id": seller_id, "account": account, "error": str(exc)},
        )
        note = BALANCES_UNAVAILABLE if isinstance(exc, PaymentsUnavailable) else str(exc)
        return PayoutsPage(status_view(status), [], [], orders, note)
    return PayoutsPage(status_view(status), balances, payouts, orders, "")
