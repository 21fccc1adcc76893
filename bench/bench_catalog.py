"""Catalog listing/search speed with 100,000 products, on SQLite and PostgreSQL.

Builds its own data in a fresh database (a temp SQLite file; a fresh ``qb_test_*``
database on the PostgreSQL server), then times ``catalog.search_products`` for a
mix of searches, filters, sorts and deep keyset pages, and prints p50/p95 and the
ratio to a primary-key lookup on the same database.

    python -m bench.bench_catalog                       # both backends
    python -m bench.bench_catalog --backend sqlite --products 100000
    TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python -m bench.bench_catalog --backend postgresql
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlmodel import Session, col

from bench._harness import p95_ms, timed_ms
from quantoxbay.db import make_engine
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Product, User
from quantoxbay.services import catalog
from quantoxbay.services.catalog.search import Strategy

BUDGET_MS = 30.0
WORDS = [
    "guide", "template", "preset", "photo", "lightroom", "budget", "planner", "ebook", "course", "python",
    "design", "icon", "font", "music", "loop", "beat", "sample", "texture", "brush", "procreate", "notion",
    "kanban", "habit", "recipe", "fitness", "yoga", "travel", "map", "poster", "wallpaper", "mockup", "logo",
    "resume", "invoice", "spreadsheet", "finance", "crypto", "marketing", "seo", "copywriting", "novel", "poetry",
    "comic", "sticker", "svg", "3d", "blender", "unity", "godot", "shader", "audio", "podcast", "voice", "drum",
]  # fmt: skip
# A long tail of words with Zipf frequencies (rank r is drawn with weight 1/r): every
# frequency from "in most products" down to "in a handful" exists, as in real catalogs.
TAIL = [f"zq{n:04d}" for n in range(5000)]
TAIL_WEIGHTS = list(itertools.accumulate(1 / (r + 1) for r in range(len(TAIL))))


def build(url: str, n: int, seed: int = 7) -> None:
    """``n`` products by 200 sellers, 90% published, created over the last months.

    created_at mostly grows with id (as rows are inserted) but not strictly: some rows
    are back-dated (imports), so nothing may rely on id order matching date order.
    """
    upgrade_to_head(url)
    rng = random.Random(seed)
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        sellers = [
            {"email": f"s{i}@bench.test", "password_hash": "x", "role": "seller", "display_name": f"Seller {i}",
             "handle": f"seller-{i}", "disabled": False, "failed_login_count": 0, "created_at": now}
            for i in range(200)
        ]  # fmt: skip
        conn.execute(insert(User), sellers)
        seller_ids = [r[0] for r in conn.execute(select(col(User.id)))]
        categories = list(catalog.CATEGORIES)
        batch: list[dict] = []
        for i in range(n):
            words = rng.sample(WORDS, 3)
            tail = rng.choices(TAIL, cum_weights=TAIL_WEIGHTS, k=12)
            title = " ".join(w.title() for w in words) + f" {tail[0]}"
            description = " ".join(rng.choices(WORDS, k=30) + tail[1:])
            minutes = n - i + (rng.randrange(0, 60 * 24 * 30) if rng.random() < 0.05 else rng.randrange(0, 5))
            batch.append(
                {
                    "seller_id": rng.choice(seller_ids), "title": title, "slug": "", "description": description,
                    "price_cents": rng.choice([0, 99, 199, 499, 999, 1499, 2999, 4999, 9999]) + rng.randrange(0, 50),
                    "currency": "usd", "pay_what_you_want": False, "category": rng.choice(categories),
                    "tags": ",".join(rng.sample(WORDS, 3)),
                    "status": "published" if rng.random() < 0.9 else "draft", "unpublished_reason": "",
                    "sales_count": int(rng.paretovariate(1.5)) - 1, "created_at": now - timedelta(minutes=minutes),
                    "updated_at": now,
                }
            )  # fmt: skip
            if len(batch) == 5000:
                conn.execute(insert(Product), batch)
                batch = []
        if batch:
            conn.execute(insert(Product), batch)
        conn.execute(text("ANALYZE"))
    if engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load (visibility map, so index-only scans apply).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE product"))
    engine.dispose()


def run(url: str, n: int, label: str, repeat: int = 20, strategy: Strategy = "auto") -> bool:
    engine = make_engine(url)
    rng = random.Random(3)
    max_id = n
    with Session(engine) as session:

        def pk() -> None:
            session.scalars(select(Product).where(col(Product.id) == rng.randrange(1, max_id))).first()

        def search(**kw: object) -> Callable[[], object]:
            return lambda: catalog.search_products(session=session, strategy=strategy, **kw)  # type: ignore[arg-type]

        def deep(sort: str, pages: int, **kw: object) -> Callable[[], object]:
            # Follow cursors to the page, then time the page itself.
            cursor = None
            for _ in range(pages):
                cursor = catalog.search_products(session=session, sort=sort, cursor=cursor, **kw).next_cursor  # type: ignore[arg-type]
            assert cursor is not None, "the listing ended before that page"
            return lambda: catalog.search_products(
                session=session,
                sort=sort,
                cursor=cursor,
                strategy=strategy,
                **kw,  # type: ignore[arg-type]
            )

        price_range = {"min_price_cents": 1000, "max_price_cents": 1600}
        narrow = {"min_price_cents": 1000, "max_price_cents": 1004}
        cases: dict[str, Callable[[], object]] = {
            "newest, page 1": search(),
            "search common word": search(query="lightroom"),
            "search very common word": search(query=TAIL[0]),
            "search medium word (6%)": search(query=TAIL[20]),
            "search word near cut (3%)": search(query=TAIL[40]),
            "search uncommon word (1%)": search(query=TAIL[100]),
            "search rare word": search(query=TAIL[4000]),
            "search two words": search(query="photo guide"),
            "search prefix 'bud'": search(query="bud"),
            "search prefix 'zq01'": search(query="zq01"),
            "no match": search(query="nothingmatchesthis"),
            "search + price sort": search(query="music", sort="price_asc"),
            "search + best-selling": search(query=TAIL[20], sort="best_selling"),
            "search + category": search(query="template", category="ebooks"),
            "search medium + category": search(query=TAIL[20], category="ebooks"),
            "search + cat + price, price": search(
                query="poster", category="audio", sort="price_desc", **price_range
            ),
            "search + cat + price, best": search(
                query=TAIL[10], category="audio", sort="best_selling", **price_range
            ),
            "category + newest": search(category="audio"),
            "category + price sort": search(category="audio", sort="price_asc"),
            "category + best-selling": search(category="audio", sort="best_selling"),
            "price range + newest": search(**price_range),
            "narrow price range + newest": search(**narrow),
            "price range + price sort": search(sort="price_asc", **price_range),
            "price range + best-selling": search(sort="best_selling", **price_range),
            "cat + price range + newest": search(category="games", **price_range),
            "cat + price range + price": search(category="games", sort="price_desc", **price_range),
            "cat + price range + best": search(category="games", sort="best_selling", **price_range),
            "seller + newest": search(seller_id=7),
            "seller + price sort": search(seller_id=7, sort="price_asc"),
            "best-selling": search(sort="best_selling"),
            "price desc, page 200": deep("price_desc", 200),
            "newest, page 300": deep("newest", 300),
            "search, page 50": deep("newest", 50, query="guide"),
            "search medium, page 20": deep("price_asc", 20, query=TAIL[20]),
            "cat + price, best, page 20": deep("best_selling", 20, category="games", **price_range),
        }
        for fn in cases.values():  # warm caches and plans
            fn()
        pk_samples = timed_ms(pk, 500)
        pk_p50 = statistics.median(pk_samples)
        all_samples: list[float] = []
        print(f"\n== {label}: {n:,} products ({url.split('@')[-1]}) ==")
        print(f"{'query':30s} {'p50 ms':>8s} {'p95 ms':>8s} {'p50/pk':>8s}")
        for name, fn in cases.items():
            samples = timed_ms(fn, repeat)
            all_samples += samples
            print(
                f"{name:30s} {statistics.median(samples):8.2f} {p95_ms(samples):8.2f} {statistics.median(samples) / pk_p50:8.1f}"
            )
        p50, p95 = statistics.median(all_samples), p95_ms(all_samples)
        print(f"{'primary-key lookup':30s} {pk_p50:8.3f} {p95_ms(pk_samples):8.3f} {1.0:8.1f}")
        print(
            f"ALL listing/search queries: p50 {p50:.2f} ms, p95 {p95:.2f} ms, ratio p50/pk {p50 / pk_p50:.1f}x"
        )
        ok = p95 < BUDGET_MS
        print(f"budget p95 < {BUDGET_MS:.0f} ms: {'OK' if ok else 'OVER'}")
    engine.dispose()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--strategy", choices=["auto", "collect", "walk"], default="auto")
    parser.add_argument("--url", help="time an existing database made by build() instead (no build)")
    args = parser.parse_args()
    ok = True
    if args.url:
        return 0 if run(args.url, args.products, args.url.split(":")[0], args.repeat, args.strategy) else 1
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            start = time.perf_counter()
            build(url, args.products)
            print(f"built SQLite data in {time.perf_counter() - start:.1f}s")
            ok &= run(url, args.products, "SQLite", args.repeat, args.strategy)
    if args.backend in ("postgresql", "both"):
        from tests.support import servers

        url, drop = servers.fresh_postgres_database(servers.postgres_url())
        try:
            start = time.perf_counter()
            build(url, args.products)
            print(f"built PostgreSQL data in {time.perf_counter() - start:.1f}s")
            ok &= run(url, args.products, "PostgreSQL", args.repeat, args.strategy)
        finally:
            drop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
