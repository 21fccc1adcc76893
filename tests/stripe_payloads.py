"""Stripe-shaped checkout sessions and signed events for tests (API 2026-10-28 shapes)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import stripe


def checkout_session(
    *,
    buyer_id: int,
    product_id: int,
    amount: int = 999,
    payment_status: str = "paid",
    discount: int = 0,
    session_id: str | None = None,
    currency: str = "usd",
) -> dict[str, Any]:
    sid = session_id or f"cs_test_{uuid.uuid4().hex}"
    return {
        "id": sid,
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": payment_status,
        "amount_subtotal": amount + discount,
        "amount_total": amount,
        "total_details": {"amount_discount": discount, "amount_shipping": 0, "amount_tax": 0},
        "currency": currency,
        "client_reference_id": str(buyer_id),
        "metadata": {"buyer_id": str(buyer_id), "product_id": str(product_id)},
        "payment_intent": f"pi_test_{uuid.uuid4().hex[:24]}",
        "customer_details": {"email": "buyer@example.com"},
        "livemode": False,
    }


def event(
    obj: dict[str, Any], type_: str = "checkout.session.completed", event_id: str | None = None
) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "type": type_,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }


def signed(evt: dict[str, Any], secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers Stripe would POST, signed with the SDK's own scheme."""
    body = json.dumps(evt)
    ts = int(time.time()) if timestamp is None else timestamp
    header = stripe.WebhookSignature.generate_signature_header(body, secret, ts)
    return body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}
