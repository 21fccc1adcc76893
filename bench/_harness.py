"""Small shared pieces of the HTTP benchmarks: servers in subprocesses, a raw HTTP/1.1 client,
fresh databases, process memory and percentiles. No benchmark logic lives here."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port  # noqa: E402  (re-exported for the benchmarks)

if TYPE_CHECKING:
    from quantoxbay.services.checkout import Destination
    from quantoxbay.services.fees import FeeSchedule
    from quantoxbay.settings import Settings

PYTHON = sys.executable
WEBHOOK_SECRET = "whsec_bench_" + "0" * 32


def load_note() -> str:
    """The machine's 1-minute load average: these benches share 2 cores with whatever else runs."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- databases --------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file in ``workdir`` or a fresh ``qb_test_*`` on PostgreSQL."""
    from quantoxbay.migrations import upgrade_to_head

    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'quantoxbay.db'}"
        upgrade_to_head(url)
        yield url
        return
    from tests.support.servers import fresh_postgres_database, postgres_url

    url, drop = fresh_postgres_database(postgres_url())
    try:
        upgrade_to_head(url)
        yield url
    finally:
        from sqlalchemy import create_engine

        create_engine(url).dispose()
        drop()


@dataclass(frozen=True)
class BenchShop:
    """What ``insert_shop`` made: buyers, sellers and one published product per seller
    (``product_ids[i]`` belongs to ``seller_ids[i]``)."""

    buyer_ids: list[int]
    seller_ids: list[int]
    product_ids: list[int]


def insert_shop(url: str, buyers: int, sellers: int = 1, price_cents: int = 999) -> BenchShop:
    """``buyers`` buyer rows and ``sellers`` sellers with one published product each, inserted
    directly (bcrypt at cost 12 would take a quarter of a second per account and is not what we
    measure). Priced products sell only once their seller has payouts set up: ``onboard_sellers``."""
    from sqlalchemy import insert, select
    from sqlmodel import col

    from quantoxbay.db import make_engine
    from quantoxbay.models import Product, User, utcnow

    engine = make_engine(url)
    now = utcnow()
    tag = os.urandom(4).hex()
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(User),
                [
                    {"email": f"seller-{tag}-{s}@bench.test", "password_hash": "x", "role": "seller",
                     "display_name": f"Bench seller {s}", "handle": f"bench-{tag}-{s}", "disabled": False,
                     "failed_login_count": 0, "created_at": now}
                    for s in range(sellers)
                ]
                + [
                    {"email": f"buyer-{tag}-{i}@bench.test", "password_hash": "x", "role": "buyer",
                     "display_name": f"Buyer {i}", "handle": None, "disabled": False,
                     "failed_login_count": 0, "created_at": now}
                    for i in range(buyers)
                ],
            )  # fmt: skip
            seller_ids = list(
                conn.execute(
                    select(col(User.id)).where(col(User.email).like(f"seller-{tag}-%")).order_by(col(User.id))
                ).scalars()
            )
            buyer_ids = list(
                conn.execute(
                    select(col(User.id)).where(col(User.email).like(f"buyer-{tag}-%")).order_by(col(User.id))
                ).scalars()
            )
            conn.execute(
                insert(Product),
                [
                    {"seller_id": seller_id, "title": f"Bench product {s}", "slug": f"bench-{tag}-{s}",
                     "description": "Bought by the benchmarks.", "price_cents": price_cents, "currency": "usd",
                     "pay_what_you_want": False, "category": "", "tags": "", "status": "published",
                     "unpublished_reason": "", "sales_count": 0, "created_at": now, "updated_at": now}
                    for s, seller_id in enumerate(seller_ids)
                ],
            )  # fmt: skip
            by_seller: dict[int, int] = {
                seller_id: product_id
                for seller_id, product_id in conn.execute(
                    select(col(Product.seller_id), col(Product.id)).where(
                        col(Product.slug).like(f"bench-{tag}-%")
                    )
                ).all()
                if product_id is not None
            }
    finally:
        engine.dispose()
    # Read back from the table, the ids are never None: the filter only narrows the type.
    known_sellers = [s for s in seller_ids if s is not None]
    return BenchShop(
        [b for b in buyer_ids if b is not None], known_sellers, [by_seller[s] for s in known_sellers]
    )


