"""Starting a purchase: the server prices the product and opens a Stripe Checkout Session."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import stripe
from sqlmodel import Session, select

from quantoxbay import routes
from quantoxbay.models import DownloadGrant, Order, OrderStatus, Product, ProductStatus, User
from quantoxbay.payments.retry import with_rate_limit_retry
from quantoxbay.services import DomainError, NotFound, PermissionDenied
from quantoxbay.services.fulfillment import FulfillmentResult, fulfill_checkout
from quantoxbay.services.pricing import current_price_cents

# Sessions live one hour (Stripe allows 30 min to 24 h); the idempotency window is five
# minutes, so a double click within it opens the same session instead of two.
SESSION_LIFETIME_SECONDS = 3600
IDEMPOTENCY_WINDOW_SECONDS = 300
ACTIVE_ORDER_STATUSES = (OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value)


class AlreadyOwned(DomainError):
    """The buyer already has this product; show "Download" instead."""


@dataclass(frozen=True)
class CheckoutStart:
    session_id: str
    url: str


def owns_product(*, session: Session, buyer_id: int, product_id: int) -> bool:
    """True while the buyer holds a live (not revoked) grant for the product."""
    row = session.exec(
        select(DownloadGrant.id)
        .join(Order, Order.id == DownloadGrant.order_id)  # type: ignore[arg-type]
        .where(
            DownloadGrant.buyer_id == buyer_id,
            DownloadGrant.product_id == product_id,
            DownloadGrant.revoked == False,  # noqa: E712
            Order.status.in_(ACTIVE_ORDER_STATUSES),  # type: ignore[attr-defined]
        )
    ).first()
    return row is not None


def start_checkout(
    *,
    session: Session,
    stripe_client: stripe.StripeClient,
    buyer_id: int,
    product_id: int,
    public_url: str,
    now: float | None = None,
) -> CheckoutStart:
    """Create a Checkout Session for one product, priced from the database."""
    buyer = session.get(User, buyer_id)
    if buyer is None or buyer.disabled:
        raise PermissionDenied("Please log in to buy.")
    product = session.get(Product, product_id)
    if product is None or product.status != ProductStatus.PUBLISHED.value:
        raise NotFound("This product is no longer for sale.")
    if product.seller_id == buyer_id:
        raise DomainError("This is your own product.")
    if owns_product(session=session, buyer_id=buyer_id, product_id=product_id):
        raise AlreadyOwned("You already own this product.")
    unit_amount = current_price_cents(product)
    if unit_amount <= 0:
        raise DomainError("This product is free; use “Get it free”.")

    now = time.time() if now is None else now
    window = int(now // IDEMPOTENCY_WINDOW_SECONDS)
    # Same buyer, product, price and window -> same key -> Stripe replays the first session.
    key_material = f"checkout:{buyer_id}:{product_id}:{unit_amount}:{product.currency}:{window}"
    idempotency_key = hashlib.sha256(key_material.encode()).hexdigest()
    expires_at = (window + 1) * IDEMPOTENCY_WINDOW_SECONDS + SESSION_LIFETIME_SECONDS
    metadata = {"buyer_id": str(buyer_id), "product_id": str(product_id)}
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": product.currency,
                    "unit_amount": unit_amount,
                    "product_data": {"name": product.title, "metadata": {"product_id": str(product_id)}},
                },
            }
        ],
        "client_reference_id": str(buyer_id),
        "customer_email": buyer.email,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "allow_promotion_codes": True,
        "success_url": f"{public_url}{routes.CHECKOUT_SUCCESS}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{public_url}{routes.product_path(product_id)}?checkout=cancelled",
        "expires_at": expires_at,
    }
    created = with_rate_limit_retry(
        lambda: stripe_client.v1.checkout.sessions.create(
            params,  # type: ignore[arg-type]
            {"idempotency_key": idempotency_key},
        )
    )
    if not created.url:
        raise DomainError("The payment page could not be opened. Please try again.")
    return CheckoutStart(session_id=created.id, url=created.url)


def confirm_checkout(
    *, session: Session, stripe_client: stripe.StripeClient, stripe_session_id: str, buyer_id: int
) -> FulfillmentResult | None:
    """The success page's path: it has only the id, so retrieve the session and fulfil it.

    Returns None for a session that is not this buyer's (nothing is shown or changed).
    """
    retrieved = with_rate_limit_retry(lambda: stripe_client.v1.checkout.sessions.retrieve(stripe_session_id))
    if str(retrieved.get("client_reference_id")) != str(buyer_id):
        return None
    return fulfill_checkout(session=session, checkout_session=retrieved)
