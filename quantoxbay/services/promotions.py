"""Promo codes (Stripe coupons + promotion codes) and scheduled sales.

Rules, all decided on the server:

* A code belongs to one seller and covers one of their products or all of them (the
  products they have when the code is created: Stripe's ``applies_to`` is fixed at
  creation). It takes a percentage (1-100) or an amount (less than every covered price)
  off, may have a redemption limit and an expiry, and may be "once per buyer".
* Stripe enforces expiry, the redemption limit and the product scope itself (the coupon's
  ``redeem_by``/``applies_to``, the promotion code's ``expires_at``/``max_redemptions``),
  so a code typed on the hosted checkout page is checked there too.
* "Once per buyer" is ours; Stripe's ``first_time_transaction`` means "first payment of
  this customer ever", not "first use of this code". Such a code is registered in Stripe
  under a random hidden code, so it cannot be typed on the hosted page at all: the buyer
  enters it in the "Promo code" field on our product page, :func:`check_code` refuses it
  when the buyer already paid with it, and the checkout is created with
  ``discounts=[{"promotion_code": id}]``. :func:`claim_for_checkout` then records the claim
  and expires the buyer's other open sessions carrying the same code, so two open tabs
  cannot both redeem it. Codes without the per-buyer rule work in both places.
* A sale is a lower price with a start and an end; :mod:`quantoxbay.services.pricing`
  decides at checkout time whether it runs.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select

from quantoxbay.errors import PaymentRefused
from quantoxbay.models import (
    Order,
    OrderStatus,
    Product,
    ProductStatus,
    Promotion,
    PromotionClaim,
    utcnow,
)
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import DomainError, NotFound, PermissionDenied
from quantoxbay.services.money import format_amount, format_money
from quantoxbay.services.pricing import sale_is_running
from quantoxbay.services.stripe_products import stripe_product_id_for
from quantoxbay.services.text import one_line

CODE_RE = re.compile(r"^[A-Za-z0-9-]{3,40}$")
# Orders that used up a redemption (a failed or expired checkout did not).
REDEEMED_STATUSES = (
    OrderStatus.PENDING.value,
    OrderStatus.PAID.value,
    OrderStatus.PARTIALLY_REFUNDED.value,
    OrderStatus.REFUNDED.value,
    OrderStatus.DISPUTED.value,
)
MAX_SALE_DAYS = 366


class PromotionPublic(BaseModel):
    """A promo code as its seller's list shows it."""

    id: int
    code: str
    discount_label: str
    scope_label: str
    product_id: int | None
    max_redemptions: int | None
    redemptions: int
    expires_at: datetime | None
    once_per_buyer: bool
    active: bool
    status: str  # Active | Expired | Used up | Deactivated


class SalePublic(BaseModel):
    """A product's scheduled or running sale."""

    product_id: int
    title: str
    price_label: str
    sale_price_label: str
    starts_at: datetime | None
    ends_at: datetime | None
    status: str  # Scheduled | Running | Ended


@dataclass(frozen=True)
class CheckoutPromotion:
    """A code accepted for one checkout: what start_checkout sends to Stripe."""

    promotion_id: int
    stripe_promotion_code_id: str
    once_per_buyer: bool
    expires_at: datetime | None


# --- helpers --------------------------------------------------------------------------


def discount_label(promo: Promotion) -> str:
    if promo.percent_off is not None:
        return f"{promo.percent_off}% off"
    return f"{format_amount(promo.amount_off_cents or 0, promo.currency)} off"


def coupon_discount_cents(promo: Any, subtotal_cents: int) -> int:
    """What a promotion's coupon takes off ``subtotal_cents`` (percentages round half up, as
    Stripe's). ``promo``: a Promotion row or any row with its ``percent_off`` / ``amount_off_cents``."""
    if promo.percent_off is not None:
        return (subtotal_cents * promo.percent_off + 50) // 100
    return min(int(promo.amount_off_cents or 0), subtotal_cents)


