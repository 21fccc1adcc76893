"""Seller analytics against hand-computed figures: refunds, partial refunds, discounts, periods, zones."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from quantoxbay.models import Order, OrderItem, Role
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import PermissionDenied, analytics, catalog
from quantoxbay.services.accounts import UserPublic
from tests.factories import create_user
from tests.support.fake_stripe import UnchargedPaymentIntents

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sale(
    db: Session,
    buyer: UserPublic,
    product_id: int,
    seller_id: int,
    at: str,
    total: int,
    *,
    discount: int = 0,
    refunded: int = 0,
    status: str = "paid",
    currency: str = "usd",
    title: str = "",
) -> Order:
    when = _at(at)
    order = Order(
        buyer_id=buyer.id,
        status=status,
        currency=currency,
        subtotal_cents=total + discount,
        discount_cents=discount,
        total_cents=total,
        refunded_cents=refunded,
        stripe_session_id=f"cs_test_{uuid.uuid4().hex}",
        created_at=when,
        paid_at=when,
    )
    db.add(order)
    db.flush()
    assert order.id is not None
    item = OrderItem(
        order_id=order.id,
        product_id=product_id,
        seller_id=seller_id,
        title=title or f"product {product_id}",
        unit_price_cents=total + discount,
        discount_cents=discount,
        total_cents=total,
        created_at=when,
    )
    db.add(item)
    db.flush()
    if status in analytics.COUNTED_STATUSES:
        # what fulfillment does when an order is paid
        analytics.record_sales(db.connection(), analytics.order_sales(order, [item]))
    return order


@pytest.fixture
def shop(db: Session) -> dict:
    seller = create_user(db, Role.SELLER)
    other = create_user(db, Role.SELLER)
    buyer = create_user(db, Role.BUYER, email=f"b-{uuid.uuid4().hex[:6]}@example.com")
    alpha = catalog.create_product(session=db, seller_id=seller.id, title="Alpha", price_cents=1200)
    beta = catalog.create_product(session=db, seller_id=seller.id, title="Beta", price_cents=2000)
    gamma = catalog.create_product(session=db, seller_id=other.id, title="Gamma", price_cents=100)
    a, b, g = alpha.id, beta.id, gamma.id
    assert a and b and g
    sale(db, buyer, a, seller.id, "2026-11-28 09:10", 1000)  # today
    sale(db, buyer, a, seller.id, "2026-11-27 23:50", 1000, discount=200)  # 7d
    sale(db, buyer, b, seller.id, "2026-11-25 10:00", 500, refunded=500, status="refunded")  # 7d
    sale(db, buyer, b, seller.id, "2026-11-01 10:00", 2000, refunded=750, status="partially_refunded")  # 30d
    sale(db, buyer, a, seller.id, "2026-09-15 08:00", 3000)  # 90d
    sale(db, buyer, a, seller.id, "2026-01-10 08:00", 4000)  # all time only
    sale(db, buyer, a, seller.id, "2026-11-28 10:00", 999, status="pending")  # never counted
    sale(db, buyer, a, seller.id, "2026-11-28 10:05", 999, status="failed")  # never counted
    sale(db, buyer, g, other.id, "2026-11-28 10:00", 100)  # someone else's
    return {"seller": seller, "other": other, "buyer": buyer, "a": a, "b": b, "g": g}


@pytest.mark.parametrize(
    ("period", "orders", "units", "gross", "discount", "refunds", "net"),
    [
        ("today", 1, 1, 1000, 0, 0, 1000),
        ("7d", 3, 3, 2500, 200, 500, 2000),
        ("30d", 4, 4, 4500, 200, 1250, 3250),
        ("90d", 5, 5, 7500, 200, 1250, 6250),
        ("all", 6, 6, 11500, 200, 1250, 10250),
    ],
)
def test_revenue_per_period(
    db: Session, shop: dict, period: str, orders, units, gross, discount, refunds, net
) -> None:
    d = analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period=period, tz="UTC", now=NOW)
    m = d.main
    assert (
        m.currency,
        m.orders,
        m.units,
        m.gross_cents,
        m.discount_cents,
        m.refunded_cents,
        m.net_cents,
    ) == (
        "usd",
        orders,
        units,
        gross,
        discount,
        refunds,
        net,
    )


def test_products_units_and_top_products(db: Session, shop: dict) -> None:
    d = analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period="90d", tz="UTC", now=NOW)
    figures = [(p.title, p.orders, p.units, p.gross_cents, p.refunded_cents, p.net_cents) for p in d.products]
    assert figures == [("Alpha", 3, 3, 5000, 0, 5000), ("Beta", 2, 2, 2500, 1250, 1250)]
    assert [p.title for p in d.top_products] == ["Alpha", "Beta"]


def test_day_series_covers_every_day_of_the_period(db: Session, shop: dict) -> None:
    d = analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period="7d", tz="UTC", now=NOW)
    assert d.bucket == "day"
    assert [p.key for p in d.series] == [f"2026-11-{n}" for n in range(22, 29)]
    by_day = {p.key: (p.gross_cents, p.refunded_cents, p.net_cents) for p in d.series}
    assert by_day["2026-11-28"] == (1000, 0, 1000)
    assert by_day["2026-11-27"] == (1000, 0, 1000)
    assert by_day["2026-11-25"] == (500, 500, 0)
    assert by_day["2026-11-26"] == (0, 0, 0)
    assert d.series[-1].label == "28 Nov"


def test_today_is_charted_per_hour(db: Session, shop: dict) -> None:
    d = analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period="today", tz="UTC", now=NOW)
    assert d.bucket == "hour" and len(d.series) == 24
    assert {p.label: p.gross_cents for p in d.series if p.gross_cents} == {"09:00": 1000}


def test_all_time_spanning_months_is_charted_per_month(db: Session, shop: dict) -> None:
    d = analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period="all", tz="UTC", now=NOW)
    assert d.bucket == "month"
    months = {p.key: p.gross_cents for p in d.series}
    assert months["2026-01"] == 4000 and months["2026-11"] == 4500 and months["2026-05"] == 0
    assert sum(months.values()) == 11500


def test_time_zones_move_sales_between_days(db: Session, shop: dict) -> None:
    seller_id = shop["seller"].id
    # New York (UTC-5 in November): it is 07:00 on the 28th; the 23:50 UTC sale was on the 27th locally.
    ny = analytics.seller_dashboard(
        session=db, seller_id=seller_id, period="today", tz="America/New_York", now=NOW
    )
    assert ny.main.gross_cents == 1000
    assert {p.label: p.gross_cents for p in ny.series if p.gross_cents} == {"04:00": 1000}
    # Tokyo (UTC+9): it is 21:00 on the 28th; both sales fell on the 28th locally.
    tokyo = analytics.seller_dashboard(
        session=db, seller_id=seller_id, period="today", tz="Asia/Tokyo", now=NOW
    )
    assert tokyo.main.gross_cents == 2000
    assert tokyo.timezone == "Asia/Tokyo"


def test_half_hour_zone_days_are_exact(db: Session, shop: dict) -> None:
    seller, buyer = shop["seller"], shop["buyer"]
    # Kolkata is UTC+5:30: 18:20 UTC is 23:50 on the 27th, 18:40 UTC is 00:10 on the 28th.
    sale(db, buyer, shop["a"], seller.id, "2026-11-27 18:20", 111)
    sale(db, buyer, shop["a"], seller.id, "2026-11-27 18:40", 222)
    d = analytics.seller_dashboard(session=db, seller_id=seller.id, period="7d", tz="Asia/Kolkata", now=NOW)
    by_day = {p.key: p.gross_cents for p in d.series}
    # The 28th locally: 09:10 UTC (1000) + 23:50 UTC on the 27th (1000) + the 18:40 sale (222).
    assert by_day["2026-11-28"] == 2222
    assert by_day["2026-11-27"] == 111


def test_unknown_zone_falls_back_to_utc_and_unknown_period_is_refused(db: Session, shop: dict) -> None:
    d = analytics.seller_dashboard(
        session=db, seller_id=shop["seller"].id, period="today", tz="Mars/Base", now=NOW
    )
    assert d.timezone == "UTC" and d.main.gross_cents == 1000
    with pytest.raises(analytics.UnknownPeriod):
        analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period="1y", now=NOW)


def test_currencies_are_never_added_together(db: Session, shop: dict) -> None:
    sale(db, shop["buyer"], shop["b"], shop["seller"].id, "2026-11-28 11:00", 700, currency="eur")
    d = analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period="today", tz="UTC", now=NOW)
    assert [(t.currency, t.gross_cents, t.orders) for t in d.totals] == [("usd", 1000, 1), ("eur", 700, 1)]
    assert sum(p.gross_cents for p in d.series) == 1000  # the chart is in the main currency


def test_a_seller_sees_only_their_own_sales(db: Session, shop: dict) -> None:
    mine = analytics.seller_dashboard(session=db, seller_id=shop["seller"].id, period="today", now=NOW)
    theirs = analytics.seller_dashboard(session=db, seller_id=shop["other"].id, period="today", now=NOW)
    assert [p.title for p in mine.products] == ["Alpha"]
    assert [p.title for p in theirs.products] == ["Gamma"] and theirs.main.gross_cents == 100


def test_empty_dashboard(db: Session) -> None:
    seller = create_user(db, Role.SELLER)
    d = analytics.seller_dashboard(session=db, seller_id=seller.id, period="30d", now=NOW)
    assert d.main.gross_cents == 0 and d.products == [] and len(d.series) == 30
    assert d.currency == "usd"


def test_access_rules(db: Session, shop: dict) -> None:
    seller, other, buyer = shop["seller"], shop["other"], shop["buyer"]
    assert analytics.require_seller_access(seller, seller.id) is seller
    admin = create_user(db, Role.ADMIN)
    assert analytics.require_seller_access(admin, seller.id) is admin
    for viewer in (None, buyer, other):
        with pytest.raises(PermissionDenied):
            analytics.require_seller_access(viewer, seller.id)


def test_csv_export(db: Session, shop: dict) -> None:
    seller, buyer = shop["seller"], shop["buyer"]
    sale(db, buyer, shop["a"], seller.id, "2026-11-28 11:30", 300, title='=HYPERLINK("http://x")')
    text = analytics.orders_csv(session=db, seller_id=seller.id, period="7d", tz="America/New_York", now=NOW)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["paid"] for r in rows] == ["3.00", "10.00", "10.00", "5.00"]  # newest first
    first = rows[0]
    assert first["product"].startswith("'=")  # a formula is defused
    assert first["date"] == "2026-11-28 06:30:00" and first["time_zone"] == "America/New_York"
    assert first["buyer_email"] == buyer.email
    refunded = rows[3]
    assert (refunded["status"], refunded["refunded"], refunded["net"]) == ("refunded", "5.00", "0.00")
    assert rows[2]["discount"] == "2.00" and rows[2]["price"] == "12.00"
    assert (
        analytics.orders_csv(session=db, seller_id=shop["other"].id, period="7d", now=NOW).count("\r\n") == 2
    )


def test_csv_header_keeps_its_columns_and_adds_the_connect_money_last(db: Session, shop: dict) -> None:
    text = analytics.orders_csv(session=db, seller_id=shop["seller"].id, period="7d", now=NOW)
    assert text.split("\r\n")[0] == (
        "order_id,date,time_zone,status,product_id,product,quantity,currency,price,discount,paid,"
        "refunded,net,buyer_email,platform_fee,seller_net"
    )


def test_csv_platform_fee_and_seller_net_per_order(db: Session, shop: dict) -> None:
    seller, buyer = shop["seller"], shop["buyer"]
    order = sale(db, buyer, shop["a"], seller.id, "2026-11-28 12:00", 1000, refunded=400)
    # A destination charge: 10% fee; the $4 refund gave 40 cents of fee back and took $3.60 back.
    order.seller_account_id, order.platform_fee_cents, order.seller_share_cents = "acct_1", 100, 900
    order.application_fee_cents = 100
    order.fee_refunded_cents, order.transfer_reversed_cents = 40, 360
    order.status = "partially_refunded"
    db.add(order)
    db.flush()
    rows = list(
        csv.DictReader(
            io.StringIO(analytics.orders_csv(session=db, seller_id=seller.id, period="7d", now=NOW))
        )
    )
    by_id = {int(r["order_id"]): r for r in rows}
    mine = by_id[order.id or 0]
    assert (mine["paid"], mine["refunded"], mine["platform_fee"], mine["seller_net"]) == (
        "10.00",
        "4.00",
        "0.60",
        "5.40",
    )
    # Sales made before payouts were set up were not paid to a connected account: no fee, no net.
    assert {(r["platform_fee"], r["seller_net"]) for i, r in by_id.items() if i != order.id} == {("", "")}


def test_sale_summary_names_the_sale(db: Session, shop: dict) -> None:
    order = sale(db, shop["buyer"], shop["a"], shop["seller"].id, "2026-11-28 11:00", 1250, title="Alpha")
    assert order.id is not None
    assert (
        analytics.sale_summary(session=db, seller_id=shop["seller"].id, order_id=order.id) == "Alpha ($12.50)"
    )
    assert analytics.sale_summary(session=db, seller_id=shop["other"].id, order_id=order.id) == ""


def test_refund_summary_names_what_was_refunded_not_the_total(db: Session, shop: dict) -> None:
    order = sale(db, shop["buyer"], shop["a"], shop["seller"].id, "2026-11-28 11:00", 1250, title="Alpha")
    assert order.id is not None
    order.refunded_cents, order.status = 200, "partially_refunded"
    db.add(order)
    db.flush()
    summary = analytics.refund_summary(session=db, seller_id=shop["seller"].id, order_id=order.id)
    assert summary == f"Order #{order.id} (Alpha): $2.00 refunded"
    order.refunded_cents, order.status = 1250, "refunded"
    db.add(order)
    db.flush()
    summary = analytics.refund_summary(session=db, seller_id=shop["seller"].id, order_id=order.id)
    assert summary == f"Order #{order.id} (Alpha): $12.50 refunded in full"
    assert analytics.refund_summary(session=db, seller_id=shop["other"].id, order_id=order.id) == ""


def test_days_across_a_dst_change_are_exact(db: Session, shop: dict) -> None:
    seller, buyer = shop["seller"], shop["buyer"]
    # New York leaves DST on 1 Nov 2026 at 06:00 UTC: UTC-4 before, UTC-5 after.
    sale(db, buyer, shop["a"], seller.id, "2026-10-31 04:30", 41)  # 00:30 on 31 Oct (EDT)
    sale(db, buyer, shop["a"], seller.id, "2026-11-02 04:30", 52)  # 23:30 on 1 Nov (EST)
    d = analytics.seller_dashboard(
        session=db, seller_id=seller.id, period="30d", tz="America/New_York", now=NOW
    )
    by_day = {p.key: p.gross_cents for p in d.series}
    assert by_day["2026-10-31"] == 41 and by_day["2026-10-30"] == 0
    assert by_day["2026-11-01"] == 52 + 2000 and by_day["2026-11-02"] == 0
    assert len(d.series) == 30 and d.series[0].key == "2026-10-30"


def _figures(d: analytics.Dashboard) -> tuple:
    return (
        [
            (t.currency, t.orders, t.units, t.gross_cents, t.discount_cents, t.refunded_cents)
            for t in d.totals
        ],
        [(p.title, p.orders, p.units, p.gross_cents, p.refunded_cents) for p in d.products],
        [(p.key, p.gross_cents, p.refunded_cents, p.units) for p in d.series],
    )


def test_the_rollup_matches_a_rebuild_from_the_orders(db: Session, shop: dict) -> None:
    seller_id = shop["seller"].id
    before = {
        p: _figures(analytics.seller_dashboard(session=db, seller_id=seller_id, period=p, now=NOW))
        for p in analytics.PERIODS
    }
    analytics.rebuild_rollup(session=db, seller_id=seller_id)
    after = {
        p: _figures(analytics.seller_dashboard(session=db, seller_id=seller_id, period=p, now=NOW))
        for p in analytics.PERIODS
    }
    assert after == before
    analytics.rebuild_rollup(session=db)
    assert _figures(analytics.seller_dashboard(session=db, seller_id=shop["other"].id, now=NOW))[0] == [
        ("usd", 1, 1, 100, 0, 0)
    ]


class _FakeRefunds:
    def create(self, params: dict, options: dict | None = None) -> dict:
        return {"id": f"re_{uuid.uuid4().hex[:12]}", "status": "succeeded"}


class _FakeStripe:
    def __init__(self) -> None:
        self.v1 = type("V1", (), {"refunds": _FakeRefunds(), "payment_intents": UnchargedPaymentIntents()})()


def test_fulfilment_and_refunds_keep_the_dashboard_current(db: Session, storage) -> None:
    from quantoxbay.services import fulfillment, refunds
    from tests import stripe_payloads
    from tests.factories import create_published_product

    seller = create_user(db, Role.SELLER)
    buyer = create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, title="Live Pack", price_cents=1500)
    assert product.id is not None
    cs = stripe_payloads.checkout_session(
        db, buyer_id=buyer.id, product_id=product.id, amount=1200, discount=300
    )
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    fulfillment.fulfill_checkout(session=db, checkout_session=cs)  # a second delivery changes nothing
    d = analytics.seller_dashboard(session=db, seller_id=seller.id, period="today")
    assert (d.main.orders, d.main.gross_cents, d.main.discount_cents, d.main.refunded_cents) == (
        1,
        1200,
        300,
        0,
    )
    assert result.order_id is not None
    refunds.refund_order(
        session=db,
        gateway=StripeGateway(_FakeStripe()),
        actor=seller,
        order_id=result.order_id,
        amount_cents=500,
    )
    d = analytics.seller_dashboard(session=db, seller_id=seller.id, period="today")
    assert (d.main.gross_cents, d.main.refunded_cents, d.main.net_cents) == (1200, 500, 700)
    assert [(p.title, p.units, p.net_cents) for p in d.products] == [("Live Pack", 1, 700)]
