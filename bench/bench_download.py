"""Download: a large file streamed through the real ``GET /api/downloads/{token}`` (signed link,
session cookie, order/grant check, LocalStorage streaming) against Starlette's ``FileResponse``
of the same file in the same server. Goals: throughput ratio >= 0.8, server RSS growth < 64 MB.

    python -m bench.bench_download                    # 1 GiB
    python bench/bench_download.py --size-mib 256 --rounds 3

One uvicorn worker in a subprocess; a fresh DATA_DIR with a SQLite database, a buyer with a
session cookie (accounts.start_session), a paid order and grant (fulfillment.fulfill_checkout)
for a product whose file is the test file, stored through LocalStorage. The file is read once
to warm the page cache, then the two routes alternate. The client is a raw socket reading
into a reused 1 MiB buffer (it never holds the body). Throughput is MB/s (10^6 bytes). RSS
growth is the server's VmHWM after a download minus its VmRSS just before it (VmHWM reset
through /proc/<pid>/clear_refs first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    base_env,
    free_port,
    fresh_database,
    load_note,
    onboard_sellers,
    own_settings_in_tempdir,
    reset_hwm,
    run_main,
    serve,
    status_kib,
    tempdir,
    uvicorn_args,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

MIB = 1024 * 1024
GOAL_RATIO = 0.8
GOAL_RSS_MB = 64
BASELINE_PATH = "/bench/file-response"
APP_SECRET = "bench-app-secret-" + "x" * 32


def server_app() -> Starlette:
    """The server under test (uvicorn --factory): QuantoxBay's API plus a FileResponse of the same file."""
    from starlette.responses import FileResponse
    from starlette.routing import Route

    from quantoxbay.api import build_api

    path = os.environ["BENCH_FILE"]

    async def baseline(_request: Request) -> FileResponse:
        return FileResponse(path, filename="bench.bin")

    api = build_api()
    api.router.routes.append(Route(BASELINE_PATH, baseline, methods=["GET"]))
    return api