def lowest_hosted_total_cents(
    *, session: Session, seller_id: int, product_id: int, subtotal_cents: int, currency: str, now: datetime
) -> int | None:
    """The lowest non-zero total a code the buyer may type on the hosted checkout page could leave
    of ``subtotal_cents`` (None when no such code can lower it). Checkout keeps the hosted field off
    when that total could not carry the platform's fee (services.checkout)."""
    rows = session.exec(
        select(Promotion).where(
            Promotion.seller_id == seller_id,
            Promotion.active == True,  # noqa: E712
            Promotion.once_per_buyer == False,  # noqa: E712  (never typed on the hosted page)
            (col(Promotion.product_id).is_(None)) | (col(Promotion.product_id) == product_id),
        )
    ).all()
    totals = [
        subtotal_cents - coupon_discount_cents(p, subtotal_cents)
        for p in rows
        if (p.amount_off_cents is None or p.currency == currency)
        and (p.expires_at is None or p.expires_at > now)
    ]
    positive = [t for t in totals if 0 < t < subtotal_cents]
    return min(positive) if positive else None


def _seller_products(session: Session, seller_id: int) -> list[Product]:
    return list(
        session.exec(
            select(Product)
            .where(Product.seller_id == seller_id, Product.status != ProductStatus.DELETED.value)
            .order_by(col(Product.id))
        ).all()
    )


