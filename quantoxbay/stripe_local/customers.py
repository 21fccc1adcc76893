"""Customers (the minimal part: email, name, metadata) and the PaymentMethods
payments create.

A payment on the hosted page makes a card PaymentMethod (``pm_...``) as on
Stripe; it is retrievable with ``GET /v1/payment_methods/{id}``. Customers can
be created, retrieved, updated (``email``, ``name``, ``description``,
``metadata``), listed (filters ``email``, ``created``) and deleted; checkout
sessions do not attach them (``customer`` stays null, as for a guest payment).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from .errors import invalid_request
from .ids import new_id, random_token
from .params import (
    check_allowed,
    created_filter,
    get_metadata,
    get_str,
    update_metadata,
)
from .store import RequestInfo, Store, changes_since

CUSTOMER = "customer"
PAYMENT_METHOD = "payment_method"
CUSTOMER_PARAMS = {"email", "name", "description", "metadata", "expand"}
EMAIL_MAX_LENGTH = 512

_EMPTY_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


class Customers:
    """Customer and PaymentMethod operations.

    Args:
        store: The object store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- payment methods ---------------------------------------------------

    def create_card_payment_method(self, card: dict[str, Any], *, email: str, name: str) -> dict[str, Any]:
        """Store the card PaymentMethod of a payment attempt (in the payment's transaction)."""
        # Stripe's fingerprint is stable per card number; the last four and expiry stand in for it.
        fingerprint = hashlib.sha256(
            f"{card['brand']}{card['last4']}{card['exp_month']}{card['exp_year']}".encode()
        ).hexdigest()[:16]
        data = {
            "id": new_id("pm", 24),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": dict(_EMPTY_ADDRESS),
                "email": email or None,
                "name": name or None,
                "phone": None,
                "tax_id": None,
            },
            "card": {
                "brand": card["brand"],
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "display_brand": card["brand"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "fingerprint": fingerprint,
                "funding": "credit",
                "generated_from": None,
                "last4": card["last4"],
                "networks": {"available": [card["brand"]], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": self.store.now(),
            "customer": None,
            "customer_account": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        self.store.insert(PAYMENT_METHOD, data)
        return data

    def retrieve_payment_method(self, pm_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/payment_methods/{id}``."""
        check_allowed(params, {"expand"})
        return self.store.require(PAYMENT_METHOD, pm_id, param="payment_method").data

    # -- customers ---------------------------------------------------------

    def _email(self, params: dict[str, Any]) -> str | None:
        email = get_str(params, "email", max_length=EMAIL_MAX_LENGTH)
        if email and "@" not in email:
            raise invalid_request(f"Invalid email address: {email}", param="email")
        return email or None

    def create(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/customers``; emits ``customer.created``."""
        check_allowed(params, CUSTOMER_PARAMS)
        data: dict[str, Any] = {
            "id": new_id("cus", 14),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.store.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": get_str(params, "description") or None,
            "discount": None,
            "email": self._email(params),
            "invoice_prefix": random_token(8).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": get_metadata(params),
            "name": get_str(params, "name", max_length=256) or None,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        with self.store.db.transaction():
            self.store.insert(CUSTOMER, data, lookup=(data["email"] or "").lower() or None)
            self.store.emit("customer.created", data, request)
        return data

    def _live(self, customer_id: str) -> Any:
        record = self.store.require(CUSTOMER, customer_id, param="customer")
        if record.internal.get("deleted"):
            self.store.require(CUSTOMER, None, param="customer")  # deleted: 404, as on Stripe
        return record

    def retrieve(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/customers/{id}``."""
        check_allowed(params, {"expand"})
        return dict(self._live(customer_id).data)

    def update(self, customer_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/customers/{id}``; emits ``customer.updated`` with ``previous_attributes``."""
        check_allowed(params, CUSTOMER_PARAMS)
        with self.store.db.transaction():
            record = self._live(customer_id)
            before = copy.deepcopy(record.data)
            data = record.data
            data["metadata"] = update_metadata(data["metadata"], params)
            if "email" in params:
                data["email"] = self._email(params)
                record.lookup = (data["email"] or "").lower() or None
            if "name" in params:
                data["name"] = get_str(params, "name", max_length=256) or None
            if "description" in params:
                data["description"] = get_str(params, "description") or None
            self.store.update(record)
            if data != before:
                self.store.emit("customer.updated", data, request, previous=changes_since(before, data))
            return dict(data)

    def delete(self, customer_id: str, request: RequestInfo) -> dict[str, Any]:
        """``DELETE /v1/customers/{id}``; emits ``customer.deleted``."""
        with self.store.db.transaction():
            record = self._live(customer_id)
            record.internal["deleted"] = True
            record.lookup = None
            self.store.update(record)
            self.store.emit("customer.deleted", record.data, request)
        return {"id": record.id, "object": "customer", "deleted": True}

    def list_customers(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/customers``: newest first, filters ``email`` (exact, case-sensitive on
        Stripe; any case here) and ``created``."""
        check_allowed(params, {"email", "created", "limit", "starting_after", "ending_before", "expand"})
        email = get_str(params, "email")
        created = created_filter(params)
        records, has_more = self.store.page_of(
            CUSTOMER,
            params,
            lookups=[email.lower()] if email else None,
            accept=lambda r: not r.internal.get("deleted") and created(r.created),
        )
        return [r.data for r in records], has_more
