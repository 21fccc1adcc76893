"""Webhook throughput: signed ``checkout.session.completed`` events per second through the real
``POST /api/stripe/webhook`` (verify, record the event once, fulfil: order, item, grant, receipt
row, one transaction), against a bare route in the same server that only calls
``stripe.Webhook.construct_event`` (what Stripe's own samples do). Ratio goal: >= 0.8, at the
highest concurrency measured.

    python -m bench.bench_webhook                          # SQLite and PostgreSQL, concurrency 8 and 64
    python -m bench.bench_webhook --backend sqlite --events 3000 --rounds 5
    python -m bench.bench_webhook --backend postgresql --concurrency 8,32,64 --json

Why several concurrency levels: the real route group-commits. Its writer threads take every
delivery waiting at that moment and fulfil the whole batch in one transaction, so its
throughput depends on how many deliveries are in flight. At low concurrency (8) it is
latency-bound: each batch is small and waits for one database commit. At 64 the batches are
large and the commit is shared by many events, and the route is CPU-bound like the bare route,
which is flat across concurrency. Throughput is capacity, so the goal is checked at the highest
level given (``--concurrency``, comma-separated); the lower levels are reported as information,
the honest figure for a trickle of deliveries. Under each level's figures, a line gives each
route's CPU per event: the server's event-loop thread, its other threads (the webhook writers)
and, on PostgreSQL, the database's processes (Linux /proc; README, "Performance").

One uvicorn worker in a subprocess serves both routes, one server per backend for all levels;
the database is fresh and migrated (a temp SQLite file, or a fresh ``qb_test_*`` database on the
PostgreSQL server named by TEST_POSTGRES_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/test). Every event is distinct (its own Checkout
Session, never resent) and pre-signed before its level starts; a small raw asyncio HTTP/1.1
client keeps ``concurrency`` connections busy. At each level a warmup batch goes to each route,
then ``--rounds`` rounds alternate bare and real so background load hits both alike; each route's
figure is its median round (this VM is noisy) and the ratio is median real / median bare.
Afterwards every real event sent, warmups included, must have made exactly one paid order.
The seller has payouts set up (Stripe Connect), so each session is recorded with its destination
charge and each order must carry its seller's account, application fee, platform fee and share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    WEBHOOK_SECRET,
    base_env,
    drive,
    free_port,
    fresh_database,
    insert_shop,
    load_note,
    onboard_sellers,
    own_settings_in_tempdir,
    run_main,
    serve,
    tempdir,
    uvicorn_args,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp

GOAL = 0.8
CONNECT_WEBHOOK_SECRET = "whsec_bench_connect_" + "0" * 24
REAL_PATH = "/api/stripe/webhook"
BARE_PATH = "/bench/bare-webhook"


def server_app() -> ASGIApp:
    """The server under test (uvicorn --factory): QuantoxBay's API plus the bare baseline route, both
    behind the security layer that wraps the whole app under ``make run`` (api/security.py)."""
    import stripe
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from quantoxbay.api import build_api
    from quantoxbay.api.security import security_middleware
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
    return security_middleware()(api)


def _signed_events(
    path: str, count: int, buyer_ids: list[int], product_id: int, url: str
) -> list[tuple[str, bytes, dict]]:
    """Signed events for Checkout Sessions recorded as the shop's (fulfilment refuses others)."""
    from sqlmodel import Session

    from quantoxbay.db import make_engine
    from tests.stripe_payloads import checkout_session, event, signed

    out = []
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            for i in range(count):
                cs = checkout_session(s, buyer_id=buyer_ids[i % len(buyer_ids)], product_id=product_id)
                body, headers = signed(event(cs), WEBHOOK_SECRET)
                out.append((path, body, headers))
            s.commit()
    finally:
        engine.dispose()
    return out