def _own_product(session: Session, seller_id: int, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.status == ProductStatus.DELETED.value:
        raise NotFound("That product does not exist.")
    if product.seller_id != seller_id:
        raise PermissionDenied("That product is not yours.")
    return product


def _order_keys(promo: Promotion) -> list[str]:
    """What fulfilment may have recorded in ``Order.promo_code`` for this promotion."""
    return [promo.stripe_promotion_code_id, promo.stripe_code]


def redemptions(*, session: Session, promotion: Promotion, buyer_id: int | None = None) -> int:
    """Orders that used the code (all buyers, or one buyer)."""
    query = select(func.count()).where(
        col(Order.promo_code).in_(_order_keys(promotion)),
        col(Order.status).in_(REDEEMED_STATUSES),
    )
    if buyer_id is not None:
        query = query.where(Order.buyer_id == buyer_id)
    return int(session.exec(query).one())


def _status(promo: Promotion, used: int, now: datetime) -> str:
    if not promo.active:
        return "Deactivated"
    if promo.expires_at is not None and promo.expires_at <= now:
        return "Expired"
    if promo.max_redemptions is not None and used >= promo.max_redemptions:
        return "Used up"
    return "Active"


def parse_local_datetime(text: str, tz_offset_minutes: int, *, field: str) -> datetime | None:
    """A browser's ``datetime-local`` value ("2026-12-01T18:00") in the viewer's zone, as UTC.

    ``tz_offset_minutes`` is JavaScript's ``Date.getTimezoneOffset()`` (UTC minus local).
    Empty text is None.
    """
    text = text.strip()
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise DomainError(f"{field}: enter a date and time like 2026-12-01 18:00.") from None
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    if not -16 * 60 <= tz_offset_minutes <= 16 * 60:
        tz_offset_minutes = 0
    return (local + timedelta(minutes=tz_offset_minutes)).replace(tzinfo=UTC)


# --- seller: promo codes ----------------------------------------------------------------


def create_promotion(
    *,
    session: Session,
    gateway: StripeGateway,
    seller_id: int,
    code: str,
    percent_off: int | None = None,
    amount_off_cents: int | None = None,
    product_id: int | None = None,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
    once_per_buyer: bool = False,
    now: datetime | None = None,
) -> PromotionPublic:
    """Validate, create the Stripe coupon and promotion code, then record the code."""
    now = now or utcnow()
    code = one_line(code.strip(), "The code")
    if not CODE_RE.fullmatch(code):
        raise DomainError("The code must be 3 to 40 letters, digits or dashes (no spaces).")
    if (percent_off is None) == (amount_off_cents is None):
        raise DomainError("Choose either a percentage or an amount off.")
    if percent_off is not None and not 1 <= percent_off <= 100:
        raise DomainError("Enter a percentage from 1 to 100.")
    if amount_off_cents is not None and amount_off_cents <= 0:
        raise DomainError("Enter an amount off greater than zero.")
    if max_redemptions is not None and max_redemptions < 1:
        raise DomainError("Max redemptions must be at least 1 (leave it empty for no limit).")
    if expires_at is not None and expires_at <= now + timedelta(minutes=1):
        raise DomainError("The expiry must be in the future.")

    if product_id is not None:
        products = [_own_product(session, seller_id, product_id)]
    else:
        products = _seller_products(session, seller_id)
        if not products:
            raise DomainError("You have no products yet; create one first.")
    priced = [p for p in products if p.price_cents > 0]
    if not priced:
        raise DomainError("Codes only apply to paid products; this one is free.")
    currencies = {p.currency for p in priced}
    currency = priced[0].currency
    if amount_off_cents is not None:
        if len(currencies) > 1:
            raise DomainError(
                "Your products use several currencies: choose one product, or take a percentage off."
            )
        cheapest = min(p.price_cents for p in priced)
        if amount_off_cents >= cheapest:
            raise DomainError(
                f"The amount off must be less than the price it applies to ({format_money(cheapest, currency)})."
            )

    taken = session.exec(
        select(Promotion.id).where(Promotion.code_lower == code.lower(), Promotion.active == True)  # noqa: E712
    ).first()
    if taken is not None:
        raise DomainError(f"The code {code} is already in use; choose another.")

    coupon_params: dict[str, Any] = {
        "duration": "once",
        "name": code[:40],
        "metadata": {"seller_id": str(seller_id), "code": code},
    }
    if percent_off is not None:
        coupon_params["percent_off"] = percent_off
    else:
        coupon_params["amount_off"] = amount_off_cents
        coupon_params["currency"] = currency
    if max_redemptions is not None:
        coupon_params["max_redemptions"] = max_redemptions
    if expires_at is not None:
        coupon_params["redeem_by"] = int(expires_at.timestamp())
    # Once-per-buyer codes get a hidden Stripe code: only our server can attach them.
    stripe_code = f"QB-{secrets.token_hex(12)}" if once_per_buyer else code
    try:
        # Stripe Product ids (real Stripe refuses others); only priced products can be bought.
        products_in_stripe = [
            stripe_product_id_for(session=session, gateway=gateway, product=p) for p in priced
        ]
        coupon_params["applies_to"] = {"products": products_in_stripe}
        coupon = gateway.create_coupon(coupon_params)
        promo_params: dict[str, Any] = {
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": stripe_code,
            "metadata": {"seller_id": str(seller_id), "code": code},
        }
        if max_redemptions is not None:
            promo_params["max_redemptions"] = max_redemptions
        if expires_at is not None:
            promo_params["expires_at"] = int(expires_at.timestamp())
        created = gateway.create_promotion_code(promo_params)
    except PaymentRefused as exc:
        if exc.code == "resource_already_exists":
            raise DomainError(f"The code {code} is already in use; choose another.") from exc
        raise DomainError(f"Stripe refused the code: {exc.detail}") from exc

    promo = Promotion(
        seller_id=seller_id,
        code=code,
        code_lower=code.lower(),
        percent_off=percent_off,
        amount_off_cents=amount_off_cents,
        currency=currency,
        product_id=product_id,
        max_redemptions=max_redemptions,
        expires_at=expires_at,
        once_per_buyer=once_per_buyer,
        stripe_coupon_id=str(coupon.id),
        stripe_promotion_code_id=str(created.id),
        stripe_code=stripe_code,
        created_at=now,
    )
    session.add(promo)
    session.flush()
    return _public(session, promo, {p.id: p.title for p in products}, now)


def _public(
    session: Session, promo: Promotion, titles: dict[int | None, str], now: datetime
) -> PromotionPublic:
    assert promo.id is not None
    used = redemptions(session=session, promotion=promo)
    return PromotionPublic(
        id=promo.id,
        code=promo.code,
        discount_label=discount_label(promo),
        scope_label=titles.get(promo.product_id, "A product")
        if promo.product_id is not None
        else "All your products",
        product_id=promo.product_id,
        max_redemptions=promo.max_redemptions,
        redemptions=used,
        expires_at=promo.expires_at,
        once_per_buyer=promo.once_per_buyer,
        active=promo.active,
        status=_status(promo, used, now),
    )


def list_promotions(
    *, session: Session, seller_id: int, now: datetime | None = None
) -> list[PromotionPublic]:
    """The seller's codes, newest first."""
    now = now or utcnow()
    rows = session.exec(
        select(Promotion)
        .where(Promotion.seller_id == seller_id)
        .order_by(col(Promotion.created_at).desc(), col(Promotion.id).desc())
    ).all()
    titles: dict[int | None, str] = {p.id: p.title for p in _seller_products(session, seller_id)}
    return [_public(session, p, titles, now) for p in rows]


def deactivate_promotion(
    *, session: Session, gateway: StripeGateway, seller_id: int, promotion_id: int
) -> PromotionPublic:
    """Turn a code off in Stripe and here; open checkouts that carry it can no longer pay with it."""
    promo = session.get(Promotion, promotion_id)
    if promo is None or promo.seller_id != seller_id:
        raise NotFound("That code does not exist.")
    if promo.active:
        gateway.deactivate_promotion_code(promo.stripe_promotion_code_id)
        promo.active = False
        promo.deactivated_at = utcnow()
        session.add(promo)
        session.flush()
    titles: dict[int | None, str] = {p.id: p.title for p in _seller_products(session, seller_id)}
    return _public(session, promo, titles, utcnow())


# --- buyer: a code entered on the product page ----------------------------------------


def check_code(
    *, session: Session, buyer_id: int, product: Product, code: str, now: datetime | None = None
) -> CheckoutPromotion:
    """The promotion ``code`` names, if this buyer may use it on ``product`` now; else DomainError."""
    now = now or utcnow()
    cleaned = code.strip()
    if not cleaned:
        raise DomainError("Enter a promo code.")
    promo = session.exec(
        select(Promotion)
        .where(Promotion.code_lower == cleaned.lower()[:40], Promotion.active == True)  # noqa: E712
        .order_by(col(Promotion.id).desc())
    ).first()
    if promo is None or promo.seller_id != product.seller_id:
        raise DomainError(f"The code {cleaned} is not valid.")
    if promo.product_id is not None and promo.product_id != product.id:
        raise DomainError(f"The code {cleaned} does not apply to this product.")
    if promo.expires_at is not None and promo.expires_at <= now:
        raise DomainError(f"The code {cleaned} has expired.")
    if promo.max_redemptions is not None and redemptions(session=session, promotion=promo) >= (
        promo.max_redemptions
    ):
        raise DomainError(f"The code {cleaned} has reached its redemption limit.")
    if promo.once_per_buyer and redemptions(session=session, promotion=promo, buyer_id=buyer_id) > 0:
        raise DomainError(f"You have already used the code {cleaned}.")
    if promo.amount_off_cents is not None and promo.currency != product.currency:
        raise DomainError(f"The code {cleaned} does not apply to this product.")
    assert promo.id is not None
    return CheckoutPromotion(promo.id, promo.stripe_promotion_code_id, promo.once_per_buyer, promo.expires_at)


def claim_for_checkout(
    *,
    session: Session,
    gateway: StripeGateway,
    promotion: CheckoutPromotion,
    buyer_id: int,
    stripe_session_id: str,
    expires_at: datetime,
) -> None:
    """After a session with a once-per-buyer code is created: make it the buyer's only open one.

    The buyer's other open sessions carrying the code are expired in Stripe. When one of them
    was paid meanwhile (its webhook not yet processed), the new session is expired instead
    and the buyer is told the code is used.
    """
    if not promotion.once_per_buyer:
        return
    now = utcnow()
    claims = session.exec(
        select(PromotionClaim).where(
            PromotionClaim.promotion_id == promotion.promotion_id,
            PromotionClaim.buyer_id == buyer_id,
        )
    ).all()
    used_elsewhere = False
    for claim in claims:
        if claim.stripe_session_id == stripe_session_id or claim.expires_at <= now:
            continue
        if not _expire_open_session(gateway, claim.stripe_session_id):
            used_elsewhere = True
    if used_elsewhere:
        _expire_open_session(gateway, stripe_session_id)
        raise DomainError("You have already used this code.")
    if not any(c.stripe_session_id == stripe_session_id for c in claims):
        session.add(
            PromotionClaim(
                promotion_id=promotion.promotion_id,
                buyer_id=buyer_id,
                stripe_session_id=stripe_session_id,
                expires_at=expires_at,
            )
        )
        session.flush()


def _expire_open_session(gateway: StripeGateway, stripe_session_id: str) -> bool:
    """Expire a session if it is open. False when it completed (the code was used there)."""
    retrieved = gateway.retrieve_checkout_session(stripe_session_id)
    status = getattr(retrieved, "status", None)
    if status == "open":
        try:
            gateway.expire_checkout_session(stripe_session_id)
            return True
        except PaymentRefused:  # completed (or expired) meanwhile: look again
            retrieved = gateway.retrieve_checkout_session(stripe_session_id)
            status = getattr(retrieved, "status", None)
    return status != "complete"


# --- seller: sales --------------------------------------------------------------------


def schedule_sale(
    *,
    session: Session,
    seller_id: int,
    product_id: int,
    sale_price_cents: int,
    starts_at: datetime | None,
    ends_at: datetime | None,
    now: datetime | None = None,
) -> SalePublic:
    """Set a sale price from ``starts_at`` (None: now) until ``ends_at`` (required)."""
    now = now or utcnow()
    product = _own_product(session, seller_id, product_id)
    if product.price_cents <= 0:
        raise DomainError("A free product cannot go on sale.")
    if sale_price_cents <= 0:
        raise DomainError("Enter a sale price greater than zero.")
    if sale_price_cents >= product.price_cents:
        raise DomainError(
            f"The sale price must be lower than the regular price "
            f"({format_money(product.price_cents, product.currency)})."
        )
    starts_at = starts_at or now
    if ends_at is None:
        raise DomainError("Choose when the sale ends.")
    if ends_at <= now:
        raise DomainError("The sale must end in the future.")
    if ends_at <= starts_at:
        raise DomainError("The sale must end after it starts.")
    if ends_at - starts_at > timedelta(days=MAX_SALE_DAYS):
        raise DomainError("A sale can last at most a year.")
    product.sale_price_cents = sale_price_cents
    product.sale_starts_at = starts_at
    product.sale_ends_at = ends_at
    product.updated_at = now
    session.add(product)
    session.flush()
    return _sale_public(product, now)


def end_sale(*, session: Session, seller_id: int, product_id: int) -> None:
    """Remove the product's sale (scheduled or running) now."""
    product = _own_product(session, seller_id, product_id)
    product.sale_price_cents = None
    product.sale_starts_at = None
    product.sale_ends_at = None
    product.updated_at = utcnow()
    session.add(product)
    session.flush()


def _sale_public(product: Product, now: datetime) -> SalePublic:
    assert product.id is not None and product.sale_price_cents is not None
    starts, ends = product.sale_starts_at, product.sale_ends_at
    if sale_is_running(product, now):
        status = "Running"
    elif starts is not None and starts > now:
        status = "Scheduled"
    else:
        status = "Ended"
    return SalePublic(
        product_id=product.id,
        title=product.title,
        price_label=format_money(product.price_cents, product.currency),
        sale_price_label=format_money(product.sale_price_cents, product.currency),
        starts_at=starts,
        ends_at=ends,
        status=status,
    )


def list_sales(*, session: Session, seller_id: int, now: datetime | None = None) -> list[SalePublic]:
    """The seller's products that have a sale set (scheduled, running or ended)."""
    now = now or utcnow()
    return [
        _sale_public(p, now) for p in _seller_products(session, seller_id) if p.sale_price_cents is not None
    ]


def sale_deadline(*, session: Session, product_id: int, now: datetime | None = None) -> datetime | None:
    """When the running sale of a product ends (for the countdown), or None."""
    product = session.get(Product, product_id)
    if product is None or not sale_is_running(product, now):
        return None
    return product.sale_ends_at
