"""One StripeClient for the app: the real Stripe with a key, the embedded one without."""

from __future__ import annotations

import functools

import stripe

from quantoxbay.settings import Settings, get_settings

# Retries 409/5xx and connection errors with backoff (0.5 s doubling, capped), reusing the
# Idempotency-Key, so a retried create never makes a second session.
MAX_NETWORK_RETRIES = 3


def make_stripe_client(settings: Settings) -> stripe.StripeClient:
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else {}
    return stripe.StripeClient(
        settings.effective_stripe_key,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=MAX_NETWORK_RETRIES,
    )


@functools.cache
def get_stripe_client() -> stripe.StripeClient:
    return make_stripe_client(get_settings())
