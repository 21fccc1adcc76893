"""Live confirmation latency: webhook received -> "Payment confirmed" visible in a real browser,
p50 and p95 over many purchases. Goal: p95 < 150 ms (a bare Reflex push from a mounted route
showed 51 ms on this machine class).

    python -m bench.bench_live_latency
    python bench/bench_live_latency.py --purchases 50

The real app runs in Reflex's production mode (frontend and backend on one port, as the
browser tests start it, holding the same ``.web`` build lock) on a fresh DATA_DIR with the
embedded Stripe. A buyer logs in through /login in Debian's Chromium (Playwright). For each
purchase: a Checkout Session is created with the stripe SDK against the embedded Stripe
(client_reference_id = the buyer), the browser opens /checkout/success?session_id=... and
shows "Waiting for payment confirmation"; once the page has registered for the push (its
live_subscription row exists) a MutationObserver is installed that records the wall clock
(performance.timeOrigin + performance.now()) when "Payment confirmed" enters the page's
visible text; then the session is paid through ``POST /_local/checkout/{id}/pay`` and the
embedded Stripe delivers the signed event to /api/stripe/webhook.

latency = visible time - WebhookEvent.received_at of that session's event (same machine
clock; read from the app's SQLite database). A sample where the success page's own
retrieve fulfilled the order before the webhook arrived is not a push and is left out
(and counted). pay -> visible (the client's POST to the embedded Stripe until the text shows:
payment, webhook queue, delivery, fulfilment, push) is printed for context.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
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

GOAL_P95_MS = 150.0
PASSWORD = "bench-password-123"
# Every websocket frame's arrival time, to split server time from the browser's render time.
FRAMES = """(() => {
  const Native = window.WebSocket;
  window.__qbFrames = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", () => window.__qbFrames.push(performance.timeOrigin + performance.now()));
    }
  };
})();"""
OBSERVER = """() => {
  window.__qbSeen = null;
  window.__qbFrames = [];
  const check = () => {
    if (window.__qbSeen === null && document.body.innerText.includes("Payment confirmed")) {
      window.__qbSeen = performance.timeOrigin + performance.now();
    }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
  check();
}"""


def _ms(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp() * 1000


def _create_buyer(url: str, data_dir: Path) -> tuple[int, str, int]:
    """A buyer who can log in, and a seller's product; the seller has payouts set up."""
    from quantoxbay.db import make_engine, session_scope
    from quantoxbay.services import accounts

    shop = insert_shop(url, buyers=0)
    onboard_sellers(url, data_dir, shop.seller_ids)
    product_id = shop.product_ids[0]
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            buyer = accounts.create_user(session=s, email="latency-buyer@bench.test", password=PASSWORD)
    finally:
        engine.dispose()
    return buyer.id, buyer.email, product_id


def _registered(engine, topic: str, timeout: float) -> bool:
    """Wait until the page's live_subscription row for ``topic`` exists (its on_load has run)."""
    from sqlalchemy import select
    from sqlmodel import col

    from quantoxbay.models import LiveSubscription

    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while (
            conn.execute(select(col(LiveSubscription.id)).where(col(LiveSubscription.topic) == topic)).first()
            is None
        ):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
            conn.rollback()
    return True


def _create_session(client, buyer_id: int, product_id: int, app_url: str, destination) -> str:
    """A Checkout Session in the shape services/checkout.py sends: a destination charge."""
    from quantoxbay.payments.retry import with_rate_limit_retry

    metadata = {"buyer_id": str(buyer_id), "product_id": str(product_id)}
    params = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 999,
                        "product_data": {"name": "Bench product", "metadata": {"product_id": str(product_id)}}}}],
        "client_reference_id": str(buyer_id),
        "customer_email": "latency-buyer@bench.test",
        "metadata": metadata,
        "payment_intent_data": payment_intent_data(metadata, destination),
        "success_url": f"{app_url}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{app_url}/products/{product_id}?checkout=cancelled",
    }  # fmt: skip
    return with_rate_limit_retry(lambda: client.v1.checkout.sessions.create(params)).id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per purchase at most")
    args = parser.parse_args(argv)

    import httpx
    import stripe
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import select
    from sqlmodel import col

    from quantoxbay.db import make_engine
    from quantoxbay.models import Order, WebhookEvent
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    workdir = tempdir("qb-bench-live-")
    data_dir = workdir / "data"
    data_dir.mkdir()
    latencies: list[float] = []
    end_to_end: list[float] = []
    processing: list[float] = []  # received -> the event's processed_at (fulfilment, before commit)
    render: list[float] = []  # the last websocket frame before the text showed -> text visible
    not_pushed = reloads = 0
    try:
        with fresh_database("sqlite", data_dir) as db_url:
            buyer_id, email, product_id = _create_buyer(db_url, data_dir)
            fees = fee_schedule(bench_settings(data_dir, db_url))
            engine = make_engine(db_url)
            with (
                reflex_app(data_dir, backend_only=False, database_url=db_url) as app,
                sync_playwright() as pw,
            ):
                client = stripe.StripeClient(
                    app.stripe_key, base_addresses={"api": f"{app.url}/stripe-local"}
                )
                http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {app.stripe_key}"})
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                context = browser.new_context(base_url=app.url, viewport={"width": 1280, "height": 860})
                context.set_default_timeout(args.timeout * 1000)
                context.add_init_script(FRAMES)
                page = context.new_page()
                page.goto("/login")
                page.get_by_label("Email").fill(email)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                expect(page.get_by_role("button", name="Account menu")).to_be_visible()

                console: list[str] = []
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"[:300]))
                for purchase in range(args.purchases):
                    key = hashlib.sha256(
                        f"bench-live:{buyer_id}:{purchase}:{time.time_ns()}".encode()
                    ).hexdigest()
                    destination = destination_charge(db_url, product_id, 999, key, fees)
                    session_id = _create_session(client, buyer_id, product_id, app.url, destination)
                    record_checkout(
                        db_url, session_id, buyer_id=buyer_id, product_id=product_id, destination=destination
                    )
                    for attempt in range(1, 4):
                        page.goto(f"/checkout/success?session_id={session_id}")
                        expect(page.get_by_text("Waiting for payment confirmation")).to_be_visible()
                        if _registered(engine, f"checkout:{session_id}", args.timeout):
                            break
                        # Seen on this busy machine: now and then the page's on_load never runs
                        # (the navbar still says "Log in"); a reload fixes it. Counted, not hidden.
                        reloads += 1
                        if attempt == 3:
                            raise RuntimeError(
                                f"purchase {purchase + 1}, {session_id}: the page never registered for the "
                                f"push; console {console[-10:]}; at {page.url}: "
                                f"{page.inner_text('body')[:300]!r}; log: {app.log.read_text()[-1500:]}"
                            )
                    time.sleep(0.5)  # let the page's load finish its own retrieve of the (open) session
                    page.evaluate(OBSERVER)
                    paid_ms = time.time() * 1000
                    resp = http.post(f"{app.url}/stripe-local/_local/checkout/{session_id}/pay")
                    if resp.status_code != 200:
                        raise RuntimeError(f"pay {session_id}: {resp.status_code} {resp.text[:300]}")
                    page.wait_for_function("window.__qbSeen !== null")
                    seen_ms = float(page.evaluate("window.__qbSeen"))
                    frames = [f for f in page.evaluate("window.__qbFrames") if f <= seen_ms]
                    with engine.connect() as conn:
                        received, processed = conn.execute(
                            select(col(WebhookEvent.received_at), col(WebhookEvent.processed_at)).where(
                                col(WebhookEvent.type) == "checkout.session.completed",
                                col(WebhookEvent.payload).contains(session_id),
                            )
                        ).one()
                        paid_at = conn.execute(
                            select(col(Order.paid_at)).where(col(Order.stripe_session_id) == session_id)
                        ).scalar_one()
                    if paid_at is None or _ms(paid_at) < _ms(received):
                        not_pushed += 1  # the success page's own retrieve fulfilled it first
                        continue
                    latencies.append(seen_ms - _ms(received))
                    end_to_end.append(seen_ms - paid_ms)
                    processing.append(_ms(processed or received) - _ms(received))
                    render.append(seen_ms - frames[-1] if frames else float("nan"))
                http.close()
                browser.close()
            engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    if not latencies:
        print("live latency: no pushed confirmations measured")
        return 1
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)

    def spread(values: list[float]) -> str:
        return f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms"

    print(
        f"live confirmation, {len(latencies)} purchases pushed ({not_pushed} confirmed by the page's "
        f"own retrieve, left out; {reloads} success pages reloaded): webhook received -> "
        f"'Payment confirmed' visible in Chromium p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
        f"max {max(latencies):.0f} ms, mean {statistics.mean(latencies):.0f} ms; "
        f"pay POST -> visible {spread(end_to_end)}"
    )
    pushes = [t - w - r for t, w, r in zip(latencies, processing, render, strict=True) if r == r]
    rendered = [r for r in render if r == r]
    print(
        f"  of which received -> fulfilled (processed_at, before commit) {spread(processing)}; "
        f"fulfilled -> websocket frame in the browser (commit, announce, subscriber lookup, state "
        f"refresh, send) {spread(pushes)}; frame -> text visible (React) {spread(rendered)}; {load_note()}"
    )
    print(
        f"ratio live latency p95/goal: {p95 / GOAL_P95_MS:.2f} (p95 {p95:.0f} ms, goal < {GOAL_P95_MS:.0f} ms)"
    )
    return 0 if p95 < GOAL_P95_MS else 1


if __name__ == "__main__":
    run_main(main)
