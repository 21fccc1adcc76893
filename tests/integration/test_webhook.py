"""POST /api/stripe/webhook with really signed payloads: good, bad, expired, replayed, duplicate,
concurrent; and the fulfilment race (webhook and success page at once) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from quantoxbay.api import build_api
from quantoxbay.db import session_scope
from quantoxbay.models import DownloadGrant, Order, Role, WebhookEvent
from quantoxbay.services import fulfillment, receipts
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session, event, signed

URL = "/api/stripe/webhook"


@pytest.fixture
def client(app_engine: Engine) -> TestClient:
    return TestClient(build_api())


@pytest.fixture
def sale(app_engine: Engine, tmp_path):
    from quantoxbay.storage.local import LocalStorage

    with Session(app_engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product = create_published_product(s, LocalStorage(tmp_path / "files"), seller)
        s.commit()
        return buyer.id, product.id


def _count(engine: Engine, model, *where) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def _secret() -> str:
    return get_settings().stripe_webhook_secret


def test_signed_completed_event_creates_the_order(client: TestClient, app_engine: Engine, sale) -> None:
    buyer_id, product_id = sale
    cs = checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id)
    body, headers = signed(event(cs), _secret())
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["duplicate"] is False
    assert _count(app_engine, Order, Order.stripe_session_id == cs["id"], Order.status == "paid") == 1
    assert _count(app_engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 1


@pytest.mark.parametrize(
    "case", ["missing", "malformed", "wrong_secret", "expired", "future", "tampered", "not_json"]
)
def test_bad_signatures_get_400_and_write_nothing(
    client: TestClient, app_engine: Engine, sale, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    buyer_id, product_id = sale
    evt = event(checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id))
    body, headers = signed(evt, _secret())
    if case == "missing":
        headers.pop("Stripe-Signature")
    elif case == "malformed":
        headers["Stripe-Signature"] = "garbage"
    elif case == "wrong_secret":
        body, headers = signed(evt, "whsec_not_ours")
    elif case == "expired":
        body, headers = signed(evt, _secret(), timestamp=int(time.time()) - 301)
    elif case == "future":
        body, headers = signed(evt, _secret(), timestamp=int(time.time()) + 3600)
    elif case == "tampered":
        body = body.replace(b'"paid"', b'"paid" ')
    elif case == "not_json":
        import stripe

        body = b"not json"
        headers["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header("not json", _secret())
    before = _count(app_engine, WebhookEvent)
    with caplog.at_level(logging.INFO, logger="quantoxbay.api.webhook"):
        response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 400
    # One fixed message whatever failed; the verifier's own words go to the log only.
    assert response.json() == {"error": "invalid signature or payload"}
    refusal = [r.getMessage() for r in caplog.records if r.getMessage().startswith("webhook refused: ")]
    assert len(refusal) == 1 and refusal[0] != "webhook refused: "
    assert refusal[0].removeprefix("webhook refused: ") not in response.text
    assert _count(app_engine, WebhookEvent) == before
    assert _count(app_engine, Order, Order.buyer_id == buyer_id) == 0


def test_replayed_body_with_old_signature_is_refused(client: TestClient, app_engine: Engine, sale) -> None:
    buyer_id, product_id = sale
    evt = event(checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id))
    body, headers = signed(evt, _secret(), timestamp=int(time.time()) - 3600)
    assert client.post(URL, content=body, headers=headers).status_code == 400


def test_duplicate_and_shuffled_deliveries_make_one_order(
    client: TestClient, app_engine: Engine, sale
) -> None:
    buyer_id, product_id = sale
    cs = checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id)
    evt = event(cs)
    # Stripe may even create two Event objects for one change: dedupe on the session too.
    twin = event(cs, event_id=None)
    results = []
    for e in [evt, twin, evt, evt, twin]:
        body, headers = signed(e, _secret())
        results.append(client.post(URL, content=body, headers=headers).json()["duplicate"])
    assert results == [False, False, True, True, True]
    assert _count(app_engine, Order, Order.stripe_session_id == cs["id"]) == 1
    assert _count(app_engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 1


def test_concurrent_deliveries_make_one_order(client: TestClient, app_engine: Engine, sale) -> None:
    buyer_id, product_id = sale
    cs = checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id)
    evt = event(cs)
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def deliver() -> None:
        body, headers = signed(evt, _secret())
        barrier.wait()
        statuses.append(client.post(URL, content=body, headers=headers).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200] * 10
    assert _count(app_engine, Order, Order.stripe_session_id == cs["id"]) == 1
    assert _count(app_engine, WebhookEvent, WebhookEvent.stripe_event_id == evt["id"]) == 1
    assert _count(app_engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 1


def test_failure_answers_500_then_redelivery_succeeds(
    client: TestClient, app_engine: Engine, sale, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer_id, product_id = sale
    evt = event(checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id))

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    # The receipt row is written after the order, item and grant: all of them must roll back.
    with monkeypatch.context() as patched:
        patched.setattr(receipts, "queue_receipts", broken)
        body, headers = signed(evt, _secret())
        assert client.post(URL, content=body, headers=headers).status_code == 500
    assert _count(app_engine, Order, Order.buyer_id == buyer_id) == 0
    assert _count(app_engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 0
    with Session(app_engine) as s:
        row = s.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == evt["id"])).one()
        assert row.outcome == "failed" and "database went away" in row.error

    body, headers = signed(evt, _secret())
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200 and response.json()["duplicate"] is False
    assert _count(app_engine, Order, Order.buyer_id == buyer_id, Order.status == "paid") == 1


def test_unhandled_event_types_are_recorded_and_ignored(client: TestClient, app_engine: Engine) -> None:
    evt = event({"id": "cus_123", "object": "customer"}, type_="customer.created")
    body, headers = signed(evt, _secret())
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


def _race_once(engine: Engine, buyer_id: int, product_id: int) -> None:
    """Webhook path and success-page path for one session at the same instant."""
    from quantoxbay.services.webhook_events import process_event

    cs = checkout_session(engine, buyer_id=buyer_id, product_id=product_id)
    evt = event(cs)
    barrier = threading.Barrier(2)
    changed: list[bool] = []
    errors: list[BaseException] = []

    def webhook_path() -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                changed.append(bool(process_event(session=s, event=evt, raw=json.dumps(evt)).announcements))
        except BaseException as exc:
            errors.append(exc)

    def success_page_path() -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                changed.append(fulfillment.fulfill_checkout(session=s, checkout_session=cs).changed)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=webhook_path), threading.Thread(target=success_page_path)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(changed) == [False, True]
    assert _count(engine, Order, Order.stripe_session_id == cs["id"]) == 1


def test_webhook_and_success_page_racing_make_one_order(app_engine: Engine, sale) -> None:
    """Both paths end in fulfill_checkout; run them at once, many times, in separate transactions."""
    buyer_id, product_id = sale
    for _ in range(5):
        _race_once(app_engine, buyer_id, product_id)
    assert _count(app_engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 5


def _event_row(engine: Engine, event_id: str) -> WebhookEvent:
    with Session(engine) as s:
        return s.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id)).one()


def test_a_session_the_shop_never_created_answers_2xx_rejected_and_grants_nothing(
    client: TestClient, app_engine: Engine, sale
) -> None:
    """Issue: with the API key, someone made a shop-looking Checkout Session for $0.50 and paid it;
    Stripe's signed event then made the order. Signed is not sold: no record, no order."""
    buyer_id, product_id = sale
    forged = checkout_session(None, buyer_id=buyer_id, product_id=product_id, amount=50)
    evt = event(forged)
    body, headers = signed(evt, _secret())
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "rejected"
    assert response.json()["reason"] == "checkout session not created by this shop"
    assert _count(app_engine, Order, Order.stripe_session_id == forged["id"]) == 0
    assert _count(app_engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 0
    row = _event_row(app_engine, evt["id"])
    assert (row.outcome, row.reason, row.error) == (
        "rejected",
        "checkout session not created by this shop",
        "",
    )
    # Stripe's retry of the same event: a duplicate, nothing more.
    body, headers = signed(evt, _secret())
    again = client.post(URL, content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["outcome"] == "rejected"


def test_a_recorded_session_paid_below_its_price_is_rejected(
    client: TestClient, app_engine: Engine, sale
) -> None:
    buyer_id, product_id = sale
    cs = checkout_session(app_engine, buyer_id=buyer_id, product_id=product_id, amount=9900)
    evt = event(cs | {"amount_subtotal": 50, "amount_total": 50})
    body, headers = signed(evt, _secret())
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200 and response.json()["outcome"] == "rejected"
    assert _count(app_engine, Order, Order.stripe_session_id == cs["id"]) == 0
    assert _event_row(app_engine, evt["id"]).reason == "subtotal 50 instead of 9900"


def test_a_paid_session_that_is_not_the_shops_is_ignored_not_failed(
    client: TestClient, app_engine: Engine, sale
) -> None:
    """Another integration's session on the same account (no shop metadata) used to answer 500 for
    ever; Stripe would retry it for days."""
    buyer_id, product_id = sale
    cs = checkout_session(None, buyer_id=buyer_id, product_id=product_id) | {
        "metadata": {},
        "client_reference_id": None,
    }
    evt = event(cs)
    body, headers = signed(evt, _secret())
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert _event_row(app_engine, evt["id"]).outcome == "ignored"
    assert _count(app_engine, Order, Order.stripe_session_id == cs["id"]) == 0
