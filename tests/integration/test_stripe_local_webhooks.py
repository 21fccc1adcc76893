"""Webhook delivery of the embedded Stripe: retries with backoff, giving up, and
resuming pending deliveries after a restart (state lives in its SQLite file)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stripe

from quantoxbay.stripe_local import StripeLocalConfig, create_stripe_local_app, sign_payload
from tests.integration.test_stripe_local import (
    Receiver,
    ServerThread,
    build_app,
    session_params,
    wait_for,
)
from tests.stripe_keys import bearer, stripe_local_key
from tests.support.servers import free_port

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec_test_webhooks"


def config_for(db_path: Path, port: int, **overrides: object) -> StripeLocalConfig:
    base = f"http://127.0.0.1:{port}"
    values: dict[str, object] = {
        "db_path": db_path,
        "secret_key": stripe_local_key(),
        "public_base_url": f"{base}/stripe-local",
        "webhook_url": f"{base}/api/stripe/webhook",
        "webhook_secret": SECRET,
        "webhook_backoff_base_seconds": 0.2,
        "webhook_max_attempts": 4,
        "webhook_timeout_seconds": 2,
        "sweep_interval_seconds": 0.2,
        "poll_interval_seconds": 0.05,
    }
    values.update(overrides)
    return StripeLocalConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def started(
    tmp_path: Path,
) -> Iterator[tuple[ServerThread, Receiver, stripe.StripeClient, object]]:
    port = free_port()
    receiver = Receiver(SECRET)
    app, runtime = build_app(config_for(tmp_path / "s.db", port), receiver)
    server = ServerThread(app, port).start()
    client = stripe.StripeClient(
        stripe_local_key(), base_addresses={"api": f"{server.base_url}/stripe-local"}
    )
    yield server, receiver, client, runtime
    server.stop()
    runtime.stop()


def pay(base_url: str, session_id: str) -> None:
    response = httpx.post(f"{base_url}/stripe-local/_local/checkout/{session_id}/pay", headers=bearer())
    assert response.status_code == 200, response.text


def test_retries_with_exponential_backoff_and_fresh_signatures(started) -> None:
    server, receiver, client, runtime = started
    session = client.v1.checkout.sessions.create(params=session_params())
    receiver.fail_first[session.id] = 2  # 500, 500, then 200
    pay(server.base_url, session.id)
    assert runtime.flush_webhooks(10)
    [event] = receiver.of(session.id, "checkout.session.completed")
    tries = [a for a in receiver.attempts if a[2] == event["id"]]
    assert len(tries) == 3
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # 0.2 s, then 0.4 s
    [row] = runtime.dispatcher.deliveries(event["id"])
    assert row["status"] == "delivered" and row["attempts"] == 3
    assert client.v1.events.retrieve(event["id"]).pending_webhooks == 0
    assert receiver.rejected == 0


def test_gives_up_after_max_attempts(started) -> None:
    server, receiver, client, runtime = started
    session = client.v1.checkout.sessions.create(params=session_params())
    receiver.fail_first[session.id] = 100
    pay(server.base_url, session.id)
    assert runtime.flush_webhooks(10)
    event = client.v1.events.list(params={"type": "checkout.session.completed", "limit": 1}).data[0]
    [row] = runtime.dispatcher.deliveries(event.id)
    assert row["status"] == "failed" and row["attempts"] == 4
    assert row["last_response_status"] == 500
    assert event.pending_webhooks == 1  # never delivered


def test_pending_delivery_resumes_after_restart(tmp_path: Path) -> None:
    db_path = tmp_path / "persist.db"
    port = free_port()
    receiver = Receiver(SECRET)
    # First run: the endpoint is down (nothing listens on its port) -> the delivery waits
    # a second before its next attempt; the server stops before that.
    down = f"http://127.0.0.1:{free_port()}/hook"
    first_app, first_runtime = build_app(
        config_for(db_path, port, webhook_url=down, webhook_backoff_base_seconds=1.0), receiver
    )
    first = ServerThread(first_app, port).start()
    client = stripe.StripeClient(stripe_local_key(), base_addresses={"api": f"{first.base_url}/stripe-local"})
    session = client.v1.checkout.sessions.create(params=session_params())
    pay(first.base_url, session.id)
    wait_for(lambda: first_runtime.dispatcher.deliveries()[0]["attempts"] >= 1)
    [row] = first_runtime.dispatcher.deliveries()
    assert row["status"] == "pending" and "ConnectError" in row["last_error"]
    first.stop()
    first_runtime.stop()

    # Second run on the same file, with the endpoint up: the queued event arrives.
    second_app, second_runtime = build_app(config_for(db_path, port), receiver)
    second = ServerThread(second_app, port).start()
    try:
        assert second_runtime.flush_webhooks(10)
        [event] = receiver.of(session.id, "checkout.session.completed")
        assert event["data"]["object"]["payment_status"] == "paid"
        again = stripe.StripeClient(
            stripe_local_key(), base_addresses={"api": f"{second.base_url}/stripe-local"}
        )
        assert again.v1.checkout.sessions.retrieve(session.id).status == "complete"
    finally:
        second.stop()
        second_runtime.stop()


def test_standalone_app_lifespan_and_no_webhook_url(tmp_path: Path) -> None:
    """The app alone (not mounted) starts its worker on its own lifespan; without a
    webhook URL events are stored but not queued."""
    port = free_port()
    app = create_stripe_local_app(config_for(tmp_path / "alone.db", port, webhook_url=None))
    server = ServerThread(app, port).start()
    try:
        runtime = app.state.stripe_local
        assert runtime.dispatcher.running
        client = stripe.StripeClient(stripe_local_key(), base_addresses={"api": server.base_url})
        session = client.v1.checkout.sessions.create(params=session_params())
        assert session.url == f"http://127.0.0.1:{port}/stripe-local/checkout/{session.id}"
        page = httpx.get(f"{server.base_url}/checkout/{session.id}")
        assert f'action="/checkout/{session.id}"' in page.text  # links follow the mount point
        response = httpx.post(
            f"{server.base_url}/_local/checkout/{session.id}/pay",
            headers=bearer(),
        )
        assert response.status_code == 200
        event = client.v1.events.list(params={"type": "checkout.session.completed"}).data[0]
        assert event.pending_webhooks == 0 and runtime.dispatcher.pending_count() == 0
    finally:
        server.stop()
    assert not app.state.stripe_local.dispatcher.running
    app.state.stripe_local.stop()


def test_signature_scheme_matches_the_sdk() -> None:
    header = sign_payload('{"id": "evt_1"}', SECRET, 1_700_000_000)
    assert header == stripe.WebhookSignature.generate_signature_header(
        '{"id": "evt_1"}', SECRET, 1_700_000_000
    )


def test_default_retry_schedule_is_stripe_sandboxs(tmp_path: Path) -> None:
    """Three retries over a few hours, backing off exponentially; the shop sets a fast one."""
    from quantoxbay.stripe_local.db import Database
    from quantoxbay.stripe_local.webhooks import WebhookDispatcher

    config = StripeLocalConfig(db_path=tmp_path / "s.db", secret_key=stripe_local_key(), webhook_secret="w")
    assert config.webhook_max_attempts == 4
    db = Database(config.db_path)
    try:
        dispatcher = WebhookDispatcher(db, config)
        delays = [dispatcher.backoff(attempt) for attempt in range(1, config.webhook_max_attempts)]
    finally:
        db.close()
    assert delays == [1800, 3600, 7200]
    assert 3 * 3600 <= sum(delays) <= 6 * 3600
