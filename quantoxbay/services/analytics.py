"""Seller analytics: revenue (gross, refunds, net), orders, units per product, charts, CSV export.

Figures come from a rollup, ``sales_rollup``: one row per seller, product, currency and
15-minute UTC slot, updated in the same transaction that pays an order (fulfillment's
``_grant`` calls ``record_sales``) or changes its refunded total (refunds calls
``record_refund``). A dashboard reads one seller's slots from a covering index (contiguous,
no lookups into the order tables) and groups them in the database by product, currency and
local day or hour: the zone's offset is applied per DST segment (``_offset_segments``), exact
in every zone since all offsets are multiples of 15 minutes. ``rebuild_rollup`` recomputes it
from the orders (repairs; the migration's backfill). ``bench/bench_dashboard.py`` measures it
with 1,000,000 orders; the CSV export reads the orders themselves (``ix_order_item_seller_created``).

Definitions (shown on the dashboard, checked by tests/unit/test_analytics.py):

* a sale counts when its order was paid (statuses in ``COUNTED_STATUSES``);
  pending, failed and expired checkouts never count;
* gross = what buyers paid for the seller's items, after discounts (``OrderItem.total_cents``);
  discounts are reported beside it;
* refunds = the order's ``refunded_cents`` shared among its items in proportion to
  their totals (orders hold one item today), attributed to the day of the sale;
* net = gross - refunds;
* periods are calendar days in the seller's zone: "today" from local midnight,
  "7d" today and the six days before, and so on; "all" has no start.

Times are stored in UTC; ``tz`` is an IANA zone name (the browser's); unknown zones fall back to UTC.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, case, delete, func, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from quantoxbay.constants import PERIODS as PERIODS
from quantoxbay.models import Order, OrderItem, OrderStatus, Product, SalesRollup, User
from quantoxbay.services import DomainError, PermissionDenied, ledger
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.fees import proportional_cents
from quantoxbay.services.money import format_amount

COUNTED_STATUSES = (
    OrderStatus.PAID.value,
    OrderStatus.REFUNDED.value,
    OrderStatus.PARTIALLY_REFUNDED.value,
    OrderStatus.DISPUTED.value,
)
_PERIOD_DAYS = {"today": 1, "7d": 7, "30d": 30, "90d": 90}
TOP_PRODUCTS = 5
CSV_MAX_ROWS = 100_000


class UnknownPeriod(DomainError):
    """The period is not one of PERIODS."""


@dataclass
class Totals:
    """Revenue figures in one currency."""

    currency: str
    orders: int = 0
    units: int = 0
    gross_cents: int = 0
    discount_cents: int = 0
    refunded_cents: int = 0

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.refunded_cents


@dataclass
class ProductFigures:
    product_id: int
    title: str
    currency: str
    orders: int = 0
    units: int = 0
    gross_cents: int = 0
    refunded_cents: int = 0

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.refunded_cents


@dataclass
class Point:
    """One bar of the revenue chart (in the dashboard's main currency)."""

    key: str  # "2026-11-28", "2026-11-28T14" or "2026-11"
    label: str  # "28 Nov", "14:00", "Nov 2026"
    gross_cents: int = 0
    refunded_cents: int = 0
    units: int = 0

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.refunded_cents


@dataclass
class Dashboard:
    seller_id: int
    period: str
    timezone: str
    start: datetime | None  # UTC, inclusive; None for all time
    end: datetime  # UTC, exclusive
    bucket: str  # "hour" | "day" | "month"
    currency: str  # the main currency: the one with the most gross (the chart's)
    totals: list[Totals] = field(default_factory=list)  # main currency first
    products: list[ProductFigures] = field(default_factory=list)  # by net, then units
    series: list[Point] = field(default_factory=list)

    @property
    def main(self) -> Totals:
        return self.totals[0] if self.totals else Totals(currency=self.currency)

    @property
    def top_products(self) -> list[ProductFigures]:
        return self.products[:TOP_PRODUCTS]


def zone(tz: str | None) -> ZoneInfo:
    """The IANA zone, or UTC when unknown or empty."""
    try:
        return ZoneInfo(tz) if tz else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def require_seller_access(viewer: UserPublic | None, seller_id: int) -> UserPublic:
    """A seller sees only their own figures; admins may see anyone's."""
    if viewer is None:
        raise PermissionDenied("Please log in first.")
    if viewer.is_admin or (viewer.is_seller and viewer.id == seller_id):
        return viewer
    raise PermissionDenied("You can only see your own sales.")


def period_bounds(
    period: str, tz: str | None, now: datetime | None = None
) -> tuple[datetime | None, datetime]:
    """(start, end) in UTC for a period in the zone: whole local days, end = next local midnight."""
    if period not in PERIODS:
        raise UnknownPeriod(f"Choose one of: {', '.join(PERIODS.values())}.")
    zi = zone(tz)
    local_now = (now or datetime.now(UTC)).astimezone(zi)
    today = local_now.date()
    end = _local_midnight(today + timedelta(days=1), zi)
    if period == "all":
        return None, end
    start = _local_midnight(today - timedelta(days=_PERIOD_DAYS[period] - 1), zi)
    return start, end


def _local_midnight(day: date, zi: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zi).astimezone(UTC)


def _offset_segments(zi: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """[(from, UTC offset in seconds)] covering [start, end): where the zone's offset changes (DST)."""

    def offset(moment: datetime) -> int:
        return int(moment.astimezone(zi).utcoffset().total_seconds())  # type: ignore[union-attr]

    segments = [(start, offset(start))]
    day = start
    while day < end:
        nxt = min(day + timedelta(days=1), end)
        if offset(nxt) != segments[-1][1]:
            lo, hi = day, nxt  # the change is in (lo, hi]: find it to the minute
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if offset(mid) == segments[-1][1] else (lo, mid)
            segments.append((hi.replace(second=0, microsecond=0), offset(hi)))
        day = nxt
    return segments


def _local_bucket(segments: list[tuple[datetime, int]], unit: int):
    """The slot's local hour or day number ((UTC seconds + the zone's offset) // unit), in SQL.

    The offset is applied per DST segment, so grouping happens in the database and hands back
    one row per local day (or hour) and product, however many sales the seller has.
    """
    slot = col(SalesRollup.slot)
    if len(segments) == 1:
        return (slot + segments[0][1]) // unit
    whens = [
        (slot < int(nxt.timestamp()), (slot + off) // unit)
        for (_f, off), (nxt, _o) in itertools.pairwise(segments)
    ]
    return case(*whens, else_=(slot + segments[-1][1]) // unit)


def _filters(seller_id: int, start: datetime | None, end: datetime) -> list:
    clauses = [
        OrderItem.seller_id == seller_id,
        OrderItem.created_at < end,
        col(Order.status).in_(COUNTED_STATUSES),
    ]
    if start is not None:
        clauses.append(OrderItem.created_at >= start)
    return clauses


def _refund_share():
    """The item's share of the order's refunds (integer cents, in proportion to totals)."""
    return case(
        (col(Order.total_cents) > 0, Order.refunded_cents * OrderItem.total_cents // Order.total_cents),
        else_=0,
    )


def seller_dashboard(
    *,
    session: Session,
    seller_id: int,
    period: str = "30d",
    tz: str | None = "UTC",
    now: datetime | None = None,
) -> Dashboard:
    """The seller's figures for a period, in their zone, from the rollup. The caller has checked who may see them."""
    now = now or datetime.now(UTC)
    start, end = period_bounds(period, tz, now)
    zi = zone(tz)
    kind = "hour" if period == "today" else "day"
    first = start if start is not None else _first_sale(session, seller_id, end)
    unit = 3600 if kind == "hour" else 86400
    bucket = _local_bucket(_offset_segments(zi, first, end), unit).label("bucket")
    clauses = [SalesRollup.seller_id == seller_id, SalesRollup.slot < int(end.timestamp())]
    if start is not None:
        clauses.append(SalesRollup.slot >= int(start.timestamp()))
    rows = session.exec(
        select(  # type: ignore[call-overload]
            SalesRollup.product_id,
            SalesRollup.currency,
            bucket,
            func.sum(SalesRollup.items),
            func.sum(SalesRollup.units),
            func.sum(SalesRollup.gross_cents),
            func.sum(SalesRollup.discount_cents),
            func.sum(SalesRollup.refunded_cents),
            func.sum(SalesRollup.orders),
        )
        .where(*clauses)
        .group_by(SalesRollup.product_id, SalesRollup.currency, bucket)
    ).all()

    totals: dict[str, Totals] = {}
    products: dict[tuple[int, str], ProductFigures] = {}
    for product_id, currency, _bucket, items, units, gross, discount, refunded, orders in rows:
        t = totals.setdefault(currency, Totals(currency=currency))
        t.orders += int(orders or 0)
        t.units += int(units or 0)
        t.gross_cents += int(gross or 0)
        t.discount_cents += int(discount or 0)
        t.refunded_cents += int(refunded or 0)
        p = products.setdefault((product_id, currency), ProductFigures(product_id, "", currency))
        p.orders += int(items or 0)
        p.units += int(units or 0)
        p.gross_cents += int(gross or 0)
        p.refunded_cents += int(refunded or 0)
    ordered = sorted(totals.values(), key=lambda t: (-t.gross_cents, t.currency))
    main_currency = ordered[0].currency if ordered else _default_currency(session, seller_id)

    titles = _titles(session, {pid for pid, _ in products})
    for p in products.values():
        p.title = titles.get(p.product_id, f"Product {p.product_id}")
    product_list = sorted(
        products.values(), key=lambda p: (p.currency != main_currency, -p.net_cents, -p.units, p.title)
    )
    if period == "all" and (end - first) > timedelta(days=92):
        kind = "month"
    series = _series(kind, unit, first, end, zi, [r for r in rows if r[1] == main_currency])
    return Dashboard(
        seller_id=seller_id,
        period=period,
        timezone=zi.key,
        start=start,
        end=end,
        bucket=kind,
        currency=main_currency,
        totals=ordered,
        products=product_list,
        series=series,
    )


def _first_sale(session: Session, seller_id: int, end: datetime) -> datetime:
    first = session.exec(select(func.min(SalesRollup.slot)).where(SalesRollup.seller_id == seller_id)).one()
    if first is None:
        return end - timedelta(days=1)
    return min(datetime.fromtimestamp(int(first), UTC), end - timedelta(days=1))


def _titles(session: Session, product_ids: set[int]) -> dict[int, str]:
    if not product_ids:
        return {}
    rows = session.exec(select(col(Product.id), Product.title).where(col(Product.id).in_(product_ids)))
    return {product_id: title for product_id, title in rows if product_id is not None}


def _default_currency(session: Session, seller_id: int) -> str:
    currency = session.exec(select(Product.currency).where(Product.seller_id == seller_id).limit(1)).first()
    return currency or "usd"


def _key(local: datetime, kind: str) -> tuple[str, str]:
    """(sort key, label) of the hour/day/month holding a naive local time."""
    if kind == "hour":
        return local.strftime("%Y-%m-%dT%H"), local.strftime("%H:00")
    if kind == "month":
        return local.strftime("%Y-%m"), local.strftime("%b %Y")
    return local.strftime("%Y-%m-%d"), f"{local.day} {local.strftime('%b')}"


_EPOCH = datetime(1970, 1, 1)


def _series(kind: str, unit: int, start: datetime, end: datetime, zi: ZoneInfo, rows: list) -> list[Point]:
    """Every hour/day/month of the period (empty ones too), filled from the local buckets."""
    points: dict[str, Point] = {}
    first_local = start.astimezone(zi).replace(tzinfo=None)
    last_local = (end - timedelta(microseconds=1)).astimezone(zi).replace(tzinfo=None)
    step = timedelta(hours=1) if kind == "hour" else timedelta(days=1)
    cursor = first_local.replace(minute=0, second=0, microsecond=0)
    if kind != "hour":
        cursor = cursor.replace(hour=0)
    while cursor <= last_local:
        key, label = _key(cursor, kind)
        points.setdefault(key, Point(key=key, label=label))
        cursor += step
    for _pid, _cur, bucket, _items, units, gross, _discount, refunded, _orders in rows:
        key, label = _key(_EPOCH + timedelta(seconds=int(bucket) * unit), kind)
        point = points.setdefault(key, Point(key=key, label=label))
        point.gross_cents += int(gross or 0)
        point.refunded_cents += int(refunded or 0)
        point.units += int(units or 0)
    return [points[k] for k in sorted(points)]


# --- the rollup: kept up to date by fulfillment and refunds -------------------------

SLOT_SECONDS = 900
_ROLLUP_KEY = ["seller_id", "slot", "product_id", "currency"]


def slot_of(moment: datetime) -> int:
    """The 15-minute UTC slot (seconds since the epoch) holding a moment (timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError(f"slot_of needs a timezone-aware datetime, got {moment!r}")
    return int(moment.timestamp()) // SLOT_SECONDS * SLOT_SECONDS


def _bump(session: Session, key: dict, **deltas: int) -> None:
    """Add to one rollup cell, creating it when missing (an atomic upsert on both databases)."""
    table = SalesRollup.__table__  # type: ignore[attr-defined]
    values = {"orders": 0, "items": 0, "units": 0, "gross_cents": 0, "discount_cents": 0, "refunded_cents": 0}
    values |= key | deltas
    dialect = session.get_bind().dialect.name
    ins = (sqlite_insert if dialect == "sqlite" else pg_insert)(table).values(**values)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=_ROLLUP_KEY, set_={k: table.c[k] + ins.excluded[k] for k in deltas}
        )
    )


def _items(session: Session, order_id: int) -> list[OrderItem]:
    return list(
        session.exec(
            select(OrderItem).where(OrderItem.order_id == order_id).order_by(col(OrderItem.id))
        ).all()
    )


def _shares(total: int, items: list[OrderItem], amount: int) -> list[int]:
    """``amount`` split among items in proportion to their totals; the last takes the remainder."""
    if not items or total <= 0:
        return [0] * len(items)
    shares = [amount * it.total_cents // total for it in items[:-1]]
    return [*shares, amount - sum(shares)]


_SALE_DELTAS = ("orders", "items", "units", "gross_cents", "discount_cents", "refunded_cents")


@functools.cache
def _sale_upsert(dialect: str):
    """``_bump`` with every delta, built once per dialect and executed with parameters."""
    table = SalesRollup.__table__  # type: ignore[attr-defined]
    ins = (sqlite_insert if dialect == "sqlite" else pg_insert)(table)
    return ins.inline().on_conflict_do_update(
        index_elements=_ROLLUP_KEY, set_={k: table.c[k] + ins.excluded[k] for k in _SALE_DELTAS}
    )


@dataclass(frozen=True)
class Sale:
    """One item of an order that has just become paid, as the rollup counts it."""

    seller_id: int
    product_id: int
    currency: str
    created_at: datetime  # the item's: the slot it counts in
    quantity: int
    total_cents: int
    discount_cents: int
    refunded_cents: int = 0  # its share of what was refunded before the order was paid
    counts_order: bool = True  # the order's first item of this seller (an order counts once per seller)


def order_sales(order: Order, items: list[OrderItem]) -> list[Sale]:
    """An existing order's items (in id order) as the rollup counts them, for ``record_sales``."""
    seen: set[int] = set()
    sales = []
    for item, refunded in zip(items, _shares(order.total_cents, items, order.refunded_cents), strict=True):
        sales.append(
            Sale(seller_id=item.seller_id, product_id=item.product_id, currency=order.currency,
                 created_at=item.created_at, quantity=item.quantity, total_cents=item.total_cents,
                 discount_cents=item.discount_cents, refunded_cents=refunded,
                 counts_order=item.seller_id not in seen)
        )  # fmt: skip
        seen.add(item.seller_id)
    return sales


def record_sales(conn: Connection, sales: list[Sale]) -> None:
    """Add sales of orders that have just become paid to the rollup, however many (called by
    fulfillment's ``_grant`` only), on a Connection: no ORM objects. Sales in the same slot are
    summed first, so each rollup row gets one upsert, in key order (two writers never wait on
    each other in opposite order)."""
    totals: dict[tuple[int, int, int, str], list[int]] = {}
    for sale in sales:
        key = (sale.seller_id, slot_of(sale.created_at), sale.product_id, sale.currency)
        deltas = totals.setdefault(key, [0, 0, 0, 0, 0, 0])
        values = (int(sale.counts_order), 1, sale.quantity, sale.total_cents, sale.discount_cents,
                  sale.refunded_cents)  # fmt: skip
        for i, value in enumerate(values):
            deltas[i] += value
    if not totals:
        return
    conn.execute(
        _sale_upsert(conn.dialect.name),
        [dict(zip(_ROLLUP_KEY, key, strict=True)) | dict(zip(_SALE_DELTAS, deltas, strict=True))
         for key, deltas in sorted(totals.items())],
    )  # fmt: skip


def record_refund(*, session: Session, order_id: int, delta_cents: int) -> None:
    """An order's refunded total moved by ``delta_cents`` (negative when a refund failed): add it
    to the sale's slot. Orders never paid are not in the rollup and are left alone."""
    order = session.get(Order, order_id)
    if not delta_cents or order is None or order.paid_at is None:
        return
    items = _items(session, order_id)
    for item, share in zip(items, _shares(order.total_cents, items, delta_cents), strict=True):
        if share:
            _bump(
                session,
                {"seller_id": item.seller_id, "slot": slot_of(item.created_at), "product_id": item.product_id,
                 "currency": order.currency},
                refunded_cents=share,
            )  # fmt: skip


_SLOT_SQL = {
    "sqlite": "CAST(strftime('%s', oi.created_at) AS INTEGER) / 900 * 900",
    "postgresql": "CAST(floor(extract(epoch FROM oi.created_at) / 900) AS BIGINT) * 900",
}
#: ``orders`` counts an order once per seller: on the seller's first item of it (ROW_NUMBER over
#: the order's items, one sort). Not a join to ``MIN(id) ... GROUP BY``: SQLite scans such a
#: materialised table for every item (quadratic; tests/unit/test_analytics_plans.py reads the plans).
_REBUILD_SQL = """
INSERT INTO sales_rollup (seller_id, slot, product_id, currency, orders, items, units,
                          gross_cents, discount_cents, refunded_cents)
SELECT oi.seller_id, {slot}, oi.product_id, o.currency,
       SUM(oi.first_of_seller), COUNT(*), SUM(oi.quantity), SUM(oi.total_cents), SUM(oi.discount_cents),
       SUM(CASE WHEN o.total_cents > 0 THEN o.refunded_cents * oi.total_cents / o.total_cents ELSE 0 END)
FROM (SELECT order_id, seller_id, product_id, quantity, total_cents, discount_cents, created_at,
             CASE WHEN ROW_NUMBER() OVER (PARTITION BY order_id, seller_id ORDER BY id) = 1
                  THEN 1 ELSE 0 END AS first_of_seller
      FROM order_item {where}) oi
JOIN "order" o ON o.id = oi.order_id
WHERE o.status IN ('paid', 'refunded', 'partially_refunded', 'disputed')
GROUP BY oi.seller_id, {slot}, oi.product_id, o.currency
"""


def rebuild_rollup(*, session: Session, seller_id: int | None = None) -> None:
    """Recompute the rollup from the orders (all sellers, or one): the repair tool, and what the
    migration ran to fill it for orders paid before it existed."""
    stmt = delete(SalesRollup)
    if seller_id is not None:
        stmt = stmt.where(col(SalesRollup.seller_id) == seller_id)
    session.execute(stmt)
    dialect = session.get_bind().dialect.name
    sql = _REBUILD_SQL.format(
        slot=_SLOT_SQL.get(dialect, _SLOT_SQL["postgresql"]),
        where="WHERE seller_id = :seller_id" if seller_id is not None else "",
    )
    session.execute(text(sql), {"seller_id": seller_id} if seller_id is not None else {})


# --- CSV export -------------------------------------------------------------------

CSV_COLUMNS = [
    "order_id",
    "date",
    "time_zone",
    "status",
    "product_id",
    "product",
    "quantity",
    "currency",
    "price",
    "discount",
    "paid",
    "refunded",
    "net",
    "buyer_email",
    # Stripe Connect (after the original columns, so existing imports keep working): the platform's
    # fee kept (less fees refunded) and what reached the seller's Stripe account (share - reversed
    # + returned); empty for sales made before the seller had a connected account.
    "platform_fee",
    "seller_net",
]


def _cents(value: int) -> str:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), 100)
    return f"{sign}{whole}.{frac:02d}"


def _cell(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: defuse them."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def orders_csv(
    *,
    session: Session,
    seller_id: int,
    period: str = "30d",
    tz: str | None = "UTC",
    now: datetime | None = None,
) -> str:
    """The seller's counted sales in the period, one row per item, newest first."""
    start, end = period_bounds(period, tz, now)
    zi = zone(tz)
    rows = session.exec(
        select(OrderItem, Order, User.email, _refund_share())
        .join(Order, col(Order.id) == OrderItem.order_id)
        .join(User, col(User.id) == Order.buyer_id)
        .where(*_filters(seller_id, start, end))
        .order_by(col(OrderItem.created_at).desc(), col(OrderItem.id).desc())
        .limit(CSV_MAX_ROWS)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item, order, email, refunded in rows:
        currency = order.currency
        writer.writerow(
            [
                item.order_id,
                item.created_at.astimezone(zi).strftime("%Y-%m-%d %H:%M:%S"),
                zi.key,
                order.status,
                item.product_id,
                _cell(item.title),
                item.quantity,
                currency,
                _cents(item.unit_price_cents),
                _cents(item.discount_cents),
                _cents(item.total_cents),
                _cents(int(refunded or 0)),
                _cents(item.total_cents - int(refunded or 0)),
                _cell(email),
                *_connect_cells(order, item),
            ]
        )
    return out.getvalue()


def _connect_cells(order: Order, item: OrderItem) -> list[str]:
    """The item's share of the order's platform fee and of the seller's net (orders hold one item
    today, so the share is the whole); empty cells for an order that was not a destination charge."""
    if not order.seller_account_id:
        return ["", ""]
    fee = ledger.platform_fee_kept_cents(order)
    net = ledger.seller_net_cents(order)
    return [
        _cents(proportional_cents(item.total_cents, fee, order.total_cents)),
        _cents(proportional_cents(item.total_cents, net, order.total_cents)),
    ]


def csv_filename(period: str, now: datetime | None = None) -> str:
    return f"quantoxbay-orders-{period}-{(now or datetime.now(UTC)).strftime('%Y%m%d')}.csv"


def sale_summary(*, session: Session, seller_id: int, order_id: int) -> str:
    """A one-line description of the seller's part of an order, for the live toast ("" if none)."""
    rows = session.exec(
        select(OrderItem.title, OrderItem.total_cents, Order.currency)
        .join(Order, col(Order.id) == OrderItem.order_id)
        .where(OrderItem.order_id == order_id, OrderItem.seller_id == seller_id)
    ).all()
    if not rows:
        return ""
    titles = ", ".join(r[0] for r in rows)
    total = sum(int(r[1]) for r in rows)
    return f"{titles} ({format_amount(total, rows[0][2])})"


def refund_summary(*, session: Session, seller_id: int, order_id: int) -> str:
    """A one-line description of what has been refunded of an order with the seller's items, for the
    live toast: "Order #16 (Ebook): $2.00 refunded" ("" if the order has none of theirs)."""
    row = session.exec(
        select(Order.refunded_cents, Order.currency, Order.status)
        .join(OrderItem, col(OrderItem.order_id) == Order.id)
        .where(col(Order.id) == order_id, OrderItem.seller_id == seller_id)
    ).first()
    if row is None:
        return ""
    refunded, currency, status = row
    titles = ", ".join(
        session.exec(
            select(OrderItem.title).where(OrderItem.order_id == order_id, OrderItem.seller_id == seller_id)
        ).all()
    )
    in_full = " in full" if status == OrderStatus.REFUNDED.value else ""
    return f"Order #{order_id} ({titles}): {format_amount(int(refunded), currency)} refunded{in_full}"