def bench_settings(data_dir: Path, database_url: str, stripe_api_base: str = "") -> Settings:
    """The app's settings for an install at ``data_dir`` with the embedded Stripe (no
    STRIPE_SECRET_KEY): its key, its fee schedule (PLATFORM_FEE_* from the environment, as the app
    under test reads them)."""
    from quantoxbay.settings import Settings

    return Settings(
        data_dir=data_dir, database_url=database_url, stripe_secret_key="", stripe_api_base=stripe_api_base
    )


def onboard_sellers(database_url: str, data_dir: Path, seller_ids: list[int]) -> list[str]:
    """Set up payouts for these sellers as ``python -m quantoxbay onboard-seller`` does: the shop's
    service opens each seller's connected account on the install's embedded Stripe (served here for
    the moment, on the same DATA_DIR the app under test uses or will use), its onboarding form is
    filled in with test data, and the shop records what Stripe then says of the account.
    Returns the connected account ids, in order."""
    from quantoxbay.api.embedded import complete_test_onboarding, running_embedded_stripe
    from quantoxbay.db import make_engine, session_scope
    from quantoxbay.payments.client import make_stripe_client
    from quantoxbay.payments.gateway import StripeGateway
    from quantoxbay.services import connect

    engine = make_engine(database_url)
    accounts: list[str] = []
    try:
        with running_embedded_stripe(bench_settings(data_dir, database_url)) as local:
            gateway = StripeGateway(make_stripe_client(local))
            for seller_id in seller_ids:
                with session_scope(engine) as session:
                    account = connect.ensure_account(session=session, gateway=gateway, seller_id=seller_id)
                    complete_test_onboarding(local, account.stripe_account_id)
                    status = connect.refresh_account(session=session, gateway=gateway, seller_id=seller_id)
                if not status.charges_enabled:
                    raise RuntimeError(f"seller {seller_id}: onboarding left charges disabled: {status}")
                accounts.append(status.stripe_account_id)
    finally:
        engine.dispose()
    return accounts


def fee_schedule(settings: Settings) -> FeeSchedule:
    """The platform's fee schedule in force for the app under test."""
    from quantoxbay.services.fees import FeeSchedule

    return FeeSchedule(settings.platform_fee_basis_points, settings.platform_fee_fixed_cents)


def destination_charge(
    url: str, product_id: int, amount_cents: int, idempotency_key: str, fees: FeeSchedule
) -> Destination:
    """The destination charge services.checkout.start_checkout makes of a sale of ``product_id``
    for ``amount_cents``: to the seller's chargeable account (refused while payouts are not set
    up), the platform's fee as the application fee, a transfer group derived from the key."""
    from sqlmodel import Session

    from quantoxbay.models import Product
    from quantoxbay.services import connect
    from quantoxbay.services.checkout import Destination

    with Session(_engine(url)) as session:
        product = session.get(Product, product_id)
        assert product is not None, f"product {product_id} does not exist"
        account_id = connect.chargeable_account_id(session=session, seller_id=product.seller_id)
    return Destination(account_id, fees, fees.fee_cents(amount_cents), f"qb-{idempotency_key[:32]}")


def payment_intent_data(metadata: dict[str, str], destination: Destination) -> dict[str, Any]:
    """``payment_intent_data`` as services.checkout sends it for a destination charge."""
    data: dict[str, Any] = {"metadata": metadata, "transfer_group": destination.transfer_group,
                  "transfer_data": {"destination": destination.account_id}}  # fmt: skip
    if destination.application_fee_cents > 0:
        data["application_fee_amount"] = destination.application_fee_cents
    return data


# --- servers in subprocesses ------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path
    # The embedded Stripe's key of the app's install (reflex_app only).
    stripe_key: str = ""
    # The environment the app runs with (reflex_app only): the CLI run with it sees the same install.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid


@functools.cache
def _engine(url: str):
    from quantoxbay.db import make_engine

    return make_engine(url)


def record_checkout(
    url: str,
    session_id: str,
    *,
    buyer_id: int,
    product_id: int,
    subtotal_cents: int = 999,
    allow_promotion_codes: bool = False,
    destination: Destination | None = None,
) -> None:
    """Record a Checkout Session the benchmark created through the API as the shop's checkout does
    (``services.checkout.record_checkout_session``): fulfilment grants orders for recorded ones only."""
    from sqlmodel import Session

    from quantoxbay.services import checkout

    with Session(_engine(url)) as session:
        checkout.record_checkout_session(
            session=session,
            stripe_session_id=session_id,
            buyer_id=buyer_id,
            product_id=product_id,
            currency="usd",
            subtotal_cents=subtotal_cents,
            allow_promotion_codes=allow_promotion_codes,
            promotion_id=None,
            destination=destination,
        )
        session.commit()


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float, want_html: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500 and (not want_html or b"<html" in resp.read(2000).lower()):
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"no answer at {url} within {timeout:.0f}s:\n{log.read_text()[-4000:]}")


