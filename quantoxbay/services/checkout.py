"""Starting a purchase: the server prices the product and opens a Stripe Checkout Session."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from quantoxbay import routes
from quantoxbay.constants import OFFER_FREE, OFFER_PAID, OFFER_PAY_WHAT_YOU_WANT
from quantoxbay.db import insert_rows
from quantoxbay.models import (
    CheckoutRecord,
    DownloadGrant,
    Order,
    OrderStatus,
    Product,
    ProductStatus,
    Promotion,
    User,
    utcnow,
)
from quantoxbay.payments.gateway import StripeGateway, checkout_session_key
from quantoxbay.services import DomainError, NotFound, PermissionDenied, connect, promotions
from quantoxbay.services.fees import FeeSchedule
from quantoxbay.services.fulfillment import FulfillmentResult, fulfill_checkout, fulfill_free_order
from quantoxbay.services.money import amount_text
from quantoxbay.services.pricing import current_price_cents, is_free, named_price_cents, sale_is_running
from quantoxbay.services.stripe_products import stripe_product_id_for
from quantoxbay.settings import Settings

# Sessions live one hour (Stripe allows 30 min to 24 h); the idempotency window is five
# minutes, so a double click within it opens the same session instead of two.
SESSION_LIFETIME_SECONDS = 3600
IDEMPOTENCY_WINDOW_SECONDS = 300
# Stripe refuses a session that expires sooner than 30 minutes after it is created.
MIN_SESSION_LIFETIME_SECONDS = 1800
ACTIVE_ORDER_STATUSES = OrderStatus.active()


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
        .join(Order, col(Order.id) == DownloadGrant.order_id)
        .where(
            DownloadGrant.buyer_id == buyer_id,
            DownloadGrant.product_id == product_id,
            DownloadGrant.revoked == False,  # noqa: E712
            col(Order.status).in_(ACTIVE_ORDER_STATUSES),
        )
    ).first()
    return row is not None


@dataclass(frozen=True)
class Offer:
    """How the product page's box sells a product: ``kind`` is OFFER_PAID ("Buy now"), OFFER_FREE
    ("Get it free") or OFFER_PAY_WHAT_YOU_WANT ("Buy now" under "Name a fair price", prefilled with
    ``suggested_price``, an amount like "3.00"); ``minimum_cents`` is what it costs at least now."""

    kind: str
    minimum_cents: int
    currency: str
    suggested_price: str = ""


def offer_for(*, session: Session, product_id: int, now: datetime | None = None) -> Offer:
    """How the product is sold right now (a product not found reads as OFFER_PAID: the checkout then
    refuses it with the reason)."""
    product = session.get(Product, product_id)
    if product is None:
        return Offer(OFFER_PAID, 0, "usd")
    minimum = current_price_cents(product, now)
    if product.pay_what_you_want:
        # The shop keeps no separate suggested price: the buyer starts from the minimum.
        return Offer(OFFER_PAY_WHAT_YOU_WANT, minimum, product.currency, amount_text(minimum))
    return Offer(OFFER_FREE if is_free(product, now) else OFFER_PAID, minimum, product.currency)


def _buyable(session: Session, buyer_id: int, product_id: int) -> tuple[User, Product]:
    """The buyer and the product, or the refusal the buyer sees: a disabled buyer, a product no
    longer for sale, their own product, one they own already."""
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
    return buyer, product


def get_free_product(
    *, session: Session, buyer_id: int, product_id: int, now: datetime | None = None
) -> FulfillmentResult:
    """The "Get it free" button: a free product (or a pay-what-you-want one whose minimum is 0, for a buyer
    who named 0) goes straight into the buyer's library, with no Stripe call. The order (paid, 0)
    and its effects are a sale's (services.fulfillment.fulfill_free_order), once per buyer and
    product: a second click finds the order the first one made."""
    _, product = _buyable(session, buyer_id, product_id)
    # Pay what you want: 0 is a named amount, refused with the minimum when there is one.
    if named_price_cents(product, 0 if product.pay_what_you_want else None, now) != 0:
        raise DomainError("This product is not free.")
    return fulfill_free_order(session=session, buyer_id=buyer_id, product=product)


def start_checkout(
    *,
    session: Session,
    gateway: StripeGateway,
    settings: Settings,
    buyer_id: int,
    product_id: int,
    public_url: str,
    promo_code: str = "",
    named_amount_cents: int | None = None,
    now: float | None = None,
) -> CheckoutStart:
    """Create a Checkout Session for one product, priced from the database.

    Without ``promo_code`` the hosted page offers its own "Promotion code" field (Stripe checks
    those codes). With one, the code is checked here first (expiry, redemption limit, product,
    once per buyer: see services.promotions) and attached with ``discounts``.
    A session started during a sale or with an expiring code expires with it, as far as
    Stripe's 30-minute minimum lifetime allows.

    Each session is a destination charge to the seller's connected account (refused while the
    account cannot take charges) with the platform's fee as its application fee, computed on what
    the buyer pays (services/fees.py). A code typed on the hosted page can only lower the total
    after the fee is set: fulfilment records the fee on what was paid and the ledger gives the
    difference to the seller (services/ledger.py); a code that could leave less than the fee keeps
    the hosted field off (the buyer types it here instead).

    For a pay-what-you-want product, ``named_amount_cents`` is what the buyer named: checked again
    here (services.pricing.named_price_cents: not below the minimum or Stripe's minimum charge, not
    above the shop's maximum), it is the line item's price, the subtotal recorded for fulfilment's
    checks and the base of the fee. Other products ignore it: the database prices them.
    """
    buyer, product = _buyable(session, buyer_id, product_id)
    now = time.time() if now is None else now
    now_dt = datetime.fromtimestamp(now, UTC)
    # The sale price only while the sale runs; pay what you want: the named amount.
    unit_amount = named_price_cents(product, named_amount_cents, now_dt)
    if unit_amount <= 0:
        raise DomainError("This product is free: use “Get it free”.")
    destination = connect.chargeable_account_id(session=session, seller_id=product.seller_id)
    fees = FeeSchedule(settings.platform_fee_basis_points, settings.platform_fee_fixed_cents)

    promo = (
        promotions.check_code(
            session=session, buyer_id=buyer_id, product=product, code=promo_code, now=now_dt
        )
        if promo_code.strip()
        else None
    )
    window = int(now // IDEMPOTENCY_WINDOW_SECONDS)
    # Same buyer, product, price, code and window -> same key -> Stripe replays the first session.
    idempotency_key = checkout_session_key(
        buyer_id=buyer_id,
        product_id=product_id,
        unit_amount=unit_amount,
        currency=product.currency,
        promotion_code_id=promo.stripe_promotion_code_id if promo else "",
        window=window,
    )
    expires_at = (window + 1) * IDEMPOTENCY_WINDOW_SECONDS + SESSION_LIFETIME_SECONDS
    # Do not let a sale price or a code outlive its end by more than Stripe makes us.
    # Derived from the window, not from now, so a replayed request sends the same params.
    earliest = (window + 1) * IDEMPOTENCY_WINDOW_SECONDS + MIN_SESSION_LIFETIME_SECONDS
    deadlines = [product.sale_ends_at if sale_is_running(product, now_dt) else None]
    deadlines.append(promo.expires_at if promo else None)
    for deadline in deadlines:
        if deadline is not None:
            expires_at = min(expires_at, max(earliest, int(deadline.timestamp())))
    metadata = {"buyer_id": str(buyer_id), "product_id": str(product_id)}
    if promo is not None:
        coupon = session.get(Promotion, promo.promotion_id)
        to_pay = unit_amount - (promotions.coupon_discount_cents(coupon, unit_amount) if coupon else 0)
        allow_hosted_codes = False
    else:
        to_pay = unit_amount
        lowest = promotions.lowest_hosted_total_cents(
            session=session,
            seller_id=product.seller_id,
            product_id=product_id,
            subtotal_cents=unit_amount,
            currency=product.currency,
            now=now_dt,
        )
        allow_hosted_codes = lowest is None or lowest >= fees.fee_cents(unit_amount)
    application_fee = fees.fee_cents(to_pay)
    # Every transfer of this sale (the charge's own, an adjustment, a dispute's return) carries it;
    # derived from the idempotency key so a replayed request sends the same parameters.
    transfer_group = f"qb-{idempotency_key[:32]}"
    payment_intent_data: dict[str, Any] = {"metadata": metadata, "transfer_group": transfer_group}
    if to_pay > 0:
        payment_intent_data["transfer_data"] = {"destination": destination}
        if application_fee > 0:
            payment_intent_data["application_fee_amount"] = application_fee
    # A Stripe Product of its own rather than inline product_data: product-scoped codes, typed
    # on the hosted page too, match line items by Stripe Product id.
    stripe_product = stripe_product_id_for(session=session, gateway=gateway, product=product)
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": product.currency,
                    "unit_amount": unit_amount,
                    "product": stripe_product,
                },
            }
        ],
        "client_reference_id": str(buyer_id),
        "customer_email": buyer.email,
        "metadata": metadata,
        "payment_intent_data": payment_intent_data,
        "success_url": f"{public_url}{routes.CHECKOUT_SUCCESS}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{public_url}{routes.product_path(product_id)}?checkout=cancelled",
        "expires_at": expires_at,
    }
    if promo is not None:
        params["discounts"] = [{"promotion_code": promo.stripe_promotion_code_id}]
    elif allow_hosted_codes:
        params["allow_promotion_codes"] = True
    created = gateway.create_checkout_session(params, idempotency_key=idempotency_key)
    if not created.url:
        raise DomainError("The payment page could not be opened. Please try again.")
    record_checkout_session(
        session=session,
        stripe_session_id=created.id,
        buyer_id=buyer_id,
        product_id=product_id,
        currency=product.currency,
        subtotal_cents=unit_amount,
        allow_promotion_codes=allow_hosted_codes,
        promotion_id=promo.promotion_id if promo else None,
        destination=Destination(destination, fees, application_fee, transfer_group),
    )
    if promo is not None:
        promotions.claim_for_checkout(
            session=session,
            gateway=gateway,
            promotion=promo,
            buyer_id=buyer_id,
            stripe_session_id=created.id,
            expires_at=datetime.fromtimestamp(expires_at, UTC),
        )
    return CheckoutStart(session_id=created.id, url=created.url)


@dataclass(frozen=True)
class Destination:
    """Where a sale's money goes: the seller's account, the fee schedule in force, the application
    fee set on the charge and the transfer group of the sale."""

    account_id: str
    fees: FeeSchedule
    application_fee_cents: int
    transfer_group: str


def record_checkout_session(
    *,
    session: Session,
    stripe_session_id: str,
    buyer_id: int,
    product_id: int,
    currency: str,
    subtotal_cents: int,
    allow_promotion_codes: bool,
    promotion_id: int | None,
    destination: Destination | None = None,
) -> None:
    """Remember what the shop sells in a Checkout Session it created: fulfilment grants orders only
    for recorded sessions that match. A repeated create inside the idempotency window gets the same
    session back from Stripe; its record is there already and stays as it is."""
    insert_rows(
        session.connection(),
        CheckoutRecord.__table__,  # type: ignore[attr-defined]
        [
            {
                "stripe_session_id": stripe_session_id,
                "buyer_id": buyer_id,
                "product_id": product_id,
                "currency": currency.lower(),
                "subtotal_cents": subtotal_cents,
                "allow_promotion_codes": allow_promotion_codes,
                "promotion_id": promotion_id,
                "seller_account_id": destination.account_id if destination else None,
                "fee_basis_points": destination.fees.basis_points if destination else 0,
                "fee_fixed_cents": destination.fees.fixed_cents if destination else 0,
                "application_fee_cents": destination.application_fee_cents if destination else 0,
                "transfer_group": destination.transfer_group if destination else None,
                "created_at": utcnow(),
            }
        ],
        skip_conflicts_on=("stripe_session_id",),
    )


def confirm_checkout(
    *, session: Session, gateway: StripeGateway, stripe_session_id: str, buyer_id: int
) -> FulfillmentResult | None:
    """The success page's path: it has only the id, so retrieve the session and fulfil it.

    Returns None for a session that is not this buyer's (nothing is shown or changed).
    """
    retrieved = gateway.retrieve_checkout_session(stripe_session_id)
    # StripeObjects are not dicts in stripe-python 16 (no .get): read attributes.
    if str(getattr(retrieved, "client_reference_id", None)) != str(buyer_id):
        return None
    return fulfill_checkout(session=session, checkout_session=retrieved)
