"""The seller's money page: status from the database, balances and payouts from the seller's
connected account (a fake gateway here), and each recent sale's fee and net from the order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from quantoxbay.models import OrderStatus, Role, SellerAccount
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import PaymentRefused, PaymentsUnavailable, connect, payouts
from quantoxbay.services.accounts import UserPublic
from tests.factories import create_connect_order, create_user

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _unix(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, 9, 30, tzinfo=UTC).timestamp())


class FakeGateway:
    """What ``StripeGateway`` answers for a connected account's money; records the accounts asked."""

    def __init__(self, *, balance: Any = None, payouts: Any = (), error: Exception | None = None) -> None:
        self.balance = balance if balance is not None else {"available": [], "pending": []}
        self.payouts = list(payouts)
        self.error = error
        self.calls: list[tuple[str, str]] = []

    def retrieve_balance(self, account: str) -> Any:
        self.calls.append(("retrieve_balance", account))
        if self.error:
            raise self.error
        return self.balance

    def list_payouts(self, account: str, *, limit: int = 20) -> list[Any]:
        self.calls.append(("list_payouts", account))
        return self.payouts[:limit]


def _gateway(fake: FakeGateway) -> StripeGateway:
    return fake  # type: ignore[return-value]  # duck-typed: only the two reads are used


def _account(db: Session, seller: UserPublic, **flags: Any) -> SellerAccount:
    account = SellerAccount(user_id=seller.id, stripe_account_id=f"acct_{uuid.uuid4().hex[:16]}", **flags)
    db.add(account)
    db.flush()
    return account


@pytest.fixture
def people(db: Session) -> dict[str, UserPublic]:
    return {
        "seller": create_user(db, Role.SELLER),
        "other": create_user(db, Role.SELLER),
        "buyer": create_user(db, Role.BUYER),
    }


def test_without_an_account_the_page_shows_zeros_and_asks_stripe_nothing(db: Session, people: dict) -> None:
    fake = FakeGateway()
    page = payouts.seller_payouts(session=db, gateway=_gateway(fake), seller_id=people["seller"].id)
    assert fake.calls == []
    assert page.status["label"] == connect.NOT_SET_UP and page.status["has_account"] is False
    assert page.status["can_open_dashboard"] is False and page.status["needs"] == []
    assert [(b["currency"], b["available"], b["pending"]) for b in page.balances] == [
        ("USD", "$0.00", "$0.00")
    ]
    assert page.payouts == [] and page.orders == [] and page.balances_note == ""


def test_balances_per_currency_and_the_newest_payouts_come_from_the_sellers_account(
    db: Session, people: dict
) -> None:
    account = _account(
        db, people["seller"], details_submitted=True, charges_enabled=True, payouts_enabled=True
    )
    fake = FakeGateway(
        balance={
            "available": [{"amount": 1250, "currency": "usd"}, {"amount": 300, "currency": "eur"}],
            "pending": [{"amount": 4200, "currency": "usd"}, {"amount": -50, "currency": "eur"}],
        },
        payouts=[
            {
                "id": "po_2",
                "amount": 1100,
                "currency": "usd",
                "status": "in_transit",
                "arrival_date": _unix(2026, 11, 19),
            },
            {
                "id": "po_1",
                "amount": 900,
                "currency": "usd",
                "status": "paid",
                "arrival_date": _unix(2026, 11, 8),
            },
        ],
    )
    page = payouts.seller_payouts(session=db, gateway=_gateway(fake), seller_id=people["seller"].id)
    assert fake.calls == [
        ("retrieve_balance", account.stripe_account_id),
        ("list_payouts", account.stripe_account_id),
    ]
    assert page.status["label"] == connect.PAYOUTS_ENABLED and page.status["can_open_dashboard"]
    assert [(b["currency"], b["available_cents"], b["pending_cents"]) for b in page.balances] == [
        ("USD", 1250, 4200),
        ("EUR", 300, -50),
    ]
    assert (page.balances[0]["available"], page.balances[1]["pending"]) == ("$12.50", "-€0.50")
    assert [(p["id"], p["amount"], p["status"], p["arrival_date"]) for p in page.payouts] == [
        ("po_2", "$11.00", "in transit", "2026-11-19"),
        ("po_1", "$9.00", "paid", "2026-11-08"),
    ]


