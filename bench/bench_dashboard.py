"""Seller dashboard speed with 1,000,000 orders across 1,000 sellers, on SQLite and PostgreSQL.

Builds its own data in a fresh database (a temp SQLite file; a fresh ``qb_test_*`` database
on the PostgreSQL server) with fast bulk inserts (executemany on SQLite, COPY on PostgreSQL):
orders spread over the last 365 days, sellers' shares skewed (Zipf, s=1: the busiest seller
has ~13% of all orders, the median ~0.03%), 5 products per seller, a few refunds and
partial refunds, some unpaid checkouts; then fills the sales rollup from them (as the
migration does; fulfillment and refunds keep it current afterwards). Then times ``analytics.seller_dashboard`` for the
90-day period (what the page computes on load and on every live push) for sellers drawn
uniformly, and separately for the ten busiest, and prints p50/p95 and the ratio to a
primary-key lookup on the same database. The orders go in in two halves and the rollup is
rebuilt (``rebuild_rollup``, the repair tool) after each, timed: at N/2 and N orders the ratio
should be near 2 (goal: at most 2.3x, linear). Last, it times the analytics
migration filling the rollup on a SQLite database of ``--migration-orders`` orders (goal: under
2 minutes for 1,000,000).

    python -m bench.bench_dashboard                       # both backends
    python -m bench.bench_dashboard --backend sqlite --orders 1000000 --migration-orders 0
    TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python -m bench.bench_dashboard --backend postgresql
"""

from __future__ import annotations

import argparse
import bisect
import importlib.util
import io
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from bench._harness import p95_ms, timed_ms
from quantoxbay.db import make_engine
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Order
from quantoxbay.services import analytics

BUDGET_MS = 100.0
REBUILD_RATIO_GOAL = 2.3
MIGRATION_BUDGET_S = 120.0
MIGRATION = Path(__file__).resolve().parent.parent / "alembic/versions/20261130_c3analytics_analytics.py"
SELLERS = 1000
BUYERS = 2000
PRODUCTS_PER_SELLER = 5
NOW = datetime.now(UTC)
CLOSING: list[
    str
] = []  # rebuild and migration figures, repeated last (make bench's summary shows the last lines)


def _sqlite_ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # what SQLAlchemy writes for DateTime on SQLite


def _rows(n: int, seed: int, first_id: int = 1) -> Iterator[tuple]:
    """(order_id, buyer_id, status, total, refunded, created_at, seller_id, product_id) per order."""
    rng = random.Random(seed)
    weights = list(itertools.accumulate(1 / rank for rank in range(1, SELLERS + 1)))
    total_weight = weights[-1]
    for order_id in range(first_id, first_id + n):
        seller_idx = bisect.bisect_left(weights, rng.random() * total_weight)
        seller_id = BUYERS + 1 + seller_idx
        product_id = seller_idx * PRODUCTS_PER_SELLER + rng.randrange(PRODUCTS_PER_SELLER) + 1
        created = NOW - timedelta(seconds=rng.randrange(365 * 86400))
        total = rng.choice([499, 999, 1200, 1999, 2900, 4900])
        roll = rng.random()
        if roll < 0.02:
            status, refunded = "refunded", total
        elif roll < 0.03:
            status, refunded = "partially_refunded", total // 3
        elif roll < 0.05:
            status, refunded = "pending", 0
        else:
            status, refunded = "paid", 0
        yield order_id, rng.randrange(1, BUYERS + 1), status, total, refunded, created, seller_id, product_id


def _users_and_products() -> tuple[list[tuple], list[tuple]]:
    users: list[tuple[int, str, str, str | None]] = [
        (i, f"b{i}@bench.test", "buyer", None) for i in range(1, BUYERS + 1)
    ]
    users += [(BUYERS + 1 + s, f"s{s}@bench.test", "seller", f"seller-{s}") for s in range(SELLERS)]
    products = [
        (s * PRODUCTS_PER_SELLER + k + 1, BUYERS + 1 + s, f"Product {s}-{k}")
        for s in range(SELLERS)
        for k in range(PRODUCTS_PER_SELLER)
    ]
    return users, products


