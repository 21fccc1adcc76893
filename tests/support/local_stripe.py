"""An embedded Stripe of a test's own, served over HTTP on a loopback port, driven with the real
stripe SDK (a fresh SQLite file each time: the shop's idempotency keys repeat across tests, as ids
restart after each rollback, and must not replay another test's objects)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe

from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.stripe_local import StripeLocalConfig, create_stripe_local_app
from tests.integration.test_stripe_local import ServerThread
from tests.stripe_keys import bearer, stripe_local_key


@dataclass
class LocalStripe:
    client: stripe.StripeClient
    base: str
    http: httpx.Client

    @property
    def gateway(self) -> StripeGateway:
        return StripeGateway(self.client)

    def pay(self, session_id: str, **fields: str) -> httpx.Response:
        """Pay like the hosted page would (``promotion_code`` = a code typed there,
        ``card_number`` = one of Stripe's test cards)."""
        return self.http.post(
            f"{self.base}/_local/checkout/{session_id}/pay",
            headers=bearer(),
            data={"email": "buyer@example.com", **fields},
        )

    def events(self, type_: str) -> list[dict[str, Any]]:
        """The events of a type, newest first, as plain dicts (what a webhook would carry)."""
        return [e.to_dict() for e in self.client.v1.events.list({"type": type_, "limit": 100}).data]


def serve_local_stripe(tmp_path: Path) -> Iterator[LocalStripe]:
    """The body of a ``local_stripe`` fixture: no webhooks delivered (tests feed events themselves),
    no background worker, no rate limit in the way."""
    config = StripeLocalConfig(
        db_path=tmp_path / "stripe_local.db",
        secret_key=stripe_local_key(),
        webhook_secret="whsec_local_stripe_tests",
        public_base_url="http://127.0.0.1/stripe-local",
        webhook_url=None,
        rate_limit_per_second=1000,
        start_background_worker=False,
    )
    server = ServerThread(create_stripe_local_app(config)).start()
    client = stripe.StripeClient(stripe_local_key(), base_addresses={"api": server.base_url})
    with httpx.Client(timeout=10) as http:
        yield LocalStripe(client, server.base_url, http)
    server.stop()