def _count_orders(url: str) -> tuple[int, int, int, int]:
    """(paid orders, grants, processed events, paid orders carrying the destination charge's money:
    the seller's account, application fee, platform fee and seller's share written)."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from quantoxbay.db import make_engine
    from quantoxbay.models import DownloadGrant, Order, WebhookEvent

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            paid = conn.execute(
                select(func.count()).select_from(Order).where(col(Order.status) == "paid")
            ).scalar_one()
            grants = conn.execute(select(func.count()).select_from(DownloadGrant)).scalar_one()
            events = conn.execute(
                select(func.count()).select_from(WebhookEvent).where(col(WebhookEvent.outcome) == "processed")
            ).scalar_one()
            connect = conn.execute(
                select(func.count())
                .select_from(Order)
                .where(
                    col(Order.status) == "paid",
                    col(Order.seller_account_id).is_not(None),
                    col(Order.application_fee_cents) > 0,
                    col(Order.platform_fee_cents) == col(Order.application_fee_cents),
                    col(Order.seller_share_cents) == col(Order.total_cents) - col(Order.platform_fee_cents),
                    col(Order.transfer_group).is_not(None),
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return paid, grants, events, connect


def _cpu_seconds(server_pid: int) -> tuple[float, float, float] | None:
    """CPU seconds used so far by the server's event-loop thread, by its other threads (the
    webhook writers), and by all PostgreSQL processes on this machine, read from Linux's /proc
    (None elsewhere). Differences around a round show where each event's CPU goes."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(stat_path: Path) -> float:
        fields = stat_path.read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    try:
        tasks = Path(f"/proc/{server_pid}/task")
        loop = used(tasks / str(server_pid) / "stat")
        others = sum(used(t / "stat") for t in tasks.iterdir() if t.name != str(server_pid))
    except (OSError, ValueError):
        return None
    postgres = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                if (proc / "cmdline").read_bytes().startswith(b"postgres"):
                    postgres += used(proc / "stat")
    return loop, others, postgres


def _concurrency_levels(text: str) -> list[int]:
    """``"8,64"`` -> [8, 64]: distinct positive integers, ascending (the last is the goal level)."""
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be positive integers: {text!r}")
    return levels


