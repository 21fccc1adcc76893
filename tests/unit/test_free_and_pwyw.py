"""Free products ("Get it free": an order of 0 with a sale's effects, no Stripe) and pay what you
want (the named amount, checked by the server, is what Checkout charges and fulfilment accepts)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from quantoxbay.constants import OFFER_FREE, OFFER_PAID, OFFER_PAY_WHAT_YOU_WANT
from quantoxbay.models import (
    CheckoutRecord,
    DownloadGrant,
    MailOutbox,
    Order,
    OrderItem,
    Product,
    ProductStatus,
    Role,
    SalesRollup,
    User,
)
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import DomainError, NotFound, PermissionDenied, checkout, fulfillment, notifier
from quantoxbay.services.money import MAX_PRICE_CENTS, amount_text
from quantoxbay.services.pricing import NamedPriceRefused, named_price_cents
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user, give_payouts_account
from tests.stripe_payloads import checkout_session
from tests.unit.test_fulfillment import FakeClient


def _pwyw(db: Session, product: Product, minimum_cents: int, currency: str = "usd") -> Product:
    product.pay_what_you_want, product.price_cents, product.currency = True, minimum_cents, currency
    db.add(product)
    db.flush()
    return product


@pytest.fixture
def free(db: Session, storage):  # type: ignore[no-untyped-def]
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, title="Free zine", price_cents=0)
    return seller, buyer, product


# --- free products --------------------------------------------------------------------------


def test_a_free_product_goes_into_the_library_as_a_paid_order_of_zero(db: Session, free) -> None:  # type: ignore[no-untyped-def]
    seller, buyer, product = free
    assert checkout.offer_for(session=db, product_id=product.id).kind == OFFER_FREE
    result = checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=product.id)

    assert result.changed and result.status == "paid" and result.stripe_session_id.startswith("free_")
    order = db.get(Order, result.order_id)
    assert order is not None
    assert (order.status, order.buyer_id, order.currency) == ("paid", buyer.id, "usd")
    assert (order.subtotal_cents, order.discount_cents, order.total_cents) == (0, 0, 0)
    assert order.paid_at is not None and order.stripe_payment_intent_id is None
    # No charge, no Connect money.
    assert (order.seller_account_id, order.transfer_group) == (None, None)
    assert (order.application_fee_cents, order.platform_fee_cents, order.seller_share_cents) == (0, 0, 0)
    [item] = db.exec(select(OrderItem).where(OrderItem.order_id == order.id)).all()
    assert (item.product_id, item.seller_id, item.title, item.total_cents) == (
        product.id,
        seller.id,
        "Free zine",
        0,
    )
    # The effects of a sale: grant, sales count, receipt, rollup, and the live announcement.
    [grant] = db.exec(select(DownloadGrant).where(DownloadGrant.order_id == order.id)).all()
    assert (grant.buyer_id, grant.product_id, grant.revoked) == (buyer.id, product.id, False)
    assert checkout.owns_product(session=db, buyer_id=buyer.id, product_id=product.id)
    db.refresh(product)
    assert product.sales_count == 1
    [mail] = db.exec(select(MailOutbox).where(MailOutbox.order_id == order.id)).all()
    assert mail.kind == "receipt"
    rollup = db.exec(select(SalesRollup).where(SalesRollup.product_id == product.id)).all()
    assert [(r.orders, r.items, r.gross_cents) for r in rollup] == [(1, 1, 0)]
    [announced] = notifier.queued(db)
    assert announced.kind == "order.paid"
    assert set(announced.topics) == {
        notifier.checkout_topic(result.stripe_session_id),
        notifier.buyer_topic(buyer.id),
        notifier.seller_topic(seller.id),
    }


def test_a_free_product_is_had_once_per_buyer(db: Session, free) -> None:  # type: ignore[no-untyped-def]
    _, buyer, product = free
    first = checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=product.id)
    with pytest.raises(checkout.AlreadyOwned, match="You already own this product"):
        checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=product.id)
    # Two tabs that both passed the ownership check: the order's unique key makes one order.
    again = fulfillment.fulfill_free_order(session=db, buyer_id=buyer.id, product=product)
    assert (again.changed, again.order_id, again.announcements()) == (False, first.order_id, [])
    assert len(db.exec(select(Order).where(Order.buyer_id == buyer.id)).all()) == 1
    assert len(db.exec(select(DownloadGrant).where(DownloadGrant.buyer_id == buyer.id)).all()) == 1
    db.refresh(product)
    assert product.sales_count == 1
    # Another buyer gets an order of their own.
    other = create_user(db, Role.BUYER)
    assert checkout.get_free_product(session=db, buyer_id=other.id, product_id=product.id).changed


def test_get_it_free_refusals(db: Session, free, storage) -> None:  # type: ignore[no-untyped-def]
    seller, buyer, product = free
    with pytest.raises(DomainError, match="your own product"):
        checkout.get_free_product(session=db, buyer_id=seller.id, product_id=product.id)
    disabled = create_user(db, Role.BUYER)
    user = db.get(User, disabled.id)
    assert user is not None
    user.disabled = True
    db.add(user)
    with pytest.raises(PermissionDenied):
        checkout.get_free_product(session=db, buyer_id=disabled.id, product_id=product.id)
    priced = create_published_product(db, storage, seller, price_cents=500)
    assert checkout.offer_for(session=db, product_id=priced.id).kind == OFFER_PAID
    with pytest.raises(DomainError, match="not free"):
        checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=priced.id)
    # Pay what you want from $3.00: naming 0 is refused with the minimum.
    pwyw = _pwyw(db, create_published_product(db, storage, seller, price_cents=300), 300)
    with pytest.raises(NamedPriceRefused, match=r"at least \$3\.00"):
        checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=pwyw.id)
    product.status = ProductStatus.UNPUBLISHED.value
    db.add(product)
    with pytest.raises(NotFound):
        checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=product.id)
    assert db.exec(select(Order)).all() == []


def test_pay_what_you_want_from_zero_naming_zero_is_free(db: Session, free) -> None:  # type: ignore[no-untyped-def]
    _, buyer, product = free
    _pwyw(db, product, 0)
    offer = checkout.offer_for(session=db, product_id=product.id)
    assert (offer.kind, offer.minimum_cents, offer.suggested_price) == (OFFER_PAY_WHAT_YOU_WANT, 0, "0.00")
    result = checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=product.id)
    assert result.changed and db.get(Order, result.order_id).total_cents == 0  # type: ignore[union-attr]


def test_a_free_order_writes_its_effects_through_the_one_grant_function(
    db: Session, free, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    _, buyer, product = free
    passed: list[Any] = []
    grant = fulfillment._grant

    def spy(conn: Any, paid: list[Any]) -> None:
        passed.extend(paid)
        grant(conn, paid)

    monkeypatch.setattr(fulfillment, "_grant", spy)
    result = checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=product.id)
    assert [(p.order_id, p.buyer_id, p.sale.product_id, p.sale.total_cents) for p in passed] == [
        (result.order_id, buyer.id, product.id, 0)
    ]


# --- pay what you want ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minimum", "currency", "named", "expected"),
    [
        (300, "usd", None, 300),  # nothing named: the minimum
        (300, "usd", 300, 300),
        (300, "usd", 700, 700),
        (300, "usd", MAX_PRICE_CENTS, MAX_PRICE_CENTS),
        (0, "usd", 0, 0),  # free
        (0, "usd", 50, 50),  # Stripe's minimum charge in usd
        (0, "gbp", 30, 30),  # ... and in gbp
        (20, "usd", 50, 50),
    ],
)
def test_a_named_price_within_the_bounds_is_what_the_buyer_pays(
    db: Session, free, minimum: int, currency: str, named: int | None, expected: int
) -> None:  # type: ignore[no-untyped-def]
    product = _pwyw(db, free[2], minimum, currency)
    assert named_price_cents(product, named) == expected


@pytest.mark.parametrize(
    ("minimum", "named", "message"),
    [
        (300, 299, r"Name at least \$3\.00, this product's minimum price"),
        (300, 0, r"Name at least \$3\.00"),
        (0, 49, r"Name at least \$0\.50, or 0 to get it free"),
        (20, 30, r"Name at least \$0\.50, the smallest amount a card can be charged"),
        (300, MAX_PRICE_CENTS + 1, r"Name at most \$100,000\.00"),
    ],
)
def test_a_named_price_out_of_bounds_is_refused(
    db: Session, free, minimum: int, named: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    product = _pwyw(db, free[2], minimum)
    with pytest.raises(NamedPriceRefused, match=message):
        named_price_cents(product, named)


def test_a_named_price_does_not_change_a_fixed_price(db: Session, storage) -> None:
    product = create_published_product(db, storage, create_user(db, Role.SELLER), price_cents=900)
    assert named_price_cents(product, 100) == named_price_cents(product, 5000) == 900


def _start(db: Session, client: FakeClient, buyer_id: int, product_id: int, **kw: Any) -> dict[str, Any]:
    checkout.start_checkout(
        session=db,
        gateway=StripeGateway(client),  # type: ignore[arg-type]
        settings=get_settings(),
        buyer_id=buyer_id,
        product_id=product_id,
        public_url="http://shop.test",
        now=1_000_000.0,
        **kw,
    )
    return client.sessions.calls[-1]


def test_checkout_charges_the_named_price_with_the_fee_on_it(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = _pwyw(db, create_published_product(db, storage, seller, price_cents=300), 300)
    offer = checkout.offer_for(session=db, product_id=product.id)  # type: ignore[arg-type]
    assert (offer.kind, offer.minimum_cents, offer.suggested_price) == (OFFER_PAY_WHAT_YOU_WANT, 300, "3.00")
    client = FakeClient()
    params, options = _start(db, client, buyer.id, product.id, named_amount_cents=700)
    assert params["line_items"][0]["price_data"]["unit_amount"] == 700
    assert params["payment_intent_data"]["application_fee_amount"] == 70  # 10% of the named 7.00
    record = db.exec(select(CheckoutRecord)).one()
    assert (record.subtotal_cents, record.application_fee_cents) == (700, 70)
    # Another amount is another session (the idempotency key carries the amount).
    other, other_options = _start(db, client, buyer.id, product.id, named_amount_cents=800)
    assert other["line_items"][0]["price_data"]["unit_amount"] == 800
    assert other_options["idempotency_key"] != options["idempotency_key"]
    # The server checks again: a client that sends less than the minimum opens nothing.
    with pytest.raises(NamedPriceRefused):
        _start(db, client, buyer.id, product.id, named_amount_cents=299)
    assert len(client.sessions.calls) == 2


def test_fulfilment_accepts_the_named_price_and_refuses_the_minimum(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = _pwyw(db, create_published_product(db, storage, seller, price_cents=300), 300)
    client = FakeClient()
    _start(db, client, buyer.id, product.id, named_amount_cents=700)
    paid = checkout_session(
        None, buyer_id=buyer.id, product_id=product.id, amount=700, session_id="cs_test_fake"
    )
    cheaper = paid | {"amount_subtotal": 300, "amount_total": 300}
    refused = fulfillment.fulfill_checkout(session=db, checkout_session=cheaper)
    assert refused.status == fulfillment.REJECTED and "subtotal 300 instead of 700" in refused.reason
    result = fulfillment.fulfill_checkout(session=db, checkout_session=paid)
    order = db.get(Order, result.order_id)
    assert order is not None
    assert (order.status, order.subtotal_cents, order.total_cents, order.platform_fee_cents) == (
        "paid",
        700,
        700,
        70,
    )
    assert order.seller_share_cents == 630


def test_pay_what_you_want_from_zero_needs_stripes_minimum_to_check_out(db: Session, free) -> None:  # type: ignore[no-untyped-def]
    seller, buyer, product = free
    give_payouts_account(db, seller.id)
    _pwyw(db, product, 0)
    client = FakeClient()
    with pytest.raises(DomainError, match="Get it free"):
        _start(db, client, buyer.id, product.id, named_amount_cents=0)
    params, _ = _start(db, client, buyer.id, product.id, named_amount_cents=150)
    assert params["line_items"][0]["price_data"]["unit_amount"] == 150


def test_amount_text_reads_back_as_the_same_price() -> None:
    from quantoxbay.services.money import parse_price

    for cents in (0, 5, 300, 123456):
        assert parse_price(amount_text(cents)) == cents
