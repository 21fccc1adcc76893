"""fulfill_checkout: only paid sessions, exactly one order, grants, amounts; checkout pricing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from quantoxbay.models import (
    CheckoutRecord,
    DownloadGrant,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    ProductStatus,
    Promotion,
    Role,
    utcnow,
)
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import checkout, fulfillment
from quantoxbay.services.notifier import checkout_topic, seller_topic
from quantoxbay.services.pricing import current_price_cents
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session


@pytest.fixture
def sale(db: Session, storage):
    seller = create_user(db, Role.SELLER)
    buyer = create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, price_cents=1500)
    return seller, buyer, product


def test_paid_session_creates_one_order_with_amounts_and_grant(db: Session, sale) -> None:
    seller, buyer, product = sale
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=1200, discount=300)
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert result.changed and result.status == "paid" and result.seller_ids == [seller.id]
    order = db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).one()
    assert (order.subtotal_cents, order.discount_cents, order.total_cents) == (1500, 300, 1200)
    assert order.currency == "usd" and order.buyer_id == buyer.id
    assert order.stripe_payment_intent_id == cs["payment_intent"]
    assert order.paid_at is not None
    item = db.exec(select(OrderItem).where(OrderItem.order_id == order.id)).one()
    assert (item.product_id, item.seller_id, item.total_cents) == (product.id, seller.id, 1200)
    grants = db.exec(select(DownloadGrant).where(DownloadGrant.order_id == order.id)).all()
    assert [(g.buyer_id, g.product_id, g.revoked) for g in grants] == [(buyer.id, product.id, False)]
    db.refresh(product)
    assert product.sales_count == 1
    topics = result.announcements()[0].topics
    assert checkout_topic(cs["id"]) in topics and seller_topic(seller.id) in topics


def test_second_call_changes_nothing(db: Session, sale) -> None:
    _, buyer, product = sale
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id)
    first = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    second = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert first.changed and not second.changed and first.order_id == second.order_id
    assert second.announcements() == []
    assert len(db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).all()) == 1
    assert len(db.exec(select(DownloadGrant).where(DownloadGrant.order_id == first.order_id)).all()) == 1


def test_unpaid_session_grants_nothing_then_async_success_does(db: Session, sale) -> None:
    _, buyer, product = sale
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, payment_status="unpaid")
    pending = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert pending.status == "pending"
    assert not checkout.owns_product(session=db, buyer_id=buyer.id, product_id=product.id)
    paid = fulfillment.fulfill_checkout(session=db, checkout_session={**cs, "payment_status": "paid"})
    assert paid.changed and paid.status == "paid" and paid.order_id == pending.order_id
    assert checkout.owns_product(session=db, buyer_id=buyer.id, product_id=product.id)


def test_async_failure_marks_order_failed_without_grants(db: Session, sale) -> None:
    _, buyer, product = sale
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, payment_status="unpaid")
    fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    failed = fulfillment.fail_checkout(session=db, checkout_session=cs)
    assert failed.changed and failed.status == OrderStatus.FAILED.value
    assert not checkout.owns_product(session=db, buyer_id=buyer.id, product_id=product.id)


def test_a_session_that_is_not_a_checkout_session_is_refused(db: Session, sale) -> None:
    _, buyer, product = sale
    cs = {**checkout_session(db, buyer_id=buyer.id, product_id=product.id), "id": "pi_not_a_session"}
    with pytest.raises(fulfillment.MalformedCheckoutSession):
        fulfillment.fulfill_checkout(session=db, checkout_session=cs)


def _refused(db: Session, cs: dict, match: str) -> fulfillment.FulfillmentResult:
    """Fulfilment refuses ``cs``: no order, no grant, the reason says why."""
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert (result.status, result.order_id, result.changed) == (fulfillment.REJECTED, None, False)
    assert match in result.reason, result.reason
    assert result.announcements() == []
    assert db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).first() is None
    assert not checkout.owns_product(session=db, buyer_id=int(cs["client_reference_id"]), product_id=int(cs["metadata"]["product_id"]))  # fmt: skip
    return result


def test_a_session_the_shop_never_created_is_rejected(db: Session, sale) -> None:
    """Issue: someone with the API key made a shop-looking session at $0.50; it was fulfilled."""
    _, buyer, product = sale
    forged = checkout_session(None, buyer_id=buyer.id, product_id=product.id, amount=50)
    _refused(db, forged, "not created by this shop")
    # The batch path (webhook) leaves it to the one-by-one path, which says why.
    assert fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=[forged]) == {}
    assert db.exec(select(Order).where(Order.stripe_session_id == forged["id"])).first() is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"currency": "eur"}, "currency eur instead of usd"),
        ({"amount_subtotal": 50, "amount_total": 50}, "subtotal 50 instead of 1500"),
        ({"amount_total": 50}, "does not match"),
        ({"amount_total": 1000, "total_details": {"amount_discount": 500}}, "without one promotion code"),
        ({"client_reference_id": "999999", "metadata": {"buyer_id": "999999", "product_id": "1"}}, "differ"),
        ({"metadata": {"product_id": "x"}}, "differ"),
    ],
)
def test_a_recorded_session_that_differs_from_the_record_is_rejected(
    db: Session, sale, change, match
) -> None:
    _, buyer, product = sale
    cs = {**checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=1500), **change}
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert (result.status, result.order_id) == (fulfillment.REJECTED, None) and match in result.reason
    assert db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).first() is None
    assert fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=[cs]) == {}


def _promotion(db: Session, seller_id: int, product_id: int | None, **kwargs) -> Promotion:
    code = f"P{uuid.uuid4().hex[:8]}"
    promo = Promotion(
        seller_id=seller_id, code=code, code_lower=code.lower(), product_id=product_id,
        stripe_coupon_id=f"co_{code}", stripe_promotion_code_id=f"promo_{code}", stripe_code=code,
        **({"percent_off": 20} | kwargs),
    )  # fmt: skip
    db.add(promo)
    db.flush()
    return promo


def _discounted(db: Session, buyer_id: int, product_id: int, code_id: str, discount: int = 300) -> dict:
    return checkout_session(
        db, buyer_id=buyer_id, product_id=product_id, amount=1500 - discount, discount=discount,
        promotion_code=code_id,
    )  # fmt: skip


def test_a_discount_must_come_from_a_code_of_the_shop_for_that_product(db: Session, sale, storage) -> None:
    """Issue: someone minted a 100%-off code with the API key. Only the seller's own codes, for
    this product, giving no more than their coupon, make an order."""
    seller, buyer, product = sale
    other_seller = create_user(db, Role.SELLER)
    other_product = create_published_product(db, storage, seller, title="Another", price_cents=1500)
    minted = _discounted(db, buyer.id, product.id, "promo_minted_by_someone", discount=1500)
    _refused(db, minted, "promotion code promo_minted_by_someone is not one of the shop's")
    foreign = _promotion(db, other_seller.id, None)
    _refused(db, _discounted(db, buyer.id, product.id, foreign.stripe_promotion_code_id), "another seller")
    elsewhere = _promotion(db, seller.id, other_product.id)
    _refused(db, _discounted(db, buyer.id, product.id, elsewhere.stripe_promotion_code_id), "another product")
    twenty = _promotion(db, seller.id, product.id)  # 20% of 1500 = 300
    too_much = _discounted(db, buyer.id, product.id, twenty.stripe_promotion_code_id, discount=301)
    _refused(db, too_much, "more than promotion code")
    assert fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=[minted, too_much]) == {}

    good = _discounted(db, buyer.id, product.id, twenty.stripe_promotion_code_id, discount=300)
    result = fulfillment.fulfill_checkout(session=db, checkout_session=good)
    assert result.changed and result.status == "paid"
    order = db.get(Order, result.order_id)
    assert order is not None and (order.discount_cents, order.total_cents) == (300, 1200)


def test_a_code_the_checkout_did_not_allow_is_rejected(db: Session, sale) -> None:
    seller, buyer, product = sale
    applied = _promotion(db, seller.id, product.id, once_per_buyer=True)
    typed = _promotion(db, seller.id, product.id)
    # The server attached ``applied``: another code of the same seller in its place is refused.
    cs = _discounted(db, buyer.id, product.id, applied.stripe_promotion_code_id)
    swapped = {**cs, "discounts": [{"coupon": None, "promotion_code": typed.stripe_promotion_code_id}]}
    _refused(db, swapped, "not the one the shop applied")
    # A once-per-buyer code is never typed on the hosted page: only the server attaches it.
    hosted = checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=1500)
    sneaked = {**hosted, "amount_total": 1200, "total_details": {"amount_discount": 300},
               "discounts": [{"coupon": None, "promotion_code": applied.stripe_promotion_code_id}]}  # fmt: skip
    _refused(db, sneaked, "was not allowed on this checkout")


def test_a_product_no_longer_for_sale_gets_no_order(db: Session, sale) -> None:
    _, buyer, product = sale
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=1500)
    product.status = ProductStatus.UNPUBLISHED.value  # an admin took it down after checkout started
    db.add(product)
    db.flush()
    _refused(db, cs, f"product {product.id} is no longer for sale (unpublished)")
    assert fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=[cs]) == {}


def test_a_session_that_is_not_the_shops_is_ignored(db: Session, sale) -> None:
    """Another integration on the same Stripe account: no shop metadata. Nothing to do, no error."""
    _, buyer, product = sale
    cs = {**checkout_session(None, buyer_id=buyer.id, product_id=product.id), "metadata": {},
          "client_reference_id": None}  # fmt: skip
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert (result.status, result.order_id, result.changed) == (fulfillment.IGNORED, None, False)
    assert fulfillment.fail_checkout(session=db, checkout_session=cs).status == fulfillment.IGNORED
    assert db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).first() is None


def test_the_batch_path_fulfils_the_good_and_leaves_the_refused(db: Session, sale) -> None:
    _, buyer, product = sale
    good = [checkout_session(db, buyer_id=buyer.id, product_id=product.id) for _ in range(2)]
    forged = checkout_session(None, buyer_id=buyer.id, product_id=product.id)
    results = fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=[*good, forged])
    assert set(results) == {cs["id"] for cs in good}
    assert all(r.changed and r.status == "paid" for r in results.values())


def test_an_order_accepted_before_stays_when_the_product_is_taken_down(db: Session, sale) -> None:
    """A late webhook for an order the success page made already changes nothing."""
    _, buyer, product = sale
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id)
    first = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    product.status = ProductStatus.UNPUBLISHED.value
    db.add(product)
    db.flush()
    again = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert (again.order_id, again.status, again.changed) == (first.order_id, "paid", False)


def test_sale_price_applies_only_inside_its_window(db: Session, sale) -> None:
    _, _, product = sale
    now = utcnow()
    product.sale_price_cents = 900
    product.sale_starts_at, product.sale_ends_at = now - timedelta(hours=1), now + timedelta(hours=1)
    assert current_price_cents(product, now) == 900
    assert current_price_cents(product, now + timedelta(hours=2)) == 1500
    assert current_price_cents(product, now - timedelta(hours=2)) == 1500


class FakeSessions:
    def __init__(self) -> None:
        self.calls: list[tuple[dict, dict]] = []

    def create(self, params, options):
        self.calls.append((params, options))
        return type("S", (), {"id": "cs_test_fake", "url": "https://checkout.example/cs_test_fake"})()


class FakeProducts:
    def __init__(self) -> None:
        self.created: list[tuple[dict, dict]] = []
        self.updated: list[tuple[str, dict]] = []

    def create(self, params, options):
        self.created.append((params, options))
        return type("P", (), {"id": f"prod_fake{len(self.created)}"})()

    def update(self, product_id, params):
        self.updated.append((product_id, params))


class FakeClient:
    def __init__(self) -> None:
        self.sessions = FakeSessions()
        self.products = FakeProducts()
        self.v1 = type(
            "V1", (), {"checkout": type("C", (), {"sessions": self.sessions})(), "products": self.products}
        )()


def test_start_checkout_prices_from_the_database(db: Session, sale) -> None:
    _, buyer, product = sale
    client = FakeClient()
    start = checkout.start_checkout(
        session=db,
        gateway=StripeGateway(client),
        settings=get_settings(),
        buyer_id=buyer.id,
        product_id=product.id,
        public_url="http://shop.test",
        now=1_000_000.0,
    )
    assert start.url == "https://checkout.example/cs_test_fake"
    params, options = client.sessions.calls[0]
    line = params["line_items"][0]
    assert line["price_data"]["unit_amount"] == 1500 and line["quantity"] == 1
    assert params["mode"] == "payment" and params["allow_promotion_codes"] is True
    assert params["client_reference_id"] == str(buyer.id)
    assert params["metadata"] == {"buyer_id": str(buyer.id), "product_id": str(product.id)}
    assert params["success_url"] == "http://shop.test/checkout/success?session_id={CHECKOUT_SESSION_ID}"
    assert 1800 <= params["expires_at"] - 1_000_000 <= 86400
    # A double click inside the window reuses the key (Stripe replays the same session).
    checkout.start_checkout(
        session=db,
        gateway=StripeGateway(client),
        settings=get_settings(),
        buyer_id=buyer.id,
        product_id=product.id,
        public_url="http://shop.test",
        now=1_000_010.0,
    )
    assert client.sessions.calls[1][1]["idempotency_key"] == options["idempotency_key"]
    assert client.sessions.calls[1][0] == params
    # What the shop sold is recorded once (the replayed session has the same id).
    [record] = db.exec(select(CheckoutRecord).where(CheckoutRecord.stripe_session_id == "cs_test_fake")).all()
    assert (record.buyer_id, record.product_id, record.currency, record.subtotal_cents) == (
        buyer.id, product.id, "usd", 1500,
    )  # fmt: skip
    assert record.allow_promotion_codes is True and record.promotion_id is None


def test_the_line_item_names_the_products_own_stripe_product(db: Session, sale) -> None:
    """Made once, on the first checkout; renamed in Stripe when the title changed; never inline
    product_data (Stripe matches product-scoped codes by Stripe Product id)."""
    _, buyer, product = sale
    client = FakeClient()

    def start(now: float) -> dict:
        checkout.start_checkout(
            session=db, gateway=StripeGateway(client), settings=get_settings(), buyer_id=buyer.id,
            product_id=product.id,  # type: ignore[arg-type]
            public_url="http://shop.test", now=now,
        )  # fmt: skip
        return client.sessions.calls[-1][0]["line_items"][0]["price_data"]

    first = start(1_000_000.0)
    assert first["product"] == "prod_fake1" and "product_data" not in first
    [(params, options)] = client.products.created
    assert params == {"name": product.title, "metadata": {"product_id": str(product.id)}}
    assert options["idempotency_key"].startswith(f"qb-product-{product.id}-")
    assert db.get(Product, product.id).stripe_product_id == "prod_fake1"  # type: ignore[union-attr]

    assert start(2_000_000.0)["product"] == "prod_fake1"
    assert len(client.products.created) == 1 and client.products.updated == []

    product.title = "Renamed ebook"
    db.add(product)
    assert start(3_000_000.0)["product"] == "prod_fake1"
    assert client.products.updated == [("prod_fake1", {"name": "Renamed ebook"})]
    assert start(4_000_000.0)["product"] == "prod_fake1"
    assert len(client.products.updated) == 1


def test_start_checkout_refusals(db: Session, sale, storage) -> None:
    seller, buyer, product = sale
    client = FakeClient()
    kwargs = {
        "session": db,
        "gateway": StripeGateway(client),
        "settings": get_settings(),
        "public_url": "http://shop.test",
    }
    with pytest.raises(checkout.DomainError, match="your own product"):
        checkout.start_checkout(buyer_id=seller.id, product_id=product.id, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(checkout.NotFound):
        checkout.start_checkout(buyer_id=buyer.id, product_id=10**9, **kwargs)  # type: ignore[arg-type]
    fulfillment.fulfill_checkout(
        session=db, checkout_session=checkout_session(db, buyer_id=buyer.id, product_id=product.id)
    )
    with pytest.raises(checkout.AlreadyOwned):
        checkout.start_checkout(buyer_id=buyer.id, product_id=product.id, **kwargs)  # type: ignore[arg-type]
    draft = db.get(Product, product.id)
    assert draft is not None
    draft.status = "unpublished"
    db.add(draft)
    other = create_user(db, Role.BUYER)
    with pytest.raises(checkout.NotFound):
        checkout.start_checkout(buyer_id=other.id, product_id=product.id, **kwargs)  # type: ignore[arg-type]
    assert client.sessions.calls == []


def test_open_session_makes_no_order(db: Session, sale) -> None:
    _, buyer, product = sale
    cs = {
        **checkout_session(db, buyer_id=buyer.id, product_id=product.id, payment_status="unpaid"),
        "status": "open",
    }
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert result.order_id is None and not result.changed
    assert db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).first() is None
