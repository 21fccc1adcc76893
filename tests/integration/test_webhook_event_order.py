"""The embedded Stripe's real signed events for purchases, disputes and a refund, delivered to
POST /api/stripe/webhook in Stripe's order and in shuffled orders: the shop ends in the same
state whichever comes first (a refund or a dispute may arrive before its order exists)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from quantoxbay.api import build_api
from quantoxbay.db import session_scope
from quantoxbay.models import (
    ChargeEvent,
    DownloadGrant,
    DownloadLog,
    MailOutbox,
    Order,
    OrderItem,
    Product,
    Refund,
    Role,
    SalesRollup,
    WebhookEvent,
)
from quantoxbay.services import checkout, fulfillment
from quantoxbay.services.webhook_events import process_event
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user
from tests.integration import test_stripe_local
from tests.integration.test_stripe_local import SECRET, Env, pay_on_page, session_params
from tests.stripe_payloads import checkout_session, event

env = test_stripe_local.env  # the embedded Stripe, served with its webhook receiver (a fixture)

pytestmark = pytest.mark.timeout(240)

URL = "/api/stripe/webhook"
DISPUTE_CARD = "4000000000000259"
GOOD_CARD = "4242424242424242"
HANDLED = ("checkout.session.completed", "charge.refunded", "charge.dispute.created", "charge.dispute.closed")


@pytest.fixture
def app_engine(app_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    # The shop verifies with the secret the embedded Stripe signs with.
    monkeypatch.setattr(get_settings(), "stripe_webhook_secret", SECRET)
    yield app_engine


@dataclass
class Delivery:
    event_id: str
    type: str
    body: str
    signature: str


def _buy(env: Env, engine: Engine, buyer_id: int, product_id: int, card: str) -> tuple[str, str]:
    """Pay a Checkout Session on the hosted page, recorded as the shop's checkout records it;
    returns (session id, payment intent id)."""
    params = session_params(
        line_items=[
            {
                "price_data": {"currency": "usd", "unit_amount": 1000, "product_data": {"name": "A product"}},
                "quantity": 1,
            }
        ],
        client_reference_id=str(buyer_id),
        metadata={"buyer_id": str(buyer_id), "product_id": str(product_id)},
        payment_intent_data={"metadata": {"product_id": str(product_id)}},
    )
    session = env.client.v1.checkout.sessions.create(params=params)
    with Session(engine) as s:
        checkout.record_checkout_session(
            session=s, stripe_session_id=session.id, buyer_id=buyer_id, product_id=product_id,
            currency="usd", subtotal_cents=1000, allow_promotion_codes=False, promotion_id=None,
        )  # fmt: skip
        s.commit()
    assert pay_on_page(env.http, session.url, card).status_code == 303
    paid = env.client.v1.checkout.sessions.retrieve(session.id)
    return session.id, str(paid.payment_intent)


def _dispute_of(env: Env, pi: str) -> str:
    [dispute] = [
        e["data"]["object"]["id"]
        for e in env.receiver.events
        if e["type"] == "charge.dispute.created" and e["data"]["object"]["payment_intent"] == pi
    ]
    return str(dispute)


def _wipe(engine: Engine) -> None:
    """Forget every order and event (users and products stay) before the next delivery order."""
    with Session(engine) as s:
        for model in (ChargeEvent, WebhookEvent, DownloadLog, MailOutbox, DownloadGrant, Refund, SalesRollup):
            s.execute(delete(model))
        s.execute(delete(OrderItem))
        s.execute(delete(Order))
        s.execute(update(Product).values(sales_count=0))
        s.commit()


def _state(engine: Engine, session_ids: list[str]) -> dict[str, object]:
    with Session(engine) as s:
        state: dict[str, object] = {}
        for sid in session_ids:
            order = s.exec(select(Order).where(Order.stripe_session_id == sid)).one()
            revoked = s.exec(select(DownloadGrant.revoked).where(DownloadGrant.order_id == order.id)).all()
            state[sid] = (order.status, order.refunded_cents, order.total_cents, sorted(revoked))
        rollup = s.exec(
            select(SalesRollup.product_id, SalesRollup.gross_cents, SalesRollup.refunded_cents)
        ).all()
        state["rollup"] = sorted(rollup)
        state["kept"] = s.exec(select(ChargeEvent.stripe_event_id).where(ChargeEvent.status == "kept")).all()
        return state


def _deliver(client: TestClient, deliveries: list[Delivery]) -> None:
    for d in deliveries:
        response = client.post(
            URL, content=d.body, headers={"Stripe-Signature": d.signature, "Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "processed", (d.type, response.text)


def test_events_in_any_order_end_in_the_state_of_stripes_order(
    env: Env, app_engine: Engine, tmp_path
) -> None:
    from quantoxbay.storage.local import LocalStorage

    with Session(app_engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        storage = LocalStorage(tmp_path / "files")
        products = [create_published_product(s, storage, seller, price_cents=1000).id for _ in range(4)]
        s.commit()
    assert buyer.id is not None

    disputed = _buy(env, app_engine, buyer.id, products[0], DISPUTE_CARD)  # the dispute stays open
    refunded = _buy(env, app_engine, buyer.id, products[1], GOOD_CARD)  # then partly refunded
    won = _buy(env, app_engine, buyer.id, products[2], DISPUTE_CARD)  # the dispute is then won
    lost = _buy(env, app_engine, buyer.id, products[3], DISPUTE_CARD)  # the dispute is then lost
    assert env.runtime.flush_webhooks(10)
    env.client.v1.refunds.create(params={"payment_intent": refunded[1], "amount": 400})
    for (_, pi), evidence in ((won, "winning_evidence"), (lost, "losing_evidence")):
        env.client.v1.disputes.update(
            _dispute_of(env, pi), params={"evidence": {"uncategorized_text": evidence}}
        )
    assert env.runtime.flush_webhooks(10)

    ours = {sid for sid, _ in (disputed, refunded, won, lost)} | {
        pi for _, pi in (disputed, refunded, won, lost)
    }
    by_id = {
        e["id"]: e
        for e in env.receiver.events
        if e["type"] in HANDLED
        and ({e["data"]["object"].get("id"), e["data"]["object"].get("payment_intent")} & ours)
    }
    # Stripe's order: its event list, newest first.
    listed = env.client.v1.events.list(params={"limit": 100, "types": list(HANDLED)}).data
    stripe_order = [
        Delivery(e.id, e.type, *env.receiver.raw[e.id]) for e in reversed(listed) if e.id in by_id
    ]
    assert sorted(d.type for d in stripe_order) == sorted(
        ["checkout.session.completed"] * 4
        + ["charge.refunded"]
        + ["charge.dispute.created"] * 3
        + ["charge.dispute.closed"] * 2
    )
    session_ids = [disputed[0], refunded[0], won[0], lost[0]]

    client = TestClient(build_api())
    _wipe(app_engine)
    _deliver(client, stripe_order)
    expected = _state(app_engine, session_ids)
    assert expected[disputed[0]] == ("disputed", 0, 1000, [True])
    assert expected[refunded[0]] == ("partially_refunded", 400, 1000, [False])
    assert expected[won[0]] == ("paid", 0, 1000, [False])
    assert expected[lost[0]] == ("refunded", 1000, 1000, [True])
    assert expected["kept"] == []

    rng = random.Random(20261202)
    post_purchase_first = sorted(stripe_order, key=lambda d: d.type == "checkout.session.completed")
    orders = [list(reversed(stripe_order)), post_purchase_first]
    orders += [rng.sample(stripe_order, len(stripe_order)) for _ in range(4)]
    for shuffled in orders:
        _wipe(app_engine)
        _deliver(client, shuffled)
        assert _state(app_engine, session_ids) == expected, [d.type for d in shuffled]


def test_a_dispute_racing_its_order_on_another_connection_is_applied(app_engine: Engine, tmp_path) -> None:
    """The order's transaction has not committed when the dispute comes: neither can see the
    other's row, so the dispute waits for the order's commit instead of being kept unseen."""
    from quantoxbay.storage.local import LocalStorage

    with Session(app_engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product_id = create_published_product(
            s, LocalStorage(tmp_path / "files"), seller, price_cents=1000
        ).id
        s.commit()
    cs = checkout_session(app_engine, buyer_id=buyer.id, product_id=product_id, amount=1000)
    dispute = {
        "id": "dp_race",
        "object": "dispute",
        "payment_intent": cs["payment_intent"],
        "status": "needs_response",
    }
    evt = event(dispute, type_="charge.dispute.created")
    done = threading.Event()

    def deliver() -> None:
        with session_scope() as s:
            process_event(session=s, event=evt, raw=json.dumps(evt))
        done.set()

    with Session(app_engine) as first:
        order_id = fulfillment.fulfill_checkout(session=first, checkout_session=cs).order_id
        thread = threading.Thread(target=deliver)
        thread.start()
        assert not done.wait(0.5)  # it waits for the order's transaction
        first.commit()
    thread.join(30)
    assert done.is_set()
    with Session(app_engine) as s:
        order = s.get(Order, order_id)
        assert order is not None and order.status == "disputed"
        assert s.exec(select(DownloadGrant.revoked).where(DownloadGrant.order_id == order_id)).all() == [True]
        kept = s.exec(
            select(ChargeEvent.status).where(ChargeEvent.stripe_payment_intent_id == cs["payment_intent"])
        )
        assert kept.all() == ["applied"]
