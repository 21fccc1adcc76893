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


def account_key(*, user_id: int) -> str:
    """One connected account per seller, even when "Set up payouts" is clicked twice at once or the
    shop's transaction rolled back after Stripe made the account."""
    return f"quantoxbay-account-{user_id}"


def dispute_task_key(*, task_id: int, kind: str) -> str:
    """One transfer (or reversal) per ledger task, however often the task is retried."""
    return f"quantoxbay-ledger-{kind}-{task_id}"


def fee_adjustment_key(*, order_id: int) -> str:
    """One adjustment transfer per order (services.ledger.sync_order)."""
    return f"quantoxbay-fee-adjustment-{order_id}"


def _on(account: str) -> dict[str, Any]:
    """Request options of a call made on behalf of a connected account (``Stripe-Account``)."""
    return {"stripe_account": account}


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
        self,
        *,
        payment_intent: str,
        amount_cents: int,
        reason: str,
        order_id: int,
        refund_row_id: int,
        destination_charge: bool = False,
    ) -> stripe.Refund:
        """A refund; for a destination charge it also takes back the seller's share of it
        (``reverse_transfer``) and returns the platform's fee on it (``refund_application_fee``),
        both in proportion, and expands the reversal so the caller can record it."""
        key = refund_key(order_id=order_id, refund_row_id=refund_row_id)
        params: dict[str, Any] = {
            "payment_intent": payment_intent,
            "amount": amount_cents,
            "reason": reason,
            "metadata": {"order_id": str(order_id), "refund_row": str(refund_row_id)},
        }
        if destination_charge:
            params |= {
                "reverse_transfer": True,
                "refund_application_fee": True,
                "expand": ["transfer_reversal"],
            }
        return _call(lambda: self.client.v1.refunds.create(params, {"idempotency_key": key}))  # type: ignore[arg-type]

    # --- Connect: sellers' accounts ---

    def create_account(self, *, user_id: int, email: str, country: str) -> stripe.Account:
        """An Express account for a seller: Stripe hosts onboarding and the seller's dashboard."""
        params = {
            "type": "express",
            "country": country,
            "email": email,
            "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
            "metadata": {"user_id": str(user_id)},
        }
        return _call(
            lambda: self.client.v1.accounts.create(params, {"idempotency_key": account_key(user_id=user_id)})  # type: ignore[arg-type]
        )

    def retrieve_account(self, account: str) -> stripe.Account:
        return _call(lambda: self.client.v1.accounts.retrieve(account))

    def create_onboarding_link(
        self, *, account: str, refresh_url: str, return_url: str
    ) -> stripe.AccountLink:
        """A single-use, short-lived link to Stripe's hosted onboarding form."""
        params = {
            "account": account,
            "type": "account_onboarding",
            "refresh_url": refresh_url,
            "return_url": return_url,
        }
        return _call(lambda: self.client.v1.account_links.create(params))  # type: ignore[arg-type]

    def create_login_link(self, account: str) -> stripe.LoginLink:
        """A single-use link into the seller's Express dashboard."""
        return _call(lambda: self.client.v1.accounts.login_links.create(account))

    def retrieve_balance(self, account: str) -> stripe.Balance:
        return _call(lambda: self.client.v1.balance.retrieve(None, _on(account)))  # type: ignore[arg-type]

    def list_payouts(self, account: str, *, limit: int = 20) -> list[stripe.Payout]:
        """The account's newest payouts."""
        page = _call(lambda: self.client.v1.payouts.list({"limit": limit}, _on(account)))  # type: ignore[arg-type]
        return list(page.data)

    # --- Connect: the money of a destination charge ---

    def retrieve_payment_intent_charge(self, payment_intent: str) -> stripe.PaymentIntent:
        """The PaymentIntent with its charge's balance transaction (Stripe's fee) expanded."""
        return _call(
            lambda: self.client.v1.payment_intents.retrieve(
                payment_intent, {"expand": ["latest_charge.balance_transaction"]}
            )
        )

    def retrieve_charge(self, charge: str) -> stripe.Charge:
        """A charge with its transfer and application fee expanded (what `reconcile` compares)."""
        return _call(
            lambda: self.client.v1.charges.retrieve(charge, {"expand": ["transfer", "application_fee"]})
        )

    def retrieve_application_fee(self, fee: str) -> stripe.ApplicationFee:
        return _call(lambda: self.client.v1.application_fees.retrieve(fee))

    def list_transfers(self, *, transfer_group: str) -> list[stripe.Transfer]:
        """Every transfer of one sale (they share its ``transfer_group``)."""
        page = _call(lambda: self.client.v1.transfers.list({"transfer_group": transfer_group, "limit": 100}))
        return list(page.data)

    def create_transfer(
        self,
        *,
        amount_cents: int,
        currency: str,
        destination: str,
        source_charge: str,
        transfer_group: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> stripe.Transfer:
        """Money from the platform to a seller, funded by (and available with) a sale's charge."""
        params = {
            "amount": amount_cents,
            "currency": currency,
            "destination": destination,
            "source_transaction": source_charge,
            "transfer_group": transfer_group,
            "metadata": metadata,
        }
        return _call(lambda: self.client.v1.transfers.create(params, {"idempotency_key": idempotency_key}))  # type: ignore[arg-type]

    def reverse_transfer(
        self, transfer: str, *, amount_cents: int, idempotency_key: str, metadata: dict[str, str]
    ) -> stripe.TransferReversal:
        """Take back part of a transfer from the seller's account."""
        params: Any = {"amount": amount_cents, "metadata": metadata}
        return _call(
            lambda: self.client.v1.transfers.reversals.create(
                transfer, params, {"idempotency_key": idempotency_key}
            )
        )


def get_gateway() -> StripeGateway:
    """The app's gateway, over the app's one client (``payments.client.get_stripe_client``)."""
    return StripeGateway(get_stripe_client())