class GeneratedStream:
    """``size`` bytes made on demand (one random 1 MiB block repeated); never held whole."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(MIB)

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        out = (self.block * (n // MIB + 1))[:n] if n > MIB else self.block[:n]
        self.left -= n
        return out


def prepare(url: str, data_dir: Path, size: int) -> tuple[str, str, Path]:
    """A buyer with a session, a paid order for a product holding a ``size``-byte file.

    Returns (download path, session cookie, the stored file's path).
    """
    from quantoxbay.db import make_engine, session_scope
    from quantoxbay.models import ProductFile, Role
    from quantoxbay.services import accounts, catalog, downloads, fulfillment
    from quantoxbay.storage.local import LocalStorage
    from tests.stripe_payloads import checkout_session

    storage = LocalStorage(data_dir / "files")
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            seller = accounts.create_user(
                session=s, email="seller@bench.test", password="bench-password-123", role=Role.SELLER
            )
            buyer = accounts.create_user(session=s, email="buyer@bench.test", password="bench-password-123")
        assert seller.id is not None and buyer.id is not None
        # A priced product is published only once its seller has payouts set up; the recorded
        # session then carries the destination charge (tests/stripe_payloads.py).
        onboard_sellers(url, data_dir, [seller.id])
        with session_scope(engine) as s:
            product = catalog.create_product(
                session=s, seller_id=seller.id, title="Big file", price_cents=999
            )
            assert product.id is not None
            record = catalog.add_product_file(
                session=s, storage=storage, product_id=product.id, seller_id=seller.id, filename="big.dat",
                stream=GeneratedStream(size), max_bytes=size + 1,  # type: ignore[arg-type]
            )  # fmt: skip
            catalog.publish_product(session=s, storage=storage, product_id=product.id, seller_id=seller.id)
            result = fulfillment.fulfill_checkout(
                session=s, checkout_session=checkout_session(s, buyer_id=buyer.id, product_id=product.id)
            )
            assert result.order_id is not None and record.id is not None
            cookie = accounts.start_session(session=s, user_id=buyer.id)
            link = downloads.download_url(
                secret=APP_SECRET, user_id=buyer.id, order_id=result.order_id, file_id=record.id
            )
            key = s.get(ProductFile, record.id).storage_key  # type: ignore[union-attr]
    finally:
        engine.dispose()
    path = storage.local_path(key)
    assert path is not None and path.stat().st_size == size
    return link, cookie, path


def fetch(port: int, path: str, cookie: str, expect: int) -> float:
    """GET ``path`` and read the body into a reused buffer; seconds taken."""
    buf = bytearray(MIB)
    view = memoryview(buf)
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: qb_session={cookie}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"connection closed before headers: {head[:200]!r}")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        status = int(head[9:12])
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {rest[:300]!r}")
        got = len(rest)
        while got < expect:
            n = sock.recv_into(view)
            if n == 0:
                break
            got += n
    elapsed = time.perf_counter() - start
    if got != expect:
        raise RuntimeError(f"GET {path}: {got} bytes, expected {expect}")
    return elapsed


def measure(pid: int, port: int, path: str, cookie: str, size: int) -> tuple[float, float]:
    """(seconds, server RSS growth in MB) for one download."""
    reset_hwm(pid)
    before = status_kib(pid, "VmRSS")
    elapsed = fetch(port, path, cookie, size)
    growth = (status_kib(pid, "VmHWM") - before) / 1024
    return elapsed, growth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2, help="downloads per route (alternating)")
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    own_settings_in_tempdir()
    workdir = tempdir("qb-bench-download-")
    try:
        data_dir = workdir / "data"
        with fresh_database("sqlite", workdir) as url:
            link, cookie, file_path = prepare(url, data_dir, size)
            with file_path.open("rb") as fh:  # warm the page cache: both routes read from memory
                while fh.read(8 * MIB):
                    pass
            port = free_port()
            env = base_env(
                DATABASE_URL=url, DATA_DIR=str(data_dir), APP_SECRET=APP_SECRET, APP_PORT=str(port),
                STRIPE_SECRET_KEY="sk_test_bench_unused", STRIPE_WEBHOOK_SECRET="whsec_bench_unused",
                STRIPE_CONNECT_WEBHOOK_SECRET="whsec_bench_connect_unused",
                BENCH_FILE=str(file_path),
            )  # fmt: skip
            results: dict[str, list[tuple[float, float]]] = {"file": [], "real": []}
            with serve(uvicorn_args("bench.bench_download:server_app", port), env, workdir / "server.log",
                       "/api/health", port=port) as server:  # fmt: skip
                fetch(port, BASELINE_PATH, cookie, size)  # warm-up
                for _ in range(args.rounds):
                    results["file"].append(measure(server.pid, port, BASELINE_PATH, cookie, size))
                    results["real"].append(measure(server.pid, port, link, cookie, size))
                rss_mb = status_kib(server.pid, "VmRSS") / 1024
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def mbps(kind: str) -> float:
        return size * len(results[kind]) / sum(t for t, _ in results[kind]) / 1e6

    growth = {k: max(g for _, g in v) for k, v in results.items()}
    ratio = mbps("real") / mbps("file")
    print(
        f"download {args.size_mib} MiB x {args.rounds}, one uvicorn worker (RSS {rss_mb:.0f} MB at the end): "
        f"FileResponse {mbps('file'):.0f} MB/s, peak RSS growth {growth['file']:.1f} MB; "
        f"/api/downloads/{{token}} {mbps('real'):.0f} MB/s, peak RSS growth {growth['real']:.1f} MB "
        f"(goal < {GOAL_RSS_MB} MB); {load_note()}"
    )
    print(f"ratio download /api/downloads vs FileResponse: {ratio:.2f} (goal >= {GOAL_RATIO})")
    return 0 if ratio >= GOAL_RATIO and growth["real"] < GOAL_RSS_MB else 1


if __name__ == "__main__":
    run_main(main)
