"""The platform's fee, in integer cents, and what checkout asks Stripe for with it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import Session, select

from quantoxbay.models import CheckoutRecord, Promotion, Role
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import checkout, connect
from quantoxbay.services.fees import NO_FEES, FeeSchedule, proportional_cents
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user
from tests.unit.test_fulfillment import FakeClient

TEN_PERCENT = FeeSchedule(1000, 0)


@pytest.mark.parametrize(
    ("schedule", "paid", "fee"),
    [
        (TEN_PERCENT, 1000, 100),
        (TEN_PERCENT, 999, 100),  # 99.9 rounds to 100
        (TEN_PERCENT, 994, 99),  # 99.4 rounds to 99
        (TEN_PERCENT, 995, 100),  # 99.5: half a cent rounds up
        (TEN_PERCENT, 5, 1),  # 0.5 rounds up
        (TEN_PERCENT, 4, 0),
        (TEN_PERCENT, 0, 0),  # a 100%-off sale: no charge, no fee
        (TEN_PERCENT, 50, 5),  # Stripe's minimum charge
        (FeeSchedule(290, 30), 1234, 66),  # 35.786 -> 36, plus 30
        (FeeSchedule(0, 30), 2000, 30),
        (FeeSchedule(1000, 60), 50, 50),  # never more than the buyer paid
        (FeeSchedule(10_000, 0), 700, 700),
        (NO_FEES, 1999, 0),
    ],
)
def test_the_fee_is_a_percentage_of_what_was_paid_plus_a_fixed_part(
    schedule: FeeSchedule, paid: int, fee: int
) -> None:
    assert schedule.fee_cents(paid) == fee
    assert schedule.seller_share_cents(paid) == paid - fee >= 0


@pytest.mark.parametrize("schedule", [(-1, 0), (10_001, 0), (1000, -1)])
def test_a_fee_schedule_out_of_range_is_refused(schedule: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="invalid fee schedule"):
        FeeSchedule(*schedule)


def test_a_negative_sale_is_refused() -> None:
    with pytest.raises(ValueError):
        TEN_PERCENT.fee_cents(-1)


@pytest.mark.parametrize(
    ("part", "of", "whole", "share"),
    [(500, 200, 2000, 50), (1, 100, 1000, 0), (5, 100, 1000, 1), (2000, 1800, 2000, 1800), (3, 7, 0, 0)],
)
def test_proportional_shares_round_half_up(part: int, of: int, whole: int, share: int) -> None:
    assert proportional_cents(part, of, whole) == share


# --- what checkout asks Stripe for -------------------------------------------------------


@pytest.fixture
def sale(db: Session, storage):  # type: ignore[no-untyped-def]
    seller = create_user(db, Role.SELLER)
    buyer = create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, price_cents=2599)
    account = connect.seller_account(session=db, seller_id=seller.id)
    assert account is not None
    return seller, buyer, product, account


def _start(db: Session, client: FakeClient, buyer_id: int, product_id: int, **kw: Any) -> dict[str, Any]:
    checkout.start_checkout(
        session=db,
        gateway=StripeGateway(client),  # type: ignore[arg-type]
        settings=kw.pop("settings", get_settings()),
        buyer_id=buyer_id,
        product_id=product_id,
        public_url="http://shop.test",
        now=1_000_000.0,
        **kw,
    )
    return client.sessions.calls[-1][0]


def test_each_session_is_a_destination_charge_with_the_platform_fee(db: Session, sale) -> None:  # type: ignore[no-untyped-def]
    _, buyer, product, account = sale
    params = _start(db, FakeClient(), buyer.id, product.id)
    intent = params["payment_intent_data"]
    assert intent["transfer_data"] == {"destination": account.stripe_account_id}
    assert intent["application_fee_amount"] == 260  # 10% of 25.99, rounded half up
    assert intent["transfer_group"].startswith("qb-") and intent["metadata"] == params["metadata"]
    record = db.exec(select(CheckoutRecord)).one()
    assert (record.seller_account_id, record.application_fee_cents) == (account.stripe_account_id, 260)
    assert (record.fee_basis_points, record.fee_fixed_cents, record.transfer_group) == (
        1000,
        0,
        intent["transfer_group"],
    )


def test_the_fee_settings_in_force_are_used_and_kept_with_the_session(db: Session, sale) -> None:  # type: ignore[no-untyped-def]
    _, buyer, product, _ = sale
    settings = get_settings().model_copy(update={"platform_fee_percent": 2.5, "platform_fee_fixed_cents": 30})
    params = _start(db, FakeClient(), buyer.id, product.id, settings=settings)
    assert params["payment_intent_data"]["application_fee_amount"] == 65 + 30  # 64.975 -> 65, plus 30
    record = db.exec(select(CheckoutRecord)).one()
    assert (record.fee_basis_points, record.fee_fixed_cents) == (250, 30)


def _promotion(db: Session, seller_id: int, code: str, **discount: Any) -> Promotion:
    promo = Promotion(seller_id=seller_id, code=code, code_lower=code.lower(), stripe_coupon_id=f"co_{code}",
                      stripe_promotion_code_id=f"promo_{code}", stripe_code=code, **discount)  # fmt: skip
    db.add(promo)
    db.flush()
    return promo


def test_a_code_given_on_the_product_page_sets_the_fee_on_the_discounted_price(db: Session, sale) -> None:  # type: ignore[no-untyped-def]
    seller, buyer, product, _ = sale
    _promotion(db, seller.id, "QUARTER", percent_off=25)
    client = FakeClient()
    client.v1.promotion_codes = SimpleNamespace(retrieve=lambda *_a, **_k: None)  # type: ignore[attr-defined]
    params = _start(db, client, buyer.id, product.id, promo_code="QUARTER")
    # 2599 less 25% (650) = 1949; 10% of that is 194.9 -> 195.
    assert params["payment_intent_data"]["application_fee_amount"] == 195
    assert (
        params["discounts"] == [{"promotion_code": "promo_QUARTER"}] and "allow_promotion_codes" not in params
    )


def test_the_hosted_code_field_stays_off_when_a_code_could_leave_less_than_the_fee(db: Session, sale) -> None:  # type: ignore[no-untyped-def]
    seller, buyer, product, _ = sale
    assert _start(db, FakeClient(), buyer.id, product.id)["allow_promotion_codes"] is True
    _promotion(db, seller.id, "ALLBUTONE", percent_off=95)  # 2599 -> 130, below the 260 fee
    params = _start(db, FakeClient(), buyer.id, product.id)
    assert "allow_promotion_codes" not in params
    # A 100%-off code makes no charge at all: it keeps nothing off.
    promo = db.exec(select(Promotion).where(Promotion.code == "ALLBUTONE")).one()
    promo.percent_off = 100
    db.add(promo)
    db.flush()
    assert _start(db, FakeClient(), buyer.id, product.id)["allow_promotion_codes"] is True


def test_no_destination_no_checkout(db: Session, storage) -> None:  # type: ignore[no-untyped-def]
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, price_cents=900)
    account = connect.seller_account(session=db, seller_id=seller.id)
    assert account is not None
    db.delete(account)
    db.flush()
    client = FakeClient()
    with pytest.raises(checkout.DomainError, match="Set up payouts"):
        _start(db, client, buyer.id, product.id)  # type: ignore[arg-type]
    assert client.sessions.calls == []