@contextmanager
def serve(
    args: list[str], env: dict[str, str], log: Path, probe_path: str, timeout: float = 60.0, port: int = 0
) -> Iterator[Server]:
    """Start ``args`` (must listen on ``port``) in its own process group; stop the group at exit."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + probe_path, proc, log, timeout)
        yield Server(proc, url, log)
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def uvicorn_args(factory: str, port: int) -> list[str]:
    """One uvicorn worker serving ``module:function`` (an app factory)."""
    return [
        PYTHON, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SMTP_URL", "REDIS_URL", "DATABASE_URL")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def tempdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def own_settings_in_tempdir() -> None:
    """Give this process's own settings (``get_settings``: tests/stripe_payloads.py reads the fee
    schedule from them) a DATA_DIR of its own, removed at exit, so a bench never writes secrets
    into the checkout's ./data."""
    import atexit
    import shutil

    if "DATA_DIR" not in os.environ:
        path = tempdir("qb-bench-settings-")
        os.environ["DATA_DIR"] = str(path)
        atexit.register(shutil.rmtree, path, True)


@contextmanager
def reflex_app(
    data_dir: Path,
    *,
    backend_only: bool,
    database_url: str = "",
    timeout: float = 420.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """The real app under ``reflex run --env prod`` (as tests/e2e/conftest.py's live_app starts it),
    with the embedded Stripe delivering webhooks to it. Migrates first; holds the ``.web`` build
    lock while starting, like the browser tests, so two builds never run at once."""
    import fcntl

    port = free_port()
    extra = {"DATA_DIR": str(data_dir), "APP_PORT": str(port), "PUBLIC_URL": f"http://localhost:{port}",
             "REFLEX_USE_SYSTEM_BUN": "1", "REFLEX_TELEMETRY_ENABLED": "false",
             "PATH": f"{ROOT / '.tools/node_modules/.bin'}:{Path(PYTHON).parent}:{os.environ.get('PATH', '')}"}  # fmt: skip
    if database_url:
        extra["DATABASE_URL"] = database_url
    extra.update(extra_env or {})
    env = base_env(**extra)
    for key in (
        "STRIPE_SECRET_KEY",
        "STRIPE_LOCAL_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_API_BASE",
        "STORAGE_URL",
        "HOST",
    ):
        env.pop(key, None)
    migrate = subprocess.run(
        [PYTHON, "-m", "quantoxbay", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{migrate.stderr[-3000:]}")
    args = [
        PYTHON,
        "-m",
        "reflex",
        "run",
        "--env",
        "prod",
        "--backend-port",
        str(port),
        "--loglevel",
        "warning",
    ]
    args += ["--backend-only"] if backend_only else ["--single-port", "--frontend-port", str(port)]
    log = data_dir / "app.log"
    lock = (ROOT / ".web.build.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            url = f"http://localhost:{port}"
            wait_http(
                url + ("/api/health" if backend_only else "/"), proc, log, timeout, want_html=not backend_only
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
        from quantoxbay.settings import install_stripe_local_key

        yield Server(proc, url, log, stripe_key=install_stripe_local_key(data_dir), env=env)
    finally:
        stop_group(proc)


# --- process memory ----------------------------------------------------------------


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_hwm(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# --- a raw HTTP/1.1 keep-alive client ----------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams: cheap enough that the client
    is never what limits a few thousand requests per second on loopback."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = 0, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            data = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
            payload = bytes(data)
        else:
            payload = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def drive(
    port: int, requests: list[tuple[str, bytes, dict[str, str]]], concurrency: int, timeout: float
) -> tuple[float, list[int]]:
    """POST every (path, body, headers) once over ``concurrency`` keep-alive connections.

    Returns (elapsed seconds, statuses in request order). Bounded by ``timeout``.
    """
    statuses = [0] * len(requests)
    cursor = iter(range(len(requests)))

    async def worker() -> None:
        conn = HttpConnection("127.0.0.1", port)
        try:
            for i in cursor:
                path, body, headers = requests[i]
                statuses[i], _ = await conn.request("POST", path, body, headers)
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
    return time.perf_counter() - start, statuses


def run_main(main: Callable[[list[str] | None], int]) -> None:
    raise SystemExit(main(sys.argv[1:]))


def timed_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock milliseconds of ``repeat`` calls of ``fn``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]
