"""Query plans of the rollup rebuild and the seller dashboard: no full scan inside a join.

Timings on a shared machine are noise; plans are not. The statements these functions really
send are captured and explained (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN (FORMAT
JSON)``) over enough analysed rows for the planners to choose as they would in a real shop. A
table scanned again for every row of another (SQLite ``SCAN x`` after an earlier loop of the
same join, or inside a correlated subquery; PostgreSQL a Seq Scan of a big table on the inner
side of a Nested Loop, or in a per-row SubPlan) makes the statement quadratic: the rebuild did
that with a materialised ``MIN(id) ... GROUP BY`` table and hung the migration on large shops.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, text
from sqlmodel import Session

from quantoxbay.models import Order, OrderItem, Role, SalesRollup
from quantoxbay.services import analytics, catalog
from tests.factories import create_user

ORDERS = 20_000
BIG_TABLE_ROWS = 1_000  # a Seq Scan repeated per row is harmless only on tables smaller than this
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(db: Session) -> dict[str, Any]:
    """Three sellers with two products each, and one buyer."""
    sellers = [create_user(db, Role.SELLER) for _ in range(3)]
    products = [
        (
            seller.id,
            catalog.create_product(session=db, seller_id=seller.id, title=f"P{k}", price_cents=999).id,
        )
        for seller in sellers
        for k in range(2)
    ]
    return {"seller": sellers[0].id, "buyer": create_user(db, Role.BUYER).id, "products": products}


def add_sales(db: Session, shop: dict[str, Any], count: int, first_order_id: int, before: datetime) -> None:
    """``count`` paid orders in the 200 days up to ``before`` (one in ten with items of two sellers)
    and their rollup rows, written directly (the statements under test are only explained on
    this volume, never run)."""
    rng = random.Random(first_order_id)
    orders: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    rollup: dict[tuple[int, int, int], dict[str, Any]] = {}
    for order_id in range(first_order_id, first_order_id + count):
        created = before - timedelta(minutes=rng.randrange(1, 200 * 24 * 60))
        picked = rng.sample(shop["products"], 2 if order_id % 10 == 0 else 1)
        refunded = 300 if order_id % 25 == 0 else 0
        orders.append(
            {"id": order_id, "buyer_id": shop["buyer"], "status": "partially_refunded" if refunded else "paid",
             "currency": "usd", "subtotal_cents": 1000 * len(picked), "discount_cents": 0,
             "total_cents": 1000 * len(picked), "refunded_cents": refunded, "promo_code": "",
             "stripe_session_id": f"cs_plan_{uuid.uuid4().hex}", "created_at": created, "paid_at": created}
        )  # fmt: skip
        for seller_id, product_id in picked:
            items.append(
                {"order_id": order_id, "product_id": product_id, "seller_id": seller_id, "title": "P",
                 "quantity": 1, "unit_price_cents": 1000, "discount_cents": 0, "total_cents": 1000,
                 "created_at": created}
            )  # fmt: skip
            key = (seller_id, analytics.slot_of(created), product_id)
            cell = rollup.setdefault(
                key, {"seller_id": seller_id, "slot": key[1], "product_id": product_id, "currency": "usd",
                      "orders": 0, "items": 0, "units": 0, "gross_cents": 0, "discount_cents": 0,
                      "refunded_cents": 0}
            )  # fmt: skip
            for column in ("orders", "items", "units"):
                cell[column] += 1
            cell["gross_cents"] += 1000
    conn = db.connection()
    conn.execute(insert(Order.__table__), orders)  # type: ignore[attr-defined]
    conn.execute(insert(OrderItem.__table__), items)  # type: ignore[attr-defined]
    conn.execute(insert(SalesRollup.__table__), list(rollup.values()))  # type: ignore[attr-defined]


@contextmanager
def captured(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    """The (statement, parameters) sent to the driver meanwhile, as the driver received them."""
    statements: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if not executemany:
            statements.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(conn, "before_cursor_execute", record)


def sqlite_problems(conn: Connection, statement: str, parameters: Any) -> list[str]:
    rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    children: dict[int, list[tuple[int, str]]] = {}
    for node_id, parent, _unused, detail in rows:
        children.setdefault(parent, []).append((node_id, detail))
    problems: list[str] = []

    def walk(parent: int, correlated: bool) -> None:
        loops_before = 0
        for node_id, detail in children.get(parent, []):
            is_loop = detail.startswith(("SCAN ", "SEARCH "))
            full_scan = detail.startswith("SCAN ") and not detail.startswith("SCAN CONSTANT ROW")
            if full_scan and loops_before:
                problems.append(f"{detail!r} runs once per row of the loops before it")
            elif full_scan and correlated:
                problems.append(f"{detail!r} runs once per row, in a correlated subquery")
            loops_before += is_loop
            walk(node_id, correlated or detail.startswith("CORRELATED"))

    walk(0, False)
    return problems


def postgres_problems(conn: Connection, statement: str, parameters: Any) -> list[str]:
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()[0]["Plan"]
    sizes = dict(conn.execute(text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")).all())
    problems: list[str] = []

    def walk(node: dict[str, Any], repeated: str | None) -> None:
        relation = node.get("Relation Name")
        if node["Node Type"] == "Seq Scan" and repeated and sizes.get(relation, 0) >= BIG_TABLE_ROWS:
            problems.append(f"Seq Scan on {relation} ({sizes[relation]:.0f} rows) {repeated}")
        for child in node.get("Plans", []):
            inner = (
                node["Node Type"] == "Nested Loop" and child.get("Parent Relationship") == "Inner"
            ) or child.get("Parent Relationship") == "SubPlan"
            walk(child, repeated or ("once per outer row" if inner else None))

    walk(plan, None)
    return problems


def full_scans_in_joins(db: Session, shop: dict[str, Any], run: Callable[[], object]) -> dict[str, list[str]]:
    """{statement: its problems} for every statement ``run`` sends that has any, explained once the
    tables hold ORDERS orders and are analysed (``run`` itself runs on a few dozen)."""
    add_sales(db, shop, 50, first_order_id=1_000_000, before=NOW - timedelta(days=365))
    conn = db.connection()
    with captured(conn) as statements:
        run()
    assert statements, "nothing was sent to the database"
    add_sales(db, shop, ORDERS, first_order_id=2_000_000, before=NOW)
    conn.execute(text("ANALYZE"))
    check = sqlite_problems if conn.dialect.name == "sqlite" else postgres_problems
    found = {}
    for statement, parameters in statements:
        if problems := check(conn, statement, parameters):
            found[" ".join(statement.split())] = problems
    return found


def assert_linear(found: dict[str, list[str]]) -> None:
    assert not found, "\n\n".join(f"{statement}\n  " + "\n  ".join(p) for statement, p in found.items())


def test_the_rollup_rebuild_never_scans_a_table_per_row(db: Session, shop: dict[str, Any]) -> None:
    def rebuild() -> None:
        analytics.rebuild_rollup(session=db)
        analytics.rebuild_rollup(session=db, seller_id=shop["seller"])

    assert_linear(full_scans_in_joins(db, shop, rebuild))


def test_the_seller_dashboard_never_scans_a_table_per_row(db: Session, shop: dict[str, Any]) -> None:
    def dashboards() -> None:
        for period in analytics.PERIODS:
            analytics.seller_dashboard(
                session=db, seller_id=shop["seller"], period=period, tz="Europe/Paris", now=NOW
            )

    assert_linear(full_scans_in_joins(db, shop, dashboards))
