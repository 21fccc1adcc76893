"""What Stripe's official Checkout sample (one-time payments) does, against the embedded Stripe.

The sample configures the stripe module globally (``stripe.api_key``), retrieves
a Price by id, creates a Checkout Session with that Price, lets the buyer pay
on the hosted page, and verifies webhook events with
``stripe.Webhook.construct_event`` and its endpoint's secret. Here the only
change is ``stripe.api_base``; the endpoint is registered through
``/v1/webhook_endpoints`` and its returned secret is the one that verifies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from quantoxbay.stripe_local import StripeLocal, StripeLocalConfig, create_stripe_local_app
from tests.fixtures.stripe_object_fields import OBJECT_FIELDS
from tests.integration.test_stripe_local import Receiver, ServerThread, pay_on_page, wait_for
from tests.stripe_keys import bearer, stripe_local_key
from tests.support.servers import free_port

pytestmark = pytest.mark.timeout(60)

SAMPLE_EVENTS = ["checkout.session.completed", "payment_intent.payment_failed", "payment_intent.succeeded"]


class Sample:
    """One embedded Stripe with two extra receivers: the sample's webhook and a slow one."""

    def __init__(self, tmp_path: Path) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        config = StripeLocalConfig(
            db_path=tmp_path / "stripe.db",
            secret_key=stripe_local_key(),
            public_base_url=f"{self.base}/stripe-local",
            webhook_url=None,  # the shop's own endpoint is not part of the sample
            webhook_secret="whsec_unused_by_the_sample",
            webhook_backoff_base_seconds=0.2,
            webhook_backoff_max_seconds=5,
            webhook_max_attempts=8,
            webhook_timeout_seconds=10,
            sweep_interval_seconds=0.2,
            poll_interval_seconds=0.05,
            rate_limit_per_second=1000,
        )
        stripe_app = create_stripe_local_app(config)
        self.runtime: StripeLocal = stripe_app.state.stripe_local
        self.receiver = Receiver(secret="")  # the secret comes from /v1/webhook_endpoints
        self.slow_hits: list[float] = []

        async def slow(request: Request) -> Response:
            self.slow_hits.append(time.monotonic())
            await asyncio.sleep(4)
            return Response("ok")

        app = Starlette(
            routes=[
                Mount("/stripe-local", stripe_app),
                Route("/webhook", self.receiver.endpoint, methods=["POST"]),
                Route("/slow", slow, methods=["POST"]),
            ]
        )
        self.server = ServerThread(app, port).start()
        self.runtime.start()

    def stop(self) -> None:
        self.server.stop()
        self.runtime.stop()


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Sample]:
    saved = (stripe.api_key, stripe.api_base)
    running = Sample(tmp_path)
    # The one change a developer makes: where the SDK sends requests.
    stripe.api_key = stripe_local_key()
    stripe.api_base = f"{running.base}/stripe-local"
    try:
        yield running
    finally:
        stripe.api_key, stripe.api_base = saved
        running.stop()


def local_pay(sample: Sample, session_id: str, card: str, **fields: str) -> httpx.Response:
    return httpx.post(
        f"{sample.base}/stripe-local/_local/checkout/{session_id}/pay",
        headers=bearer(),
        data={"card_number": card, **fields},
        timeout=10,
    )


def new_session(price_id: str) -> Any:
    # As the sample's create-checkout-session: the Price by id, a quantity, the two URLs.
    return stripe.checkout.Session.create(
        success_url="http://localhost:4242/success.html?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://localhost:4242/canceled.html",
        mode="payment",
        line_items=[{"price": price_id, "quantity": 1}],
    )


