"""Load run: 200 concurrent buyers complete checkouts against the embedded Stripe; every
successful payment must become exactly one paid order (ratio orders/payments = 1.00).

    python -m bench.bench_load
    python bench/bench_load.py --buyers 200 --backend sqlite

The real app runs in Reflex's production mode (backend only: API, webhook route and the
embedded Stripe on one port, one worker), on a fresh DATA_DIR (SQLite by default, or a fresh
``qb_test_*`` PostgreSQL database with --backend postgresql). Each buyer is a thread: it
creates a Checkout Session with the stripe SDK (the shape services/checkout.py sends, with an
idempotency key; the embedded Stripe allows 25 creates/s like Stripe's test mode, so a 429
(RateLimitError) is retried with exponential backoff and jitter), then pays it through the
embedded Stripe's ``POST /_local/checkout/{id}/pay``. The embedded Stripe delivers the signed
``checkout.session.completed`` events to the app's own webhook route; we wait for its queue to
drain and then count paid orders for those sessions in the app's database.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    fresh_database,
    insert_buyers_and_product,
    load_note,
    percentile,
    record_checkout,
    reflex_app,
    run_main,
    tempdir,
)

if TYPE_CHECKING:
    from stripe import StripeClient
    from stripe.params.checkout import SessionCreateParams


def create_session(
    client: StripeClient, buyer_id: int, product_id: int, app_url: str, counters: dict[str, int]
) -> str:
    import stripe

    metadata = {"buyer_id": str(buyer_id), "product_id": str(product_id)}
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 999,
                        "product_data": {"name": "Bench product", "metadata": {"product_id": str(product_id)}}}}],
        "client_reference_id": str(buyer_id),
        "customer_email": f"buyer{buyer_id}@bench.test",
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": f"{app_url}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{app_url}/products/{product_id}?checkout=cancelled",
        "allow_promotion_codes": True,
    }  # fmt: skip
    key = f"bench-load:{buyer_id}:{product_id}:{time.time_ns()}"
    for attempt in range(40):
        try:
            return client.v1.checkout.sessions.create(params, {"idempotency_key": key}).id
        except stripe.RateLimitError:
            counters["rate_limited"] += 1
            time.sleep(min(4.0, 0.25 * 2 ** min(attempt, 5)) * (0.5 + random.random() / 2))
    raise RuntimeError(f"buyer {buyer_id}: still rate limited after 40 attempts")


def count_paid(url: str, session_ids: list[str]) -> tuple[int, int]:
    """(paid orders, all orders) for these Checkout Sessions in the app's database."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from quantoxbay.db import make_engine
    from quantoxbay.models import Order

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            paid = total = 0
            for i in range(0, len(session_ids), 500):
                chunk = session_ids[i : i + 500]
                where = col(Order.stripe_session_id).in_(chunk)
                total += conn.execute(select(func.count()).select_from(Order).where(where)).scalar_one()
                paid += conn.execute(
                    select(func.count()).select_from(Order).where(where, col(Order.status) == "paid")
                ).scalar_one()
    finally:
        engine.dispose()
    return paid, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole run at most")
    args = parser.parse_args(argv)

    import httpx
    import stripe

    workdir = tempdir("qb-bench-load-")
    data_dir = workdir / "data"
    data_dir.mkdir()
    try:
        with fresh_database(args.backend, data_dir) as db_url:
            buyer_ids, product_id = insert_buyers_and_product(db_url, args.buyers)
            with reflex_app(data_dir, backend_only=True, database_url=db_url) as app:
                api = f"{app.url}/stripe-local"
                auth = {"Authorization": f"Bearer {app.stripe_key}"}
                counters = {"rate_limited": 0}
                lock = threading.Lock()
                start_gate = threading.Barrier(args.buyers)
                http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=args.buyers))
                deadline = time.monotonic() + args.timeout

                def buyer(buyer_id: int) -> tuple[str, bool, float]:
                    client = stripe.StripeClient(app.stripe_key, base_addresses={"api": api})
                    start_gate.wait(timeout=60)
                    t0 = time.perf_counter()
                    local = {"rate_limited": 0}
                    session_id = create_session(client, buyer_id, product_id, app.url, local)
                    record_checkout(
                        db_url,
                        session_id,
                        buyer_id=buyer_id,
                        product_id=product_id,
                        allow_promotion_codes=True,
                    )
                    resp = http.post(f"{api}/_local/checkout/{session_id}/pay", headers=auth)
                    ok = resp.status_code == 200 and resp.json().get("outcome") == "succeeded"
                    with lock:
                        counters["rate_limited"] += local["rate_limited"]
                    return session_id, ok, time.perf_counter() - t0

                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.buyers) as pool:
                    outcomes = list(pool.map(buyer, buyer_ids, timeout=args.timeout))
                paid_at = time.perf_counter()
                http.close()
                paid_sessions = [s for s, ok, _ in outcomes if ok]
                all_sessions = [s for s, _, _ in outcomes]
                orders = total_orders = 0
                with httpx.Client(timeout=70) as c:
                    while time.monotonic() < deadline:
                        c.post(f"{api}/_local/webhooks/flush", params={"timeout": 10}, headers=auth)
                        orders, total_orders = count_paid(db_url, all_sessions)
                        if orders >= len(paid_sessions):
                            break
                        time.sleep(0.2)
                done_at = time.perf_counter()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    payments = len(paid_sessions)
    per_buyer = [t for _, _, t in outcomes]
    print(
        f"load [{args.backend}]: {args.buyers} concurrent buyers, {payments} successful payments "
        f"({args.buyers - payments} failed), {counters['rate_limited']} rate-limited session creates retried; "
        f"all paid after {paid_at - started:.1f} s (per buyer p50 {percentile(per_buyer, 50):.1f} s, "
        f"p95 {percentile(per_buyer, 95):.1f} s), all orders written after {done_at - started:.1f} s; "
        f"paid orders {orders}, orders in total {total_orders}; {load_note()}"
    )
    ratio = orders / payments if payments else 0.0
    print(f"ratio load orders/payments: {ratio:.2f} (must be 1.00)")
    return 0 if payments == args.buyers and orders == payments == total_orders else 1


if __name__ == "__main__":
    run_main(main)
