"""The admin's "Platform fees": what the platform kept per period and currency, the fee in force,
and each seller's payout status with the accounts that need action first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session

from quantoxbay.models import OrderStatus, Role, SellerAccount
from quantoxbay.services import PermissionDenied, admin, connect
from quantoxbay.services.accounts import UserPublic
from quantoxbay.settings import Settings
from tests.factories import create_connect_order, create_user

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def _settings(percent: str = "10", fixed: int = 0) -> Settings:
    return Settings(platform_fee_percent=Decimal(percent), platform_fee_fixed_cents=fixed)


def _by(totals: list[admin.FeeTotalRow]) -> dict[tuple[str, str], tuple[str, int]]:
    return {(t["period"], t["currency"]): (t["fees"], t["orders"]) for t in totals}


@pytest.fixture
def people(db: Session) -> dict[str, UserPublic]:
    return {
        "admin": create_user(db, Role.ADMIN),
        "seller": create_user(db, Role.SELLER),
        "buyer": create_user(db, Role.BUYER),
    }


@pytest.mark.parametrize(
    ("percent", "fixed", "label"),
    [
        ("10", 0, "10% + $0.00 per sale"),
        ("2.90", 30, "2.9% + $0.30 per sale"),
        ("0", 0, "0% + $0.00 per sale"),
    ],
)
def test_the_fee_in_force_in_words(percent: str, fixed: int, label: str) -> None:
    assert admin.fee_schedule_label(_settings(percent, fixed)) == label


def test_fees_kept_per_period_and_currency(db: Session, people: dict) -> None:
    seller, buyer = people["seller"], people["buyer"]
    order = create_connect_order
    order(db, seller, buyer, total=1000, fee=100, paid_at=NOW - timedelta(hours=1))  # today
    # 3 days ago, half refunded: half of the fee went back to the seller's buyer.
    order(
        db,
        seller,
        buyer,
        total=2000,
        fee=200,
        fee_refunded_cents=100,
        refunded_cents=1000,
        status=OrderStatus.PARTIALLY_REFUNDED,
        paid_at=NOW - timedelta(days=3),
    )
    order(db, seller, buyer, total=5000, fee=500, paid_at=NOW - timedelta(days=45))  # 90 days only
    order(db, seller, buyer, total=900, fee=90, currency="eur", paid_at=NOW - timedelta(days=200))  # all time
    order(db, seller, buyer, total=700, fee=70, status=OrderStatus.PENDING, paid_at=NOW)  # never counts
    order(db, seller, buyer, total=400, account=None, paid_at=NOW)  # before Connect: no fee

    totals = admin.platform_fee_totals(session=db, now=NOW)
    assert [t["currency"] for t in totals[:2]] == ["USD", "EUR"]  # the busiest currency first
    assert _by(totals) == {
        ("today", "USD"): ("$1.00", 2),
        ("7d", "USD"): ("$2.00", 3),
        ("30d", "USD"): ("$2.00", 3),
        ("90d", "USD"): ("$7.00", 4),
        ("all", "USD"): ("$7.00", 4),
        ("today", "EUR"): ("€0.00", 0),
        ("7d", "EUR"): ("€0.00", 0),
        ("30d", "EUR"): ("€0.00", 0),
        ("90d", "EUR"): ("€0.00", 0),
        ("all", "EUR"): ("€0.90", 1),
    }
    assert [t["label"] for t in totals if t["currency"] == "USD"] == [
        "Today",
        "Last 7 days",
        "Last 30 days",
        "Last 90 days",
        "All time",
    ]


def test_no_sales_yet_shows_zero_fees(db: Session) -> None:
    totals = admin.platform_fee_totals(session=db, now=NOW)
    assert {(t["period"], t["fees"], t["orders"]) for t in totals} == {
        (p, "$0.00", 0) for p in ("today", "7d", "30d", "90d", "all")
    }


def _account(db: Session, seller: UserPublic, **flags: Any) -> None:
    db.add(SellerAccount(user_id=seller.id, stripe_account_id=f"acct_{uuid.uuid4().hex[:12]}", **flags))
    db.flush()


def test_sellers_payout_status_with_those_needing_action_first(db: Session, people: dict) -> None:
    enabled = create_user(db, Role.SELLER, email="a-enabled@example.com")
    _account(db, enabled, details_submitted=True, charges_enabled=True, payouts_enabled=True)
    stuck = create_user(db, Role.SELLER, email="z-stuck@example.com")
    _account(db, stuck, details_submitted=True, charges_enabled=True, requirements_due="external_account")
    paused = create_user(db, Role.SELLER, email="y-paused@example.com")
    _account(db, paused, details_submitted=True, disabled_reason="rejected.fraud")  # Stripe stopped it

    rows = admin.seller_payout_statuses(session=db)
    assert [(r["email"], r["status"]) for r in rows][:2] == [
        ("y-paused@example.com", connect.ACTION_REQUIRED),
        ("z-stuck@example.com", connect.ACTION_REQUIRED),
    ]
    statuses = {r["email"]: r["status"] for r in rows}
    assert statuses[people["seller"].email] == connect.NOT_SET_UP
    assert statuses["a-enabled@example.com"] == connect.PAYOUTS_ENABLED
    assert people["buyer"].email not in statuses and people["admin"].email not in statuses
    order = [r["status"] for r in rows]
    assert order == sorted(
        order, key=[connect.ACTION_REQUIRED, connect.NOT_SET_UP, connect.PAYOUTS_ENABLED].index
    )
    assert rows[1]["needs"] == "External account"
    assert "paused" in rows[0]["needs"]


def test_the_section_is_for_admins_only(db: Session, people: dict) -> None:
    section = admin.platform_fees(session=db, actor=people["admin"], settings=_settings(), now=NOW)
    assert section["schedule"] == "10% + $0.00 per sale" and section["totals"] and section["sellers"]
    with pytest.raises(PermissionDenied):
        admin.platform_fees(session=db, actor=people["seller"], settings=_settings(), now=NOW)
