"""The fields Stripe always sends on an object, for the ones the embedded Stripe
keeps no value of.

Stripe's objects carry every documented field, null (or an empty list or hash)
when there is nothing to say; stripe-python raises ``AttributeError`` for a field
that is not there at all. :func:`conform` adds, at creation and when an object is
read back from the database (so objects of an older instance gain them too), the
fields of Stripe's example object for its type (stripe/openapi ``fixtures3.json``)
that the embedded Stripe has no value of, with the value Stripe sends when empty,
and drops the optional fields Stripe leaves out rather than sending null.
"""

from __future__ import annotations

import copy
from typing import Any

_STATEMENT = {"statement_descriptor": None, "statement_descriptor_suffix": None}

#: Per object type, the fields with no value here and what Stripe sends for them.
EMPTY_FIELDS: dict[str, dict[str, Any]] = {
    "checkout.session": {
        "adaptive_pricing": {"enabled": False},
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_account": None,
        "integration_identifier": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "managed_payments": {"enabled": False},
        "origin_context": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "subscription": None,
        "wallet_options": None,
    },
    "payment_intent": {
        "amount_details": {"tip": {}},
        "automatic_payment_methods": None,
        "customer_account": None,
        "excluded_payment_method_types": None,
        "managed_payments": {"enabled": False},
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "processing": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        **_STATEMENT,
    },
    "charge": {
        "calculated_statement_descriptor": None,
        "failure_balance_transaction": None,
        "fraud_details": {},
        "receipt_number": None,
        "receipt_url": None,
        "review": None,
        "shipping": None,
        "source": None,
        **_STATEMENT,
    },
    "refund": {"customer": None, "customer_account": None, "payment_method": None},
    "promotion_code": {"customer_account": None},
    "dispute": {"enhanced_eligibility_types": [], "payment_method_details": None},
}

#: Optional fields Stripe leaves out when they have no value (never null):
#: a refund's ``failure_reason`` (failed refunds only) and a charge's
#: ``transfer`` (destination charges only).
ABSENT_WHEN_EMPTY: dict[str, tuple[str, ...]] = {
    "refund": ("failure_reason",),
    "charge": ("transfer",),
}


def conform(type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Give ``data`` (an object of ``type``) Stripe's field set, in place; returns it."""
    for name, empty in EMPTY_FIELDS.get(type, {}).items():
        if name not in data:
            data[name] = copy.deepcopy(empty)
    for name in ABSENT_WHEN_EMPTY.get(type, ()):
        if name in data and data[name] is None:
            del data[name]
    return data
