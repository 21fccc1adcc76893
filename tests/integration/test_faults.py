"""Fault and abuse tests, bounded in time: a backend killed with SIGKILL in the middle of a burst,
the database unavailable during a webhook, and the same event delivered many times."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
import stripe
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from quantoxbay import db as db_module
from quantoxbay.api import build_api
from quantoxbay.db import make_engine
from quantoxbay.models import DownloadGrant, Order, Role
from quantoxbay.services import checkout
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user
from tests.stripe_keys import bearer, stripe_local_key
from tests.stripe_payloads import checkout_session, event, signed
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/stripe/webhook"


def _count(engine: Engine, model, *where) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


@pytest.fixture
def sale(app_engine: Engine, tmp_path: Path) -> tuple[int, int]:
    from quantoxbay.storage.local import LocalStorage

    with Session(app_engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product = create_published_product(s, LocalStorage(tmp_path / "files"), seller)
        s.commit()
        return buyer.id, product.id  # type: ignore[return-value]


def test_same_event_ten_times_shuffled_and_twenty_concurrently(app_engine: Engine, sale) -> None:
    buyer_id, product_id = sale
    client = TestClient(build_api())
    secret = get_settings().stripe_webhook_secret
    cs = checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id)
    evt = event(cs)
    # Ten deliveries interleaved with other events, in random order.
    others = [event(checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id)) for _ in range(5)]
    deliveries = [evt] * 10 + others
    random.Random(7).shuffle(deliveries)
    for e in deliveries:
        body, headers = signed(e, secret)
        assert client.post(URL, content=body, headers=headers).status_code == 200

    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def deliver() -> None:
        body, headers = signed(evt, secret)
        barrier.wait()
        statuses.append(client.post(URL, content=body, headers=headers).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 20
    assert _count(app_engine, Order, Order.stripe_session_id == cs["id"]) == 1
    assert _count(app_engine, Order, Order.buyer_id == buyer_id) == 6
    assert _count(app_engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 6


def test_database_unavailable_answers_5xx_then_redelivery_succeeds(
    app_engine: Engine, sale, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer_id, product_id = sale
    secret = get_settings().stripe_webhook_secret
    evt = event(checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id))
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    monkeypatch.setattr(db_module, "get_engine", lambda: dead)
    client = TestClient(build_api())
    body, headers = signed(evt, secret)
    assert client.post(URL, content=body, headers=headers).status_code == 500

    monkeypatch.setattr(db_module, "get_engine", lambda: app_engine)
    body, headers = signed(evt, secret)  # Stripe signs each attempt anew
    assert client.post(URL, content=body, headers=headers).status_code == 200
    assert _count(app_engine, Order, Order.buyer_id == buyer_id, Order.status == "paid") == 1


# --- SIGKILL in the middle of a burst --------------------------------------------


def _start_backend(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "quantoxbay.api:build_api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(log.read_text()[-2000:])


@pytest.mark.slow  # a real backend in a subprocess, killed and restarted
@pytest.mark.timeout(240)
def test_sigkill_mid_burst_loses_and_doubles_nothing(tmp_path: Path) -> None:
    from quantoxbay.migrations import upgrade_to_head
    from quantoxbay.storage.local import LocalStorage

    port = free_port()
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "APP_PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    db_url = f"sqlite:///{data_dir / 'quantoxbay.db'}"
    data_dir.mkdir()
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        seller = create_user(s, Role.SELLER)
        buyers = [create_user(s, Role.BUYER) for _ in range(3)]
        product_id = create_published_product(s, LocalStorage(data_dir / "files"), seller).id
        s.commit()

    log = tmp_path / "backend.log"
    proc = _start_backend(env, port, log)
    base = f"http://127.0.0.1:{port}/stripe-local"
    client = stripe.StripeClient(stripe_local_key(data_dir), base_addresses={"api": base})
    auth = bearer(data_dir)
    session_ids: list[str] = []
    for i in range(24):
        buyer = buyers[i % 3]
        created = client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"currency": "usd", "unit_amount": 999, "product_data": {"name": "P"}},
                    }
                ],
                "client_reference_id": str(buyer.id),
                "metadata": {"buyer_id": str(buyer.id), "product_id": str(product_id)},
                "success_url": "http://127.0.0.1/ok?session_id={CHECKOUT_SESSION_ID}",
                "cancel_url": "http://127.0.0.1/cancel",
            }
        )
        session_ids.append(created.id)
    with Session(engine) as s:  # as the shop's checkout does: fulfilment only grants recorded sessions
        for i, sid in enumerate(session_ids):
            checkout.record_checkout_session(
                session=s, stripe_session_id=sid, buyer_id=buyers[i % 3].id, product_id=product_id,
                currency="usd", subtotal_cents=999, allow_promotion_codes=False, promotion_id=None,
            )  # fmt: skip
        s.commit()

    paid: list[str] = []
    with httpx.Client(timeout=10) as http:
        for i, sid in enumerate(session_ids):
            if i == 12:
                proc.send_signal(signal.SIGKILL)  # mid-burst: deliveries in flight or queued are cut off
                proc.wait(10)
                proc = _start_backend(env, port, log)
            response = http.post(f"{base}/_local/checkout/{sid}/pay", headers=auth)
            assert response.status_code == 200, response.text
            paid.append(sid)
        flushed = http.post(f"{base}/_local/webhooks/flush", params={"timeout": 60}, headers=auth, timeout=90)
        assert flushed.json()["empty"] is True, flushed.text
    try:
        # Every payment made is one order, none lost, none doubled.
        with Session(engine) as s:
            orders = s.exec(select(Order.stripe_session_id, Order.status)).all()
        assert sorted(sid for sid, _ in orders) == sorted(paid)
        assert {status for _, status in orders} == {"paid"}
    finally:
        proc.terminate()
        proc.wait(10)
        engine.dispose()