def build_sqlite(url: str, n: int, rollup: bool = True) -> bool:
    upgrade_to_head(url)
    engine = make_engine(url)
    users, products = _users_and_products()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        now = _sqlite_ts(NOW)
        cur.executemany(
            'INSERT INTO "user" (id, email, password_hash, role, display_name, handle, disabled, '
            "failed_login_count, created_at) VALUES (?, ?, 'x', ?, '', ?, 0, 0, ?)",
            [(*u, now) for u in users],
        )
        cur.executemany(
            "INSERT INTO product (id, seller_id, title, slug, description, price_cents, currency, "
            "pay_what_you_want, category, tags, status, unpublished_reason, sales_count, created_at, updated_at) "
            "VALUES (?, ?, ?, '', '', 999, 'usd', 0, '', '', 'published', '', 0, ?, ?)",
            [(*p, now, now) for p in products],
        )
        raw.commit()
    finally:
        raw.close()
    ok = True
    if rollup:
        ok = fill_in_halves(engine, n, "SQLite", add_orders_sqlite)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        add_orders_sqlite(engine, _rows(n, 7))
    engine.dispose()
    return ok


def add_orders_sqlite(engine: Engine, rows: Iterator[tuple]) -> None:
    """Insert orders (and their one item each), then ANALYZE."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        batch_o: list[tuple] = []
        batch_i: list[tuple] = []

        def flush() -> None:
            cur.executemany(
                'INSERT INTO "order" (id, buyer_id, status, currency, subtotal_cents, discount_cents, total_cents, '
                "refunded_cents, promo_code, stripe_session_id, created_at, paid_at) "
                "VALUES (?, ?, ?, 'usd', ?, 0, ?, ?, '', ?, ?, ?)",
                batch_o,
            )
            cur.executemany(
                "INSERT INTO order_item (id, order_id, product_id, seller_id, title, quantity, unit_price_cents, "
                "discount_cents, total_cents, created_at) VALUES (?, ?, ?, ?, 'Product', 1, ?, 0, ?, ?)",
                batch_i,
            )
            batch_o.clear()
            batch_i.clear()

        for oid, buyer, status, total, refunded, created, seller, product in rows:
            ts = _sqlite_ts(created)
            batch_o.append((oid, buyer, status, total, total, refunded, f"cs_bench_{oid}", ts, ts))
            batch_i.append((oid, oid, product, seller, total, total, ts))
            if len(batch_o) >= 50_000:
                flush()
        flush()
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def build_postgres(url: str, n: int) -> bool:
    upgrade_to_head(url)
    engine = make_engine(url)
    users, products = _users_and_products()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy('COPY "user" (id, email, password_hash, role, display_name, handle, disabled, '
                      "failed_login_count, created_at) FROM STDIN") as copy:  # fmt: skip
            for uid, email, role, handle in users:
                copy.write_row((uid, email, "x", role, "", handle, False, 0, NOW))
        with cur.copy("COPY product (id, seller_id, title, slug, description, price_cents, currency, "
                      "pay_what_you_want, category, tags, status, unpublished_reason, sales_count, created_at, "
                      "updated_at) FROM STDIN") as copy:  # fmt: skip
            for pid, seller, title in products:
                copy.write_row(
                    (pid, seller, title, "", "", 999, "usd", False, "", "", "published", "", 0, NOW, NOW)
                )
        raw.commit()
    finally:
        raw.close()
    ok = fill_in_halves(engine, n, "PostgreSQL", add_orders_postgres)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return ok


def add_orders_postgres(engine: Engine, rows: Iterator[tuple]) -> None:
    """COPY orders (and their one item each) in, then VACUUM ANALYZE."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        orders = io.StringIO()
        items = io.StringIO()
        for oid, buyer, status, total, refunded, created, seller, product in rows:
            ts = created.isoformat()
            orders.write(
                f"{oid}\t{buyer}\t{status}\tusd\t{total}\t0\t{total}\t{refunded}\t\tcs_bench_{oid}\t{ts}\t{ts}\n"
            )
            items.write(f"{oid}\t{oid}\t{product}\t{seller}\tProduct\t1\t{total}\t0\t{total}\t{ts}\n")
        orders.seek(0)
        items.seek(0)
        with cur.copy('COPY "order" (id, buyer_id, status, currency, subtotal_cents, discount_cents, total_cents, '
                      "refunded_cents, promo_code, stripe_session_id, created_at, paid_at) FROM STDIN") as copy:  # fmt: skip
            while chunk := orders.read(1 << 20):
                copy.write(chunk)
        with cur.copy("COPY order_item (id, order_id, product_id, seller_id, title, quantity, unit_price_cents, "
                      "discount_cents, total_cents, created_at) FROM STDIN") as copy:  # fmt: skip
            while chunk := items.read(1 << 20):
                copy.write(chunk)
        for table, column in (("user", "id"), ("product", "id"), ("order", "id"), ("order_item", "id")):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), (SELECT max({column}) FROM \"{table}\"))"
            )
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def _time_rebuild(engine: Engine, repeats: int = 2) -> float:
    """Seconds for ``rebuild_rollup`` of every seller, committed (best of ``repeats``: a shared machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with Session(engine) as session:
            analytics.rebuild_rollup(session=session)
            session.commit()
        times.append(time.perf_counter() - start)
    return min(times)


def fill_in_halves(
    engine: Engine, n: int, label: str, add_orders: Callable[[Engine, Iterator[tuple]], None]
) -> bool:
    """Add n orders in two halves and rebuild the rollup (what the migration's backfill does) after
    each: the rebuild at n/2 and at n orders, linear when the ratio is near 2."""
    half = n // 2
    add_orders(engine, _rows(half, 7))
    single = _time_rebuild(engine)
    add_orders(engine, _rows(n - half, 8, first_id=half + 1))
    double = _time_rebuild(engine)
    ratio = double / single
    ok = ratio <= REBUILD_RATIO_GOAL
    CLOSING.append(
        f"{label} rollup rebuild: {half:,} orders {single:.2f} s, {n:,} orders {double:.2f} s, "
        f"ratio {ratio:.2f}x; goal <= {REBUILD_RATIO_GOAL}x: {'OK' if ok else 'OVER'}"
    )
    print(CLOSING[-1], flush=True)
    return ok


def migration_sqlite(n: int) -> bool:
    """The analytics migration (creates the rollup and fills it from the orders) on an n-order SQLite
    database: the schema at head with the migration's own tables dropped, then its ``upgrade()``."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'migration.db'}"
        start = time.perf_counter()
        build_sqlite(url, n, rollup=False)
        print(f"built SQLite data for the migration ({n:,} orders) in {time.perf_counter() - start:.1f}s")
        spec = importlib.util.spec_from_file_location("c3analytics", MIGRATION)
        assert spec is not None and spec.loader is not None
        revision = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(revision)
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE admin_action"))
                conn.execute(text("DROP TABLE sales_rollup"))
            start = time.perf_counter()
            with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
                revision.upgrade()
            seconds = time.perf_counter() - start
            with engine.connect() as conn:
                cells, orders = conn.execute(text("SELECT COUNT(*), SUM(orders) FROM sales_rollup")).one()
        finally:
            engine.dispose()
    ok = seconds < MIGRATION_BUDGET_S
    CLOSING.append(
        f"SQLite analytics migration, {n:,} orders: {seconds:.1f} s ({cells:,} rollup rows, {orders:,} paid "
        f"orders); goal < {MIGRATION_BUDGET_S:.0f} s: {'OK' if ok else 'OVER'}"
    )
    print(CLOSING[-1])
    return ok


def run(url: str, n: int, label: str, samples: int) -> bool:
    engine = make_engine(url)
    rng = random.Random(3)
    with Session(engine) as session:

        def pk() -> None:
            session.scalars(select(Order).where(col(Order.id) == rng.randrange(1, n))).first()

        def dashboard(seller_id: int, period: str = "90d", tz: str = "Europe/Paris") -> Callable[[], object]:
            return lambda: analytics.seller_dashboard(
                session=session, seller_id=seller_id, period=period, tz=tz
            )

        sellers = [BUYERS + 1 + rng.randrange(SELLERS) for _ in range(samples)]
        busiest = [BUYERS + 1 + i for i in range(10)]
        for s in sellers[:20] + busiest:  # warm caches and plans
            dashboard(s)()
        pk_samples = timed_ms(pk, 1000)
        pk_p50 = statistics.median(pk_samples)
        uniform = [timed_ms(dashboard(s), 1)[0] for s in sellers]
        top = [t for s in busiest for t in timed_ms(dashboard(s), 3)]
        d = analytics.seller_dashboard(session=session, seller_id=sellers[0], period="90d")
        big = analytics.seller_dashboard(session=session, seller_id=busiest[0], period="90d")
        print(f"\n== {label}: {n:,} orders, {SELLERS:,} sellers ({url.split('@')[-1]}) ==")
        print(f"typical seller: {d.main.orders} orders in 90 days; busiest: {big.main.orders}")
        print(f"{'query':38s} {'p50 ms':>8s} {'p95 ms':>8s} {'p50/pk':>8s}")
        for name, values in (
            (f"90-day dashboard, {samples} random sellers", uniform),
            ("90-day dashboard, 10 busiest sellers", top),
        ):
            p50 = statistics.median(values)
            print(f"{name:38s} {p50:8.2f} {p95_ms(values):8.2f} {p50 / pk_p50:8.1f}")
        for period in ("today", "30d", "all"):
            values = [timed_ms(dashboard(s, period), 1)[0] for s in sellers[:100]]
            print(
                f"{period + ' dashboard, 100 random sellers':38s} {statistics.median(values):8.2f} {p95_ms(values):8.2f}"
            )
        print(f"{'primary-key lookup':38s} {pk_p50:8.3f} {p95_ms(pk_samples):8.3f} {1.0:8.1f}")
        p95 = p95_ms(uniform)
        ok = p95 < BUDGET_MS
        print(
            f"90-day dashboard: p50 {statistics.median(uniform):.2f} ms, p95 {p95:.2f} ms, "
            f"ratio p50/pk {statistics.median(uniform) / pk_p50:.1f}x; budget p95 < {BUDGET_MS:.0f} ms: "
            f"{'OK' if ok else 'OVER'}"
        )
    engine.dispose()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=400, help="random sellers timed")
    parser.add_argument(
        "--migration-orders",
        type=int,
        default=1_000_000,
        help="orders in the SQLite database the analytics migration fills the rollup from (0: skip)",
    )
    args = parser.parse_args()
    ok = True
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            start = time.perf_counter()
            ok &= build_sqlite(url, args.orders)
            print(f"built SQLite data in {time.perf_counter() - start:.1f}s")
            ok &= run(url, args.orders, "SQLite", args.samples)
    if args.backend in ("postgresql", "both"):
        from tests.support import servers

        url, drop = servers.fresh_postgres_database(servers.postgres_url())
        try:
            start = time.perf_counter()
            ok &= build_postgres(url, args.orders)
            print(f"built PostgreSQL data in {time.perf_counter() - start:.1f}s")
            ok &= run(url, args.orders, "PostgreSQL", args.samples)
        finally:
            drop()
    if args.migration_orders and args.backend in ("sqlite", "both"):
        ok &= migration_sqlite(args.migration_orders)
    print("\n" + "\n".join(CLOSING))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