def run_backend(backend: str, args: argparse.Namespace) -> list[dict]:
    """One server for ``backend``; one result per concurrency level (ascending)."""
    levels: list[int] = args.concurrency
    per_level = args.warmup + args.events * args.rounds  # events per route per level
    results: list[dict] = []
    workdir = tempdir(f"qb-bench-webhook-{backend}-")
    try:
        with fresh_database(backend, workdir) as url:
            shop = insert_shop(url, buyers=50)
            buyer_ids, product_id = shop.buyer_ids, shop.product_ids[0]
            # Payouts set up, so every recorded session carries the destination charge
            # (tests/stripe_payloads.py records it as services.checkout does) and every order
            # writes its money columns. The server itself runs without the embedded Stripe.
            onboard_sellers(url, workdir / "data", shop.seller_ids)
            port = free_port()
            env = base_env(
                DATABASE_URL=url,
                DATA_DIR=str(workdir / "data"),
                STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                STRIPE_SECRET_KEY="sk_test_bench_unused",  # no embedded Stripe: only the routes under test
                STRIPE_CONNECT_WEBHOOK_SECRET=CONNECT_WEBHOOK_SECRET,  # required with a secret key
                APP_PORT=str(port),
            )
            bad: list[int] = []
            with serve(uvicorn_args("bench.bench_webhook:server_app", port), env, workdir / "server.log",
                       "/api/health", port=port) as server:  # fmt: skip

                def send(batch: list, concurrency: int, cpu: list[float] | None = None) -> float:
                    before = _cpu_seconds(server.pid)
                    elapsed, statuses = asyncio.run(drive(port, batch, concurrency, args.timeout))
                    after = _cpu_seconds(server.pid)
                    bad.extend(s for s in statuses if s != 200)
                    if cpu is not None and before and after:
                        for i, (b, a) in enumerate(zip(before, after, strict=True)):
                            cpu[i] += a - b
                    return elapsed

                for level_index, concurrency in enumerate(levels):
                    # Fresh events for this level only, signed just before it (well inside the
                    # signature tolerance however many levels come before).
                    real = _signed_events(REAL_PATH, per_level, buyer_ids, product_id, url)
                    bare = _signed_events(BARE_PATH, per_level, buyer_ids, product_id, url)
                    w = args.warmup
                    send(bare[:w], concurrency)
                    send(real[:w], concurrency)
                    rates: dict[str, list[float]] = {"bare": [], "real": []}
                    cpu = {"bare": [0.0, 0.0, 0.0], "real": [0.0, 0.0, 0.0]}  # loop, other threads, postgres
                    for r in range(args.rounds):
                        chunk = slice(w + r * args.events, w + (r + 1) * args.events)
                        rates["bare"].append(args.events / send(bare[chunk], concurrency, cpu["bare"]))
                        rates["real"].append(args.events / send(real[chunk], concurrency, cpu["real"]))
                    if bad:
                        break
                    # Every 200 came after its commit, so the counts so far are final.
                    paid, grants, processed, connect_orders = _count_orders(url)
                    bare_median = statistics.median(rates["bare"])
                    real_median = statistics.median(rates["real"])
                    results.append(
                        {
                            "backend": backend,
                            "concurrency": concurrency,
                            "goal_level": concurrency == levels[-1],
                            "events_per_round": args.events,
                            "rounds": args.rounds,
                            "warmup": args.warmup,
                            "bare_rounds_per_s": rates["bare"],
                            "real_rounds_per_s": rates["real"],
                            "bare_per_s": bare_median,
                            "real_per_s": real_median,
                            "ratio": real_median / bare_median,
                            # CPU milliseconds per event over all rounds (zeros where /proc is missing).
                            "cpu_ms_per_event": {
                                route: dict(
                                    zip(
                                        ("event_loop", "other_threads", "postgres"),
                                        (1000 * v / (args.events * args.rounds) for v in used),
                                        strict=True,
                                    )
                                )
                                for route, used in cpu.items()
                            },
                            # Cumulative over this backend's levels so far.
                            "paid_orders": paid,
                            "grants": grants,
                            "processed_events": processed,
                            "connect_orders": connect_orders,
                            "expected": per_level * (level_index + 1),
                            "load": load_note(),
                        }
                    )
            if bad:
                raise SystemExit(f"{backend}: {len(bad)} requests failed (statuses {sorted(set(bad))})")
            # After everything, with the server gone: one paid order per real event ever sent.
            final = _count_orders(url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for result in results:
        (
            result["final_paid_orders"],
            result["final_grants"],
            result["final_processed_events"],
            result["final_connect_orders"],
        ) = final
        result["final_expected"] = per_level * len(levels)
    return results


def _written(r: dict) -> bool:
    return (
        r["paid_orders"] == r["grants"] == r["processed_events"] == r["connect_orders"] == r["expected"]
        and r["final_paid_orders"]
        == r["final_grants"]
        == r["final_processed_events"]
        == r["final_connect_orders"]
        == r["final_expected"]
    )


def _cpu_note(backend: str, cpu: dict[str, dict[str, float]]) -> str:
    def route(name: str) -> str:
        c = cpu[name]
        database = f", PostgreSQL {c['postgres']:.2f} ms" if backend == "postgresql" else ""
        return (
            f"{name} route: server {c['event_loop'] + c['other_threads']:.2f} ms (event loop {c['event_loop']:.2f},"
            f" other threads {c['other_threads']:.2f}){database}"
        )

    source = "the server's threads" + (", all PostgreSQL processes" if backend == "postgresql" else "")
    return f"{route('bare')}; {route('real')} (from /proc: {source})"


def _rates(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=2000, help="events per route per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per level; each route's median counts")
    parser.add_argument("--warmup", type=int, default=200, help="warmup events per route per level")
    parser.add_argument(
        "--concurrency",
        type=_concurrency_levels,
        default="8,64",
        help="comma-separated keep-alive connection counts; the goal is checked at the highest",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per batch at most")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--events and --rounds must be positive, --warmup not negative")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    own_settings_in_tempdir()
    results = [r for b in backends for r in run_backend(b, args)]
    ok = True
    for r in results:
        written = _written(r)
        ok = ok and written and (not r["goal_level"] or r["ratio"] >= GOAL)
        role = f"goal >= {GOAL}" if r["goal_level"] else "information"
        print(
            f"webhook [{r['backend']}] concurrency {r['concurrency']}, one uvicorn worker, "
            f"{r['rounds']} rounds x {r['events_per_round']} distinct signed events per route, medians: "
            f"bare construct_event route {r['bare_per_s']:.0f} events/s ({_rates(r['bare_rounds_per_s'])}), "
            f"real route with fulfilment {r['real_per_s']:.0f} events/s ({_rates(r['real_rounds_per_s'])}), "
            f"ratio {r['ratio']:.2f} ({role}); paid orders written {r['paid_orders']}/{r['expected']}, "
            f"with the destination charge's fee and share {r['connect_orders']}/{r['expected']} "
            f"({'all' if written else 'MISSING'}); {r['load']}"
        )
        print(f"  CPU per event: {_cpu_note(r['backend'], r['cpu_ms_per_event'])}")
    if args.json:
        print(json.dumps(results))
    top = args.concurrency[-1]

    def ratios(level: int) -> str:
        return ", ".join(f"{r['backend']} {r['ratio']:.2f}" for r in results if r["concurrency"] == level)

    lower = "".join(f"; at concurrency {c}: {ratios(c)}" for c in args.concurrency[:-1])
    print(f"ratio webhook real/bare at concurrency {top}: {ratios(top)} (goal >= {GOAL}{lower})")
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main)
