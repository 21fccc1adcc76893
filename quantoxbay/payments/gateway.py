"""Every call the shop makes to Stripe, one method each: the only module that calls the SDK.

Each call retries rate limits (429: ``payments.retry``; the SDK itself retries connection
errors, 409 and 5xx: ``payments.client``), sends the idempotency key of its scheme where the
call creates something that must not be made twice, and turns the SDK's errors into
``quantoxbay.errors`` ones: :class:`PaymentRefused` (Stripe said no: retrying will not help)
or :class:`PaymentsUnavailable` (Stripe could not be reached or kept refusing for load: try
later). Services get a :class:`StripeGateway`; tests hand it a fake SDK client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import stripe

from quantoxbay.errors import PaymentRefused, PaymentsUnavailable
from quantoxbay.payments.client import get_stripe_client
from quantoxbay.payments.retry import with_rate_limit_retry

T = TypeVar("T")


def checkout_session_key(
    *, buyer_id: int, product_id: int, unit_amount: int, currency: str, promotion_code_id: str, window: int
) -> str:
    """Same buyer, product, price, code and time window -> same key -> Stripe replays the first
    session (a double click opens one session, not two)."""
    material = f"checkout:{buyer_id}:{product_id}:{unit_amount}:{currency}:{promotion_code_id}:{window}"
    return hashlib.sha256(material.encode()).hexdigest()


def product_key(*, product_id: int, created_at: datetime) -> str:
    """One Stripe Product per shop product, even when two checkouts race to make it or the
    caller's transaction rolled back after Stripe made it (Stripe replays keys for 24 h)."""
    return f"qb-product-{product_id}-{created_at.timestamp():.6f}"


def refund_key(*, order_id: int, refund_row_id: int) -> str:
    """One Stripe refund per refund row the shop reserved."""
    return f"quantoxbay-refund-{order_id}-{refund_row_id}"


def _call(call: Callable[[], T]) -> T:
    try:
        return with_rate_limit_retry(call)
    except stripe.InvalidRequestError as exc:
        raise PaymentRefused(
            getattr(exc, "user_message", None) or str(exc), code=getattr(exc, "code", None)
        ) from exc
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(
            "Payments are unavailable right now. Please try again in a minute."
        ) from exc


class StripeGateway:
    """The shop's Stripe calls over one SDK client (real Stripe, or the embedded one)."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    # --- Checkout Sessions ---

    def create_checkout_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> stripe.checkout.Session:
        return _call(
            lambda: self.client.v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        )

    def retrieve_checkout_session(self, session_id: str) -> stripe.checkout.Session:
        return _call(lambda: self.client.v1.checkout.sessions.retrieve(session_id))

    def expire_checkout_session(self, session_id: str) -> stripe.checkout.Session:
        return _call(lambda: self.client.v1.checkout.sessions.expire(session_id))

    # --- Products (what line items and product-scoped coupons name) ---

    def create_product(self, *, product_id: int, name: str, created_at: datetime) -> stripe.Product:
        key = product_key(product_id=product_id, created_at=created_at)
        return _call(
            lambda: self.client.v1.products.create(
                {"name": name, "metadata": {"product_id": str(product_id)}}, {"idempotency_key": key}
            )
        )

    def rename_product(self, stripe_product_id: str, name: str) -> None:
        _call(lambda: self.client.v1.products.update(stripe_product_id, {"name": name}))

    # --- Promo codes ---

    def create_coupon(self, params: dict[str, Any]) -> stripe.Coupon:
        return _call(lambda: self.client.v1.coupons.create(params))  # type: ignore[arg-type]

    def create_promotion_code(self, params: dict[str, Any]) -> stripe.PromotionCode:
        return _call(lambda: self.client.v1.promotion_codes.create(params))  # type: ignore[arg-type]

    def deactivate_promotion_code(self, promotion_code_id: str) -> None:
        _call(lambda: self.client.v1.promotion_codes.update(promotion_code_id, {"active": False}))

    # --- Refunds ---

    def create_refund(
        self, *, payment_intent: str, amount_cents: int, reason: str, order_id: int, refund_row_id: int
    ) -> stripe.Refund:
        key = refund_key(order_id=order_id, refund_row_id=refund_row_id)
        params = {
            "payment_intent": payment_intent,
            "amount": amount_cents,
            "reason": reason,
            "metadata": {"order_id": str(order_id), "refund_row": str(refund_row_id)},
        }
        return _call(lambda: self.client.v1.refunds.create(params, {"idempotency_key": key}))  # type: ignore[arg-type]


def get_gateway() -> StripeGateway:
    """The app's gateway, over the app's one client (``payments.client.get_stripe_client``)."""
    return StripeGateway(get_stripe_client())