def test_the_official_checkout_sample_runs_against_the_embedded_stripe(sample: Sample) -> None:
    # Setup the sample expects: a Price (it reads its id from the environment).
    made = stripe.Price.create(
        currency="usd", unit_amount=2000, product_data={"name": "Stubborn Attachments"}
    )
    endpoint = stripe.WebhookEndpoint.create(url=f"{sample.base}/webhook", enabled_events=SAMPLE_EVENTS)
    assert endpoint.secret.startswith("whsec_") and endpoint.status == "enabled"
    sample.receiver.secret = endpoint.secret

    # GET /config: the Price by id.
    price = stripe.Price.retrieve(made.id)
    assert price.unit_amount == 2000 and price.currency == "usd"

    # Paid with 4242 on the hosted page.
    paid = new_session(price.id)
    assert paid.ui_mode == "hosted_page" and paid.url
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        response = pay_on_page(browser, paid.url)
    assert response.status_code in (302, 303), response.text
    assert "/success.html?session_id=" + paid.id in response.headers["location"]
    # GET /checkout-session?sessionId=...
    assert stripe.checkout.Session.retrieve(paid.id).payment_status == "paid"

    # Declined with 0002.
    declined = new_session(price.id)
    refused = local_pay(sample, declined.id, "4000000000000002")
    assert refused.status_code == 402 and refused.json()["error"]["decline_code"] == "generic_decline"
    assert stripe.checkout.Session.retrieve(declined.id).status == "open"

    # 3-D Secure with 3155, authenticated.
    secure = new_session(price.id)
    passed = local_pay(sample, secure.id, "4000002500003155", three_d_secure="complete")
    assert passed.status_code == 200, passed.text
    assert stripe.checkout.Session.retrieve(secure.id).payment_status == "paid"

    # POST /webhook: signed events that construct_event accepts with the returned secret.
    assert sample.runtime.flush_webhooks(10)
    completed = {
        e["data"]["object"]["id"] for e in sample.receiver.events if e["type"] == "checkout.session.completed"
    }
    assert completed == {paid.id, secure.id}
    failed = [e for e in sample.receiver.events if e["type"] == "payment_intent.payment_failed"]
    assert len(failed) == 1
    assert sample.receiver.rejected == 0
    assert {e["type"] for e in sample.receiver.events} <= set(SAMPLE_EVENTS)


def test_webhook_endpoints_crud(sample: Sample) -> None:
    endpoint = stripe.WebhookEndpoint.create(
        url=f"{sample.base}/webhook", enabled_events=["*"], description="d"
    )
    assert endpoint.object == "webhook_endpoint" and endpoint.enabled_events == ["*"]
    fetched = stripe.WebhookEndpoint.retrieve(endpoint.id)
    assert fetched.url == endpoint.url and "secret" not in fetched
    updated = stripe.WebhookEndpoint.modify(endpoint.id, disabled=True, enabled_events=["coupon.created"])
    assert updated.status == "disabled" and updated.enabled_events == ["coupon.created"]
    assert [e.id for e in stripe.WebhookEndpoint.list().data] == [endpoint.id]
    deleted = stripe.WebhookEndpoint.delete(endpoint.id)
    assert deleted.deleted is True
    assert stripe.WebhookEndpoint.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe.WebhookEndpoint.create(url="not a url", enabled_events=["*"])
    with pytest.raises(stripe.InvalidRequestError):
        stripe.WebhookEndpoint.create(url=f"{sample.base}/webhook", enabled_events=[])


def test_a_slow_endpoint_does_not_hold_back_another(sample: Sample) -> None:
    stripe.WebhookEndpoint.create(url=f"{sample.base}/slow", enabled_events=["coupon.created"])
    fast = stripe.WebhookEndpoint.create(url=f"{sample.base}/webhook", enabled_events=["coupon.created"])
    sample.receiver.secret = fast.secret
    first = stripe.Coupon.create(percent_off=10, duration="once")
    wait_for(lambda: sample.slow_hits)  # the slow receiver now holds its delivery for 4 s
    second = stripe.Coupon.create(percent_off=20, duration="once")
    started = time.monotonic()
    wait_for(lambda: sample.receiver.of(second.id, "coupon.created"), timeout=3)
    assert time.monotonic() - started < 2
    assert sample.receiver.of(first.id, "coupon.created")


def test_served_objects_carry_exactly_stripes_fields(sample: Sample) -> None:
    """Price, Product and WebhookEndpoint against Stripe's fixture field sets."""
    price = stripe.Price.create(currency="usd", unit_amount=500, product_data={"name": "Fields"})
    product = stripe.Product.retrieve(str(price.product))
    endpoint = stripe.WebhookEndpoint.create(url=f"{sample.base}/webhook", enabled_events=["*"])
    assert set(price.to_dict()) == OBJECT_FIELDS["price"]
    assert set(product.to_dict()) == OBJECT_FIELDS["product"]
    assert set(stripe.Product.create(name="Direct").to_dict()) == OBJECT_FIELDS["product"]
    assert set(endpoint.to_dict()) == OBJECT_FIELDS["webhook_endpoint"] | {"secret"}
    assert set(stripe.WebhookEndpoint.retrieve(endpoint.id).to_dict()) == OBJECT_FIELDS["webhook_endpoint"]