def test_the_payouts_shown_are_capped(db: Session, people: dict) -> None:
    _account(db, people["seller"])
    many = [{"id": f"po_{i}", "amount": i, "currency": "usd", "status": "paid"} for i in range(30)]
    page = payouts.seller_payouts(
        session=db, gateway=_gateway(FakeGateway(payouts=many)), seller_id=people["seller"].id, payout_limit=3
    )
    assert [p["id"] for p in page.payouts] == ["po_0", "po_1", "po_2"]


def test_stripe_unreachable_keeps_the_status_and_orders_and_says_why(db: Session, people: dict) -> None:
    seller, buyer = people["seller"], people["buyer"]
    _account(db, seller, details_submitted=True, requirements_due="individual.verification.document")
    create_connect_order(db, seller, buyer)
    fake = FakeGateway(error=PaymentsUnavailable("Payments are unavailable right now."))
    page = payouts.seller_payouts(session=db, gateway=_gateway(fake), seller_id=seller.id)
    assert page.balances == [] and page.payouts == []
    assert page.balances_note == payouts.BALANCES_UNAVAILABLE
    assert page.status["label"] == connect.ACTION_REQUIRED
    assert page.status["needs"] == ["Individual verification document"]
    assert [o["net"] for o in page.orders] == ["$9.00"]


def test_a_refusal_from_stripe_is_shown_as_stripe_said_it(db: Session, people: dict) -> None:
    _account(db, people["seller"])
    fake = FakeGateway(error=PaymentRefused("No such account"))
    page = payouts.seller_payouts(session=db, gateway=_gateway(fake), seller_id=people["seller"].id)
    assert page.balances == [] and "No such account" in page.balances_note


def test_each_order_shows_fee_refund_reversal_and_the_sellers_net(db: Session, people: dict) -> None:
    seller, buyer = people["seller"], people["buyer"]
    # $10 paid after a $2 discount, 10% fee; $4 refunded: 40 cents of fee back, $3.60 reversed.
    refunded = create_connect_order(
        db,
        seller,
        buyer,
        total=1000,
        fee=100,
        discount_cents=200,
        refunded_cents=400,
        fee_refunded_cents=40,
        transfer_reversed_cents=360,
        status=OrderStatus.PARTIALLY_REFUNDED,
        paid_at=T0,
    )
    # A dispute took the whole share back, then the won dispute returned it.
    won = create_connect_order(
        db,
        seller,
        buyer,
        total=2000,
        fee=200,
        transfer_reversed_cents=1800,
        transfer_returned_cents=1800,
        paid_at=T0 + timedelta(hours=1),
    )
    before_payouts = create_connect_order(
        db, seller, buyer, total=500, account=None, paid_at=T0 - timedelta(days=1)
    )
    create_connect_order(db, people["other"], buyer, paid_at=T0 + timedelta(hours=2))  # another seller's sale
    create_connect_order(
        db, seller, buyer, status=OrderStatus.PENDING, paid_at=T0 + timedelta(hours=3)
    )  # not paid

    rows = payouts.recent_orders(session=db, seller_id=seller.id)
    assert [r["order_id"] for r in rows] == [won.id, refunded.id, before_payouts.id]
    first, second, third = rows
    assert (first["platform_fee_cents"], first["reversed_cents"], first["net_cents"]) == (200, 0, 1800)
    assert (
        second["gross"],
        second["discount"],
        second["platform_fee"],
        second["refunded"],
        second["reversed"],
        second["net"],
        second["status"],
    ) == ("$10.00", "$2.00", "$0.60", "$4.00", "$3.60", "$5.40", "partially refunded")
    # What the seller keeps = paid - refunded - the fee the platform kept.
    assert (
        second["net_cents"] == second["gross_cents"] - second["refunded_cents"] - second["platform_fee_cents"]
    )
    assert third["paid_out"] is False and (third["platform_fee"], third["net"]) == ("—", "—")
    assert third["title"] == "Guide" and third["paid_at"] == "2026-11-19 12:00 UTC"


def test_the_orders_shown_are_capped_newest_first(db: Session, people: dict) -> None:
    seller, buyer = people["seller"], people["buyer"]
    made = [create_connect_order(db, seller, buyer, paid_at=T0 + timedelta(minutes=i)) for i in range(4)]
    rows = payouts.recent_orders(session=db, seller_id=seller.id, limit=2)
    assert [r["order_id"] for r in rows] == [made[3].id, made[2].id]
