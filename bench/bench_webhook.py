"""Webhook throughput: signed ``checkout.session.completed`` events per second through the real
``POST /api/stripe/webhook`` (verify, record the event once, fulfil: order, item, grant, receipt
row, one transaction), against a bare route in the same server that only calls
``stripe.Webhook.construct_event`` (what Stripe's own samples do). Ratio goal: >= 0.8.

    python -m bench.bench_webhook                          # SQLite and PostgreSQL
    python bench/bench_webhook.py --backend sqlite --events 3000 --concurrency 8

One uvicorn worker in a subprocess serves both routes; the database is fresh and migrated
(a temp SQLite file, or a fresh ``qb_test_*`` database on the PostgreSQL server named by
TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test). Every event is
distinct (its own Checkout Session) and pre-signed; a small raw asyncio HTTP/1.1 client keeps
``--concurrency`` connections busy. Rounds alternate bare and real so background load hits
both alike. Afterwards every real event must have made exactly one paid order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    WEBHOOK_SECRET,
    base_env,
    drive,
    free_port,
    fresh_database,
    insert_buyers_and_product,
    load_note,
    run_main,
    serve,
    tempdir,
    uvicorn_args,
)

GOAL = 0.8
REAL_PATH = "/api/stripe/webhook"
BARE_PATH = "/bench/bare-webhook"


def server_app():  # type: ignore[no-untyped-def]
    """The server under test (uvicorn --factory): QuantoxBay's API plus the bare baseline route."""
    import stripe
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from quantoxbay.api import build_api
    from quantoxbay.settings import get_settings

    secret = get_settings().stripe_webhook_secret

    async def bare(request: Request) -> JSONResponse:
        payload = await request.body()
        try:
            stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature", ""), secret)
        except (ValueError, stripe.SignatureVerificationError):
            return JSONResponse({"error": "bad signature"}, status_code=400)
        return JSONResponse({"received": True})

    api = build_api()
    api.router.routes.append(Route(BARE_PATH, bare, methods=["POST"]))
    return api


def _signed_events(
    path: str, count: int, buyer_ids: list[int], product_id: int
) -> list[tuple[str, bytes, dict]]:
    from tests.stripe_payloads import checkout_session, event, signed

    out = []
    for i in range(count):
        cs = checkout_session(buyer_id=buyer_ids[i % len(buyer_ids)], product_id=product_id)
        body, headers = signed(event(cs), WEBHOOK_SECRET)
        out.append((path, body, headers))
    return out


def _count_orders(url: str) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from quantoxbay.db import make_engine
    from quantoxbay.models import DownloadGrant, Order, WebhookEvent

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            paid = conn.execute(
                select(func.count()).select_from(Order).where(Order.status == "paid")
            ).scalar_one()
            grants = conn.execute(select(func.count()).select_from(DownloadGrant)).scalar_one()
            events = conn.execute(
                select(func.count()).select_from(WebhookEvent).where(WebhookEvent.outcome == "processed")
            ).scalar_one()
    finally:
        engine.dispose()
    return paid, grants, events


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    workdir = tempdir(f"qb-bench-webhook-{backend}-")
    try:
        with fresh_database(backend, workdir) as url:
            buyer_ids, product_id = insert_buyers_and_product(url, buyers=50)
            port = free_port()
            env = base_env(
                DATABASE_URL=url,
                DATA_DIR=str(workdir / "data"),
                STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                STRIPE_SECRET_KEY="sk_test_bench_unused",  # no embedded Stripe: only the routes under test
                APP_PORT=str(port),
            )
            total = args.warmup + args.events * args.rounds
            real = _signed_events(REAL_PATH, total, buyer_ids, product_id)
            bare = _signed_events(BARE_PATH, total, buyer_ids, product_id)
            with serve(uvicorn_args("bench.bench_webhook:server_app", port), env, workdir / "server.log",
                       "/api/health", port=port):  # fmt: skip
                times = {"bare": 0.0, "real": 0.0}
                bad: list[int] = []

                def send(kind: str, batch: list) -> float:
                    elapsed, statuses = asyncio.run(drive(port, batch, args.concurrency, args.timeout))
                    bad.extend(s for s in statuses if s != 200)
                    return elapsed

                w = args.warmup
                send("bare", bare[:w])
                send("real", real[:w])
                for r in range(args.rounds):
                    chunk = slice(w + r * args.events, w + (r + 1) * args.events)
                    times["bare"] += send("bare", bare[chunk])
                    times["real"] += send("real", real[chunk])
            if bad:
                raise SystemExit(f"{backend}: {len(bad)} requests failed (statuses {sorted(set(bad))})")
            paid, grants, processed = _count_orders(url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    n = args.events * args.rounds
    result = {
        "backend": backend,
        "events": n,
        "bare_per_s": n / times["bare"],
        "real_per_s": n / times["real"],
        "paid_orders": paid,
        "grants": grants,
        "processed_events": processed,
        "expected": total,
        "load": load_note(),
    }
    result["ratio"] = result["real_per_s"] / result["bare_per_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=2000, help="events per route per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per batch at most")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args) for b in backends]
    ok = True
    for r in results:
        written = r["paid_orders"] == r["grants"] == r["processed_events"] == r["expected"]
        ok = ok and written and r["ratio"] >= GOAL
        print(
            f"webhook [{r['backend']}] {r['events']} distinct signed events, one uvicorn worker, "
            f"concurrency {args.concurrency}: bare construct_event route {r['bare_per_s']:.0f} events/s, "
            f"real route with fulfilment {r['real_per_s']:.0f} events/s; paid orders written "
            f"{r['paid_orders']}/{r['expected']} ({'all' if written else 'MISSING'}); {r['load']}"
        )
    if args.json:
        print(json.dumps(results))
    print(
        "ratio webhook real/bare: "
        + ", ".join(f"{r['backend']} {r['ratio']:.2f}" for r in results)
        + f" (goal >= {GOAL})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main)
