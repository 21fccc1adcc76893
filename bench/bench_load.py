"""Load run: 200 concurrent buyers complete checkouts against the embedded Stripe; every
successful payment must become exactly one paid order (ratio orders/payments = 1.00), every sale
one transfer to its seller's connected account, and the ledger must reconcile with Stripe (drift 0).

    python -m bench.bench_load
    python bench/bench_load.py --buyers 200 --backend sqlite

The real app runs in Reflex's production mode (backend only: API, webhook route and the
embedded Stripe on one port, one worker), on a fresh DATA_DIR (SQLite by default, or a fresh
``qb_test_*`` PostgreSQL database with --backend postgresql). The buyers spread over 20 sellers
(``--sellers``), one product each; every seller has payouts set up first, as
``python -m quantoxbay onboard-seller`` does it (the shop's service opens the connected account on
the install's embedded Stripe, its onboarding form is filled in with test data). Each buyer is a
thread: it creates a Checkout Session with the stripe SDK (the shape services/checkout.py sends:
a destination charge to the seller's account with the platform's application fee and the sale's
transfer group, recorded with the session as the shop records it, with an idempotency key; the embedded Stripe allows 25 creates/s like Stripe's test mode, so a 429
(RateLimitError) is retried with exponential backoff and jitter), then pays it through the
embedded Stripe's ``POST /_local/checkout/{id}/pay``. The embedded Stripe delivers the signed
``checkout.session.completed`` events to the app's own webhook route; we wait for its queue to
drain and then count paid orders for those sessions in the app's database. Then the embedded
Stripe's ``/v1/transfers`` must hold one transfer per payment, in those sales' transfer groups, and
``python -m quantoxbay reconcile --sync`` (run against the app's install while it serves) must
report drift 0.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    PYTHON,
    ROOT,
    bench_settings,
    destination_charge,
    fee_schedule,
    fresh_database,
    insert_shop,
    load_note,
    onboard_sellers,
    payment_intent_data,
    percentile,
    record_checkout,
    reflex_app,
    run_main,
    tempdir,
)

PRICE_CENTS = 999
DRIFT_LINES_SHOWN = 8
RECONCILED = re.compile(r"Reconciled (\d+) order\(s\) with Stripe: drift (\d+) cents")


def create_session(
    client, buyer_id: int, product_id: int, app_url: str, key: str, destination, counters: dict
) -> str:
    import stripe

    metadata = {"buyer_id": str(buyer_id), "product_id": str(product_id)}
    params = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": PRICE_CENTS,
                        "product_data": {"name": "Bench product", "metadata": {"product_id": str(product_id)}}}}],
        "client_reference_id": str(buyer_id),
        "customer_email": f"buyer{buyer_id}@bench.test",
        "metadata": metadata,
        "payment_intent_data": payment_intent_data(metadata, destination),
        "success_url": f"{app_url}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{app_url}/products/{product_id}?checkout=cancelled",
        "allow_promotion_codes": True,
    }  # fmt: skip
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


def count_transfers(client, groups: set[str]) -> tuple[int, int]:
    """(transfers, cents transferred) on the embedded Stripe in these sales' transfer groups."""
    count = cents = 0
    for transfer in client.v1.transfers.list({"limit": 100}).auto_paging_iter():
        if transfer.transfer_group in groups:
            count += 1
            cents += transfer.amount
    return count, cents


def reconcile(env: dict[str, str]) -> tuple[int, int, int, str]:
    """``python -m quantoxbay reconcile --sync`` against the app's install (its DATA_DIR, database
    and embedded Stripe): (exit status, orders reconciled, drift cents, its output)."""
    done = subprocess.run(
        [PYTHON, "-m", "quantoxbay", "reconcile", "--sync"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = (done.stdout + done.stderr).strip()
    found = RECONCILED.search(output)
    if found is None:
        return done.returncode, 0, -1, output
    return done.returncode, int(found[1]), int(found[2]), output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument(
        "--sellers", type=int, default=20, help="sellers (one product each) the buyers spread over"
    )
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
            shop = insert_shop(db_url, args.buyers, sellers=args.sellers, price_cents=PRICE_CENTS)
            onboard_started = time.perf_counter()
            onboard_sellers(db_url, data_dir, shop.seller_ids)
            onboarded_in = time.perf_counter() - onboard_started
            fees = fee_schedule(bench_settings(data_dir, db_url))
            product_of = {b: shop.product_ids[i % args.sellers] for i, b in enumerate(shop.buyer_ids)}
            groups: set[str] = set()
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
                    product_id = product_of[buyer_id]
                    # Like the shop's checkout_session_key: a digest, the transfer group its prefix.
                    key = hashlib.sha256(
                        f"bench-load:{buyer_id}:{product_id}:{time.time_ns()}".encode()
                    ).hexdigest()
                    destination = destination_charge(db_url, product_id, PRICE_CENTS, key, fees)
                    with lock:
                        groups.add(destination.transfer_group)
                    session_id = create_session(
                        client, buyer_id, product_id, app.url, key, destination, local
                    )
                    record_checkout(
                        db_url,
                        session_id,
                        buyer_id=buyer_id,
                        product_id=product_id,
                        allow_promotion_codes=True,
                        destination=destination,
                    )
                    resp = http.post(f"{api}/_local/checkout/{session_id}/pay", headers=auth)
                    ok = resp.status_code == 200 and resp.json().get("outcome") == "succeeded"
                    with lock:
                        counters["rate_limited"] += local["rate_limited"]
                    return session_id, ok, time.perf_counter() - t0

                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.buyers) as pool:
                    outcomes = list(pool.map(buyer, shop.buyer_ids, timeout=args.timeout))
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
                transfers, transferred_cents = count_transfers(
                    stripe.StripeClient(app.stripe_key, base_addresses={"api": api}), groups
                )
                reconcile_started = time.perf_counter()
                reconcile_status, reconciled, drift, reconcile_output = reconcile(app.env)
                reconciled_in = time.perf_counter() - reconcile_started
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
    expected_transfer = payments * (PRICE_CENTS - fees.fee_cents(PRICE_CENTS))
    if reconcile_status != 0 or drift != 0:
        # What reconcile found, briefly: the closing lines (make bench's summary) stay the figures.
        lines = reconcile_output.splitlines()
        shown = lines[:DRIFT_LINES_SHOWN] + (
            [f"  ... {len(lines) - DRIFT_LINES_SHOWN} more"] if len(lines) > DRIFT_LINES_SHOWN else []
        )
        print("\n".join(shown))
    print(
        f"connect [{args.backend}]: {args.sellers} sellers onboarded in {onboarded_in:.1f} s; "
        f"transfers in these sales' groups {transfers} ({transferred_cents} cents, expected {expected_transfer}); "
        f"`python -m quantoxbay reconcile --sync` (exit {reconcile_status}, {reconciled_in:.1f} s): "
        f"{reconcile_output.splitlines()[-1] if reconcile_output else 'no output'}"
    )
    ratio = orders / payments if payments else 0.0
    print(
        f"ratio load orders/payments: {ratio:.2f} (must be 1.00); transfers {transfers}/{payments} (must match); "
        f"reconcile drift {drift} cents over {reconciled} orders (must be 0)"
    )
    return (
        0
        if payments == args.buyers
        and orders == payments == total_orders == transfers == reconciled
        and transferred_cents == expected_transfer
        and reconcile_status == 0
        and drift == 0
        else 1
    )


if __name__ == "__main__":
    run_main(main)
