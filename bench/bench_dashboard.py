"""Seller dashboard speed with 1,000,000 orders across 1,000 sellers, on SQLite and PostgreSQL.

Builds its own data in a fresh database (a temp SQLite file; a fresh ``qb_test_*`` database
on the PostgreSQL server) with fast bulk inserts (executemany on SQLite, COPY on PostgreSQL):
orders spread over the last 365 days, sellers' shares skewed (Zipf, s=1: the busiest seller
has ~13% of all orders, the median ~0.03%), 5 products per seller, a few refunds and
partial refunds, some unpaid checkouts; then fills the sales rollup from them (as the
migration does; fulfillment and refunds keep it current afterwards). Then times ``analytics.seller_dashboard`` for the
90-day period (what the page computes on load and on every live push) for sellers drawn
uniformly, and separately for the ten busiest, and prints p50/p95 and the ratio to a
primary-key lookup on the same database.

    python -m bench.bench_dashboard                       # both backends
    python -m bench.bench_dashboard --backend sqlite --orders 1000000
    TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python -m bench.bench_dashboard --backend postgresql
"""

from __future__ import annotations

import argparse
import bisect
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

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench._harness import p95_ms, timed_ms
from quantoxbay.db import make_engine
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Order
from quantoxbay.services import analytics

BUDGET_MS = 100.0
SELLERS = 1000
BUYERS = 2000
PRODUCTS_PER_SELLER = 5
NOW = datetime.now(UTC)


def _sqlite_ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # what SQLAlchemy writes for DateTime on SQLite


def _rows(n: int, seed: int) -> Iterator[tuple]:
    """(order_id, buyer_id, status, total, refunded, created_at, seller_id, product_id) per order."""
    rng = random.Random(seed)
    weights = list(itertools.accumulate(1 / rank for rank in range(1, SELLERS + 1)))
    total_weight = weights[-1]
    for order_id in range(1, n + 1):
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
    users = [(i, f"b{i}@bench.test", "buyer", None) for i in range(1, BUYERS + 1)]
    users += [(BUYERS + 1 + s, f"s{s}@bench.test", "seller", f"seller-{s}") for s in range(SELLERS)]
    products = [
        (s * PRODUCTS_PER_SELLER + k + 1, BUYERS + 1 + s, f"Product {s}-{k}")
        for s in range(SELLERS)
        for k in range(PRODUCTS_PER_SELLER)
    ]
    return users, products


def _rollup(engine: Engine) -> None:
    """What the migration's backfill does (fulfillment keeps it up to date from then on)."""
    start = time.perf_counter()
    with Session(engine) as session:
        analytics.rebuild_rollup(session=session)
        session.commit()
    print(f"rollup built in {time.perf_counter() - start:.1f}s")


def build_sqlite(url: str, n: int) -> None:
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

        for oid, buyer, status, total, refunded, created, seller, product in _rows(n, 7):
            ts = _sqlite_ts(created)
            batch_o.append((oid, buyer, status, total, total, refunded, f"cs_bench_{oid}", ts, ts))
            batch_i.append((oid, oid, product, seller, total, total, ts))
            if len(batch_o) >= 50_000:
                flush()
        flush()
        raw.commit()
    finally:
        raw.close()
    _rollup(engine)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    engine.dispose()


def build_postgres(url: str, n: int) -> None:
    upgrade_to_head(url)
    engine = make_engine(url)
    users, products = _users_and_products()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy('COPY "user" (id, email, password_hash, role, display_name, handle, disabled, '  # type: ignore[attr-defined]
                      "failed_login_count, created_at) FROM STDIN") as copy:  # fmt: skip
            for uid, email, role, handle in users:
                copy.write_row((uid, email, "x", role, "", handle, False, 0, NOW))
        with cur.copy("COPY product (id, seller_id, title, slug, description, price_cents, currency, "  # type: ignore[attr-defined]
                      "pay_what_you_want, category, tags, status, unpublished_reason, sales_count, created_at, "
                      "updated_at) FROM STDIN") as copy:  # fmt: skip
            for pid, seller, title in products:
                copy.write_row(
                    (pid, seller, title, "", "", 999, "usd", False, "", "", "published", "", 0, NOW, NOW)
                )
        orders = io.StringIO()
        items = io.StringIO()
        for oid, buyer, status, total, refunded, created, seller, product in _rows(n, 7):
            ts = created.isoformat()
            orders.write(
                f"{oid}\t{buyer}\t{status}\tusd\t{total}\t0\t{total}\t{refunded}\t\tcs_bench_{oid}\t{ts}\t{ts}\n"
            )
            items.write(f"{oid}\t{oid}\t{product}\t{seller}\tProduct\t1\t{total}\t0\t{total}\t{ts}\n")
        orders.seek(0)
        items.seek(0)
        with cur.copy('COPY "order" (id, buyer_id, status, currency, subtotal_cents, discount_cents, total_cents, '  # type: ignore[attr-defined]
                      "refunded_cents, promo_code, stripe_session_id, created_at, paid_at) FROM STDIN") as copy:  # fmt: skip
            while chunk := orders.read(1 << 20):
                copy.write(chunk)
        with cur.copy("COPY order_item (id, order_id, product_id, seller_id, title, quantity, unit_price_cents, "  # type: ignore[attr-defined]
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
    _rollup(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def run(url: str, n: int, label: str, samples: int) -> bool:
    engine = make_engine(url)
    rng = random.Random(3)
    with Session(engine) as session:

        def pk() -> None:
            session.exec(select(Order).where(Order.id == rng.randrange(1, n))).first()  # type: ignore[call-overload]

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
    args = parser.parse_args()
    ok = True
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            start = time.perf_counter()
            build_sqlite(url, args.orders)
            print(f"built SQLite data in {time.perf_counter() - start:.1f}s")
            ok &= run(url, args.orders, "SQLite", args.samples)
    if args.backend in ("postgresql", "both"):
        from tests.support import servers

        url, drop = servers.fresh_postgres_database(servers.postgres_url())
        try:
            start = time.perf_counter()
            build_postgres(url, args.orders)
            print(f"built PostgreSQL data in {time.perf_counter() - start:.1f}s")
            ok &= run(url, args.orders, "PostgreSQL", args.samples)
        finally:
            drop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
