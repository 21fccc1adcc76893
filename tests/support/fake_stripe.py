"""Stand-ins for parts of the Stripe SDK client that unit tests do not exercise."""

from __future__ import annotations

from typing import Any


class UnchargedPaymentIntents:
    """``client.v1.payment_intents`` for PaymentIntents with no charge yet (nothing to read back)."""

    def __init__(self) -> None:
        self.retrieved: list[str] = []

    def retrieve(self, payment_intent: str, params: Any = None, options: Any = None) -> dict[str, Any]:
        self.retrieved.append(payment_intent)
        return {"id": payment_intent, "object": "payment_intent", "latest_charge": None}
