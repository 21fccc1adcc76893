"""Stripe-shaped checkout sessions and signed events for tests (API 2026-10-28 shapes)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import stripe
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from quantoxbay.models import Product, Promotion, SellerAccount
from quantoxbay.services import checkout
from quantoxbay.services.fees import FeeSchedule
from quantoxbay.settings import get_settings


def checkout_session(
    db: Session | Engine | None,
    *,
    buyer_id: int,
    product_id: int,
    amount: int = 999,
    payment_status: str = "paid",
    discount: int = 0,
    session_id: str | None = None,
    currency: str = "usd",
    promotion_code: str | None = None,
) -> dict[str, Any]:
    """A Checkout Session as Stripe sends it: ``amount`` paid, ``amount + discount`` before discount.

    With ``db`` (a session or an engine, committed) it is recorded as one the shop created
    (services.checkout.record_checkout_session), so fulfilment accepts it; its discount comes from
    ``promotion_code`` (a Stripe promotion code id of the shop) or else from a new promotion of the
    product's seller taking exactly ``discount`` off (pass its id, ``cs["discounts"][0]
    ["promotion_code"]``, to other sessions to share it). ``db=None``: a session the shop never made.
    """
    sid = session_id or f"cs_test_{uuid.uuid4().hex}"
    if discount and promotion_code is None:
        promotion_code = f"promo_{uuid.uuid4().hex[:24]}"
        if db is not None:
            _in_db(db, lambda s: _promotion_for(s, product_id, discount, currency, promotion_code))
    promotion_id: int | None = None
    if db is not None:

        def record(s: Session) -> None:
            nonlocal promotion_id
            promo = (
                s.exec(select(Promotion).where(Promotion.stripe_promotion_code_id == promotion_code)).first()
                if promotion_code
                else None
            )
            # A once-per-buyer code is attached by the server; others are typed on the hosted page.
            promotion_id = promo.id if promo is not None and promo.once_per_buyer else None
            checkout.record_checkout_session(
                session=s,
                stripe_session_id=sid,
                buyer_id=buyer_id,
                product_id=product_id,
                currency=currency,
                subtotal_cents=amount + discount,
                allow_promotion_codes=promotion_id is None,
                promotion_id=promotion_id,
                destination=_destination(
                    s, product_id, amount + discount, amount, promotion_id is not None, sid
                ),
            )

        _in_db(db, record)
    return {
        "id": sid,
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": payment_status,
        "amount_subtotal": amount + discount,
        "amount_total": amount,
        "total_details": {"amount_discount": discount, "amount_shipping": 0, "amount_tax": 0},
        "discounts": [{"coupon": None, "promotion_code": promotion_code}] if promotion_code else [],
        "currency": currency,
        "client_reference_id": str(buyer_id),
        "metadata": {"buyer_id": str(buyer_id), "product_id": str(product_id)},
        "payment_intent": f"pi_test_{uuid.uuid4().hex[:24]}",
        "customer_details": {"email": "buyer@example.com"},
        "livemode": False,
    }


def _destination(
    s: Session, product_id: int, subtotal: int, amount: int, code_known: bool, session_id: str
) -> checkout.Destination | None:
    """The destination charge services.checkout asks for: to the seller's account (when they have
    one), with the platform's fee on the price (or, for a code the server attached, on what is paid)."""
    product = s.get(Product, product_id)
    account = (
        s.exec(select(SellerAccount).where(SellerAccount.user_id == product.seller_id)).first()
        if product is not None
        else None
    )
    if account is None:
        return None
    settings = get_settings()
    fees = FeeSchedule(settings.platform_fee_basis_points, settings.platform_fee_fixed_cents)
    return checkout.Destination(
        account.stripe_account_id,
        fees,
        fees.fee_cents(amount if code_known else subtotal),
        f"qb-{session_id[-32:]}",
    )


def _in_db(db: Session | Engine, work: Callable[[Session], None]) -> None:
    if isinstance(db, Session):
        work(db)
        db.flush()
        return
    with Session(db) as s:
        work(s)
        s.commit()


def _promotion_for(s: Session, product_id: int, discount: int, currency: str, promotion_code: str) -> None:
    product = s.get(Product, product_id)
    assert product is not None, f"product {product_id} does not exist"
    code = f"T{uuid.uuid4().hex[:10]}"
    s.add(
        Promotion(
            seller_id=product.seller_id,
            code=code,
            code_lower=code.lower(),
            amount_off_cents=discount,
            currency=currency,
            product_id=None,  # all the seller's products: sessions of several products may share it
            stripe_coupon_id=f"co_{uuid.uuid4().hex[:16]}",
            stripe_promotion_code_id=promotion_code,
            stripe_code=code,
        )
    )


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
