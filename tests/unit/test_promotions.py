"""Promo codes and sales, rule by rule, against the embedded Stripe over HTTP (real SDK).

Each test gets its own embedded Stripe (a fresh SQLite file): the shop's idempotency keys
repeat across tests (ids restart after each rollback) and must not replay old sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from quantoxbay.models import Order, Product, Promotion, PromotionClaim, Role
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import DomainError, NotFound, PermissionDenied, checkout, promotions
from quantoxbay.services.fulfillment import fulfill_checkout
from quantoxbay.services.pricing import current_price_cents, sale_is_running
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user
from tests.support.connect import onboard_seller
from tests.support.local_stripe import LocalStripe, serve_local_stripe

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def local_stripe(tmp_path: Path) -> Iterator[LocalStripe]:
    yield from serve_local_stripe(tmp_path)


@pytest.fixture
def shop(db: Session, storage, local_stripe: LocalStripe):
    seller = create_user(db, Role.SELLER)
    onboard_seller(db, StripeGateway(local_stripe.client), seller.id, local_stripe.base)
    buyer = create_user(db, Role.BUYER)
    ebook = create_published_product(db, storage, seller, title="Ebook", price_cents=2000)
    course = create_published_product(db, storage, seller, title="Course", price_cents=5000)
    return seller, buyer, ebook, course


def _start(db: Session, ls: LocalStripe, buyer_id: int, product: Product, code: str = "", **kw):
    return checkout.start_checkout(
        session=db,
        gateway=StripeGateway(ls.client),
        settings=get_settings(),
        buyer_id=buyer_id,
        product_id=product.id,  # type: ignore[arg-type]
        public_url="http://shop.test",
        promo_code=code,
        **kw,
    )


def _buy(
    db: Session, ls: LocalStripe, buyer_id: int, product: Product, code: str = "", typed: str = ""
) -> Order:
    """Checkout (code from the product page), pay (code typed on the hosted page), fulfil."""
    start = _start(db, ls, buyer_id, product, code)
    fields = {"promotion_code": typed} if typed else {}
    paid = ls.pay(start.session_id, **fields)
    assert paid.status_code == 200, paid.text
    # The success page's path: retrieve the session from Stripe by id, then fulfil.
    result = checkout.confirm_checkout(
        session=db, gateway=StripeGateway(ls.client), stripe_session_id=start.session_id, buyer_id=buyer_id
    )
    assert result is not None
    order = db.get(Order, result.order_id)
    assert order is not None and order.status == "paid"
    return order


# --- creating codes ---------------------------------------------------------------------


def test_create_percent_code_for_one_product(db: Session, shop, local_stripe: LocalStripe) -> None:
    seller, _, ebook, _ = shop
    expires = datetime.now(UTC) + timedelta(days=3)
    made = promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="Launch20",
        percent_off=20,
        product_id=ebook.id,
        max_redemptions=5,
        expires_at=expires,
    )
    assert (made.code, made.discount_label, made.scope_label, made.status) == (
        "Launch20",
        "20% off",
        "Ebook",
        "Active",
    )
    row = db.get(Promotion, made.id)
    assert row is not None and row.stripe_code == "Launch20"
    promo = local_stripe.client.v1.promotion_codes.retrieve(
        row.stripe_promotion_code_id, params={"expand": ["promotion.coupon"]}
    )
    assert promo.code == "Launch20" and promo.max_redemptions == 5
    assert promo.expires_at == int(expires.timestamp())
    coupon = promo.promotion.coupon
    assert coupon.percent_off == 20 and coupon.duration == "once"
    # Scoped by the product's own Stripe Product (real Stripe refuses any other id).
    assert coupon.applies_to.products == [db.get(Product, ebook.id).stripe_product_id]  # type: ignore[union-attr]
    assert local_stripe.client.v1.products.retrieve(coupon.applies_to.products[0]).name == ebook.title
    assert [p.code for p in promotions.list_promotions(session=db, seller_id=seller.id)] == ["Launch20"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"code": "no spaces"}, "3 to 40 letters"),
        ({"code": "ab"}, "3 to 40 letters"),
        ({"code": "GOOD\nCODE"}, "The code must be a single line"),
        ({"code": "GOOD\x00CODE"}, "The code must be a single line"),
        ({"percent_off": None}, "either a percentage or an amount"),
        ({"amount_off_cents": 500}, "either a percentage or an amount"),
        ({"percent_off": 0}, "from 1 to 100"),
        ({"percent_off": 101}, "from 1 to 100"),
        ({"percent_off": None, "amount_off_cents": 2000}, "less than the price it applies to ($20.00)"),
        ({"max_redemptions": 0}, "at least 1"),
        ({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "in the future"),
        ({"product_id": 10**9}, "does not exist"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(db: Session, shop, local_stripe, kwargs, message) -> None:
    seller, _, ebook, _ = shop
    args = {"code": "GOOD-CODE", "percent_off": 10, "product_id": ebook.id, **kwargs}
    with pytest.raises(
        DomainError, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")
    ):
        promotions.create_promotion(
            session=db, gateway=StripeGateway(local_stripe.client), seller_id=seller.id, **args
        )
    assert db.exec(select(Promotion)).all() == []
    assert local_stripe.client.v1.promotion_codes.list().data == []


def test_codes_are_unique_and_only_for_own_products(db: Session, shop, local_stripe, storage) -> None:
    seller, _, ebook, _ = shop
    other = create_user(db, Role.SELLER)
    kw = {"session": db, "gateway": StripeGateway(local_stripe.client), "percent_off": 10}
    promotions.create_promotion(seller_id=seller.id, code="SPRING", **kw)
    with pytest.raises(DomainError, match="no products yet"):
        promotions.create_promotion(seller_id=other.id, code="MINE", **kw)
    create_published_product(db, storage, other, title="Theirs")
    with pytest.raises(DomainError, match="already in use"):
        promotions.create_promotion(seller_id=other.id, code="spring", **kw)
    with pytest.raises(PermissionDenied, match="not yours"):
        promotions.create_promotion(seller_id=other.id, code="MINE", product_id=ebook.id, **kw)


# --- using codes ------------------------------------------------------------------------


def test_code_on_the_product_page_discounts_and_the_order_records_it(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, _ = shop
    made = promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="TAKE5",
        amount_off_cents=500,
    )
    order = _buy(db, local_stripe, buyer.id, ebook, code="take5")
    row = db.get(Promotion, made.id)
    assert row is not None
    assert (order.subtotal_cents, order.discount_cents, order.total_cents) == (2000, 500, 1500)
    assert order.promo_code == row.stripe_promotion_code_id
    assert promotions.list_promotions(session=db, seller_id=seller.id)[0].redemptions == 1


def test_code_typed_on_the_hosted_page_is_recorded(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, course = shop
    promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="HALF",
        percent_off=50,
    )
    start = _start(db, local_stripe, buyer.id, course)
    created = local_stripe.client.v1.checkout.sessions.retrieve(start.session_id)
    assert created.allow_promotion_codes is True and created.amount_total == 5000
    order = _buy(db, local_stripe, buyer.id, ebook, typed="half")
    assert (order.discount_cents, order.total_cents) == (1000, 1000)


def test_code_scope_other_products_and_other_sellers(db: Session, shop, local_stripe, storage) -> None:
    seller, buyer, ebook, course = shop
    promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="EBOOK",
        percent_off=10,
        product_id=ebook.id,
    )
    promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="ALL",
        percent_off=10,
    )
    someone = create_user(db, Role.SELLER)
    onboard_seller(db, StripeGateway(local_stripe.client), someone.id, local_stripe.base)
    theirs = create_published_product(db, storage, someone, title="Theirs", price_cents=3000)
    with pytest.raises(DomainError, match="does not apply to this product"):
        _start(db, local_stripe, buyer.id, course, "EBOOK")
    with pytest.raises(DomainError, match="ALL is not valid"):
        _start(db, local_stripe, buyer.id, theirs, "ALL")
    with pytest.raises(DomainError, match="NOPE is not valid"):
        _start(db, local_stripe, buyer.id, course, "NOPE")
    # Stripe enforces the scope too: typed on another seller's hosted page it does nothing.
    start = _start(db, local_stripe, buyer.id, theirs)
    refused = local_stripe.pay(start.session_id, promotion_code="ALL")
    assert refused.status_code == 400 and "doesn't apply" in refused.text
    assert _buy(db, local_stripe, buyer.id, course, code="ALL").discount_cents == 500


def test_expired_code_is_never_honoured(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, _ = shop
    expires = datetime.now(UTC) + timedelta(minutes=45)
    promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="SOON",
        percent_off=30,
        expires_at=expires,
    )
    later = (expires + timedelta(seconds=1)).timestamp()
    with pytest.raises(DomainError, match="SOON has expired"):
        _start(db, local_stripe, buyer.id, ebook, "SOON", now=later)
    # A session opened before the expiry expires with the code (Stripe's 30 min minimum allowing).
    start = _start(db, local_stripe, buyer.id, ebook, "SOON")
    session_expiry = local_stripe.client.v1.checkout.sessions.retrieve(start.session_id).expires_at
    assert session_expiry == int(expires.timestamp())
    assert promotions.list_promotions(session=db, seller_id=seller.id, now=expires)[0].status == "Expired"


def test_redemption_limit(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, course = shop
    promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="ONLY1",
        percent_off=10,
        max_redemptions=1,
    )
    _buy(db, local_stripe, buyer.id, ebook, code="ONLY1")
    second = create_user(db, Role.BUYER)
    with pytest.raises(DomainError, match="reached its redemption limit"):
        _start(db, local_stripe, second.id, course, "ONLY1")
    start = _start(db, local_stripe, second.id, course)  # Stripe refuses it on the hosted page too
    assert "redemption limit" in local_stripe.pay(start.session_id, promotion_code="ONLY1").text
    assert promotions.list_promotions(session=db, seller_id=seller.id)[0].status == "Used up"


def test_once_per_buyer(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, course = shop
    made = promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="WELCOME",
        percent_off=25,
        once_per_buyer=True,
    )
    row = db.get(Promotion, made.id)
    assert row is not None and row.stripe_code != "WELCOME"  # hidden from the hosted page
    start = _start(db, local_stripe, buyer.id, course)
    typed = local_stripe.pay(start.session_id, promotion_code="WELCOME")
    assert typed.status_code == 400 and "invalid" in typed.text

    # Two open checkouts with the code: opening the second expires the first.
    first = _start(db, local_stripe, buyer.id, course, "WELCOME")
    second = _start(db, local_stripe, buyer.id, ebook, "WELCOME")
    assert local_stripe.client.v1.checkout.sessions.retrieve(first.session_id).status == "expired"
    paid = local_stripe.pay(second.session_id)
    order = db.get(Order, fulfill_checkout(session=db, checkout_session=paid.json()["session"]).order_id)
    assert order is not None and order.discount_cents == 500
    assert len(db.exec(select(PromotionClaim)).all()) == 2

    with pytest.raises(DomainError, match="already used the code WELCOME"):
        _start(db, local_stripe, buyer.id, course, "WELCOME")
    other = create_user(db, Role.BUYER)
    assert _buy(db, local_stripe, other.id, course, code="WELCOME").discount_cents == 1250


def test_once_per_buyer_paid_in_another_tab_meanwhile(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, course = shop
    promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="TABS",
        percent_off=25,
        once_per_buyer=True,
    )
    first = _start(db, local_stripe, buyer.id, course, "TABS")
    assert local_stripe.pay(first.session_id).status_code == 200  # its webhook not processed yet
    with pytest.raises(DomainError, match="already used"):
        _start(db, local_stripe, buyer.id, ebook, "TABS")
    [newest] = local_stripe.client.v1.checkout.sessions.list(params={"limit": 1}).data
    assert newest.id != first.session_id and newest.status == "expired"


def test_deactivate(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, _ = shop
    made = promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="STOPME",
        percent_off=10,
    )
    other = create_user(db, Role.SELLER)
    with pytest.raises(NotFound):
        promotions.deactivate_promotion(
            session=db, gateway=StripeGateway(local_stripe.client), seller_id=other.id, promotion_id=made.id
        )
    done = promotions.deactivate_promotion(
        session=db, gateway=StripeGateway(local_stripe.client), seller_id=seller.id, promotion_id=made.id
    )
    assert done.status == "Deactivated"
    row = db.get(Promotion, made.id)
    assert row is not None
    assert local_stripe.client.v1.promotion_codes.retrieve(row.stripe_promotion_code_id).active is False
    with pytest.raises(DomainError, match="STOPME is not valid"):
        _start(db, local_stripe, buyer.id, ebook, "STOPME")
    # The code may be reused once the old one is off.
    promotions.create_promotion(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        seller_id=seller.id,
        code="STOPME",
        percent_off=15,
    )


# --- sales ------------------------------------------------------------------------------


def test_schedule_sale_validation(db: Session, shop) -> None:
    seller, _, ebook, _ = shop
    now = datetime.now(UTC)
    kw = {"session": db, "seller_id": seller.id, "product_id": ebook.id, "now": now}
    cases = [
        ({"sale_price_cents": 2000, "starts_at": None, "ends_at": now + timedelta(days=1)}, "lower than"),
        ({"sale_price_cents": 0, "starts_at": None, "ends_at": now + timedelta(days=1)}, "greater than zero"),
        ({"sale_price_cents": 900, "starts_at": None, "ends_at": None}, "Choose when the sale ends"),
        ({"sale_price_cents": 900, "starts_at": None, "ends_at": now - timedelta(hours=1)}, "in the future"),
        (
            {
                "sale_price_cents": 900,
                "starts_at": now + timedelta(days=2),
                "ends_at": now + timedelta(days=1),
            },
            "end after it starts",
        ),
    ]
    for args, message in cases:
        with pytest.raises(DomainError, match=message):
            promotions.schedule_sale(**kw, **args)  # type: ignore[arg-type]
    other = create_user(db, Role.SELLER)
    with pytest.raises(PermissionDenied):
        promotions.schedule_sale(
            session=db, seller_id=other.id, product_id=ebook.id, sale_price_cents=900, starts_at=None,
            ends_at=now + timedelta(days=1),
        )  # fmt: skip
    db.refresh(ebook)
    assert ebook.sale_price_cents is None


def test_sale_price_only_while_the_sale_runs(db: Session, shop, local_stripe) -> None:
    seller, buyer, ebook, _ = shop
    now = datetime.now(UTC)
    starts, ends = now + timedelta(hours=1), now + timedelta(minutes=100)
    sale = promotions.schedule_sale(
        session=db,
        seller_id=seller.id,
        product_id=ebook.id,
        sale_price_cents=1200,
        starts_at=starts,
        ends_at=ends,
    )
    assert sale.status == "Scheduled" and sale.sale_price_label == "$12.00"
    db.refresh(ebook)
    assert current_price_cents(ebook, now) == 2000
    assert current_price_cents(ebook, starts) == 1200 and sale_is_running(ebook, starts)
    assert current_price_cents(ebook, ends) == 2000
    assert promotions.sale_deadline(session=db, product_id=ebook.id, now=now) is None
    assert promotions.sale_deadline(session=db, product_id=ebook.id, now=starts) == ends
    assert [s.status for s in promotions.list_sales(session=db, seller_id=seller.id, now=starts)] == [
        "Running"
    ]

    def charged(at: datetime) -> tuple[int, int]:
        start = _start(db, local_stripe, buyer.id, ebook, now=at.timestamp())
        created = local_stripe.client.v1.checkout.sessions.retrieve(start.session_id)
        return created.amount_total, created.expires_at

    during = starts + timedelta(minutes=1)
    amount, expires_at = charged(during)
    assert amount == 1200
    assert expires_at == int(ends.timestamp())  # the session ends with the sale
    assert charged(ends + timedelta(seconds=1))[0] == 2000  # checkout after the end: full price

    promotions.end_sale(session=db, seller_id=seller.id, product_id=ebook.id)
    db.refresh(ebook)
    assert ebook.sale_price_cents is None and current_price_cents(ebook, during) == 2000
    assert promotions.list_sales(session=db, seller_id=seller.id) == []


def test_parse_local_datetime() -> None:
    parse = promotions.parse_local_datetime
    # Berlin in winter: getTimezoneOffset() == -60.
    assert parse("2026-12-01T18:00", -60, field="Ends") == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert parse("2026-12-01 18:00", 300, field="Ends") == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert parse("  ", 0, field="Ends") is None
    with pytest.raises(DomainError, match="Ends: enter a date and time"):
        parse("tomorrow", 0, field="Ends")


# --- fulfilment trusts only what the shop sold ----------------------------------------------


def test_once_per_buyer_holds_at_fulfilment(db: Session, shop, local_stripe) -> None:
    """Two checkouts with a once-per-buyer code that both got past the claim (two requests at the
    same instant): the first order is made, the second is refused when fulfilled."""
    seller, buyer, ebook, course = shop
    promotions.create_promotion(
        session=db, gateway=StripeGateway(local_stripe.client), seller_id=seller.id, code="ONCE", percent_off=25,
        once_per_buyer=True,
    )  # fmt: skip
    first = _start(db, local_stripe, buyer.id, course, "ONCE")
    assert local_stripe.pay(first.session_id).status_code == 200
    for claim in db.exec(select(PromotionClaim)).all():  # the other request had not claimed it yet
        db.delete(claim)
    db.flush()
    second = _start(db, local_stripe, buyer.id, ebook, "ONCE")
    assert local_stripe.pay(second.session_id).status_code == 200

    def confirm(session_id: str):
        return checkout.confirm_checkout(
            session=db,
            gateway=StripeGateway(local_stripe.client),
            stripe_session_id=session_id,
            buyer_id=buyer.id,
        )

    made = confirm(first.session_id)
    assert made is not None and made.status == "paid"
    refused = confirm(second.session_id)
    assert refused is not None and (refused.status, refused.order_id) == ("rejected", None)
    assert "already used the once-per-buyer promotion code" in refused.reason
    assert not checkout.owns_product(session=db, buyer_id=buyer.id, product_id=ebook.id)


def test_a_code_minted_with_the_key_grants_nothing(db: Session, shop, local_stripe) -> None:
    """Issue: someone with the API key made a 100%-off code and used it on the hosted page."""
    _, buyer, _, course = shop
    coupon = local_stripe.client.v1.coupons.create({"percent_off": 100, "duration": "once"})
    local_stripe.client.v1.promotion_codes.create(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "FREEBIE"}
    )
    start = _start(db, local_stripe, buyer.id, course)
    assert local_stripe.pay(start.session_id, promotion_code="FREEBIE").status_code == 200
    result = checkout.confirm_checkout(
        session=db,
        gateway=StripeGateway(local_stripe.client),
        stripe_session_id=start.session_id,
        buyer_id=buyer.id,
    )
    assert result is not None and result.status == "rejected" and "is not one of the shop's" in result.reason
    assert db.exec(select(Order).where(Order.stripe_session_id == start.session_id)).first() is None


def test_a_session_made_with_the_key_grants_nothing(db: Session, shop, local_stripe) -> None:
    """Issue: a Checkout Session made with the key, shop metadata, $0.50 instead of the price."""
    _, buyer, _, course = shop
    ids = {"buyer_id": str(buyer.id), "product_id": str(course.id)}
    made = local_stripe.client.v1.checkout.sessions.create(
        {"mode": "payment", "client_reference_id": str(buyer.id), "metadata": ids,
         "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 50,
                                                       "product_data": {"name": "Course"}}}],
         "success_url": "http://shop.test/checkout/success", "cancel_url": "http://shop.test/"}
    )  # fmt: skip
    assert local_stripe.pay(made.id).status_code == 200
    result = checkout.confirm_checkout(
        session=db, gateway=StripeGateway(local_stripe.client), stripe_session_id=made.id, buyer_id=buyer.id
    )
    assert result is not None and (result.status, result.reason) == (
        "rejected", "checkout session not created by this shop",
    )  # fmt: skip
    assert not checkout.owns_product(session=db, buyer_id=buyer.id, product_id=course.id)
