"""Checkout Sessions: creation, retrieval, expiry, promotion codes and payment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from .cards import (
    DECLINES,
    REFUND_FAILS_CARDS,
    REFUND_PENDING_CARDS,
    Action,
    CardFieldError,
    Decline,
    check_card,
)
from .config import StripeLocalConfig
from .db import Record
from .discounts import Discounts, PromotionInvalid, line_discounts
from .errors import DOC_BASE, invalid_request
from .ids import new_id
from .money import check_currency, format_amount, minimum_charge
from .params import (
    check_allowed,
    created_filter,
    get_bool,
    get_dict,
    get_expand,
    get_int,
    get_list,
    get_metadata,
    get_str,
    update_metadata,
)
from .payments import Payments
from .prices import Prices
from .products import PRODUCT, Products
from .store import NO_REQUEST, RequestInfo, Store
from .transfers import AVAILABLE_AT_ONCE_CARD

SESSION = "checkout.session"
MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 60 * 60
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CREATE_PARAMS = {
    "mode",
    "line_items",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "metadata",
    "customer_email",
    "allow_promotion_codes",
    "discounts",
    "expires_at",
    "payment_intent_data",
    "payment_method_types",
    "expand",
    "locale",
    "submit_type",
    "ui_mode",
    "billing_address_collection",
    "customer_creation",
}
#: ``ui_mode`` values of the pinned API version; only the hosted page is served.
UI_MODES = ("hosted_page", "embedded_page", "elements", "form")
SESSION_EXPANDABLE = {
    "line_items",
    "payment_intent",
    "payment_intent.latest_charge",
    "line_items.data.price",
    "line_items.data.price.product",
    "customer",
}

Outcome = Literal["succeeded", "requires_action", "declined", "invalid", "not_open", "promotion_invalid"]


@dataclass
class PaymentForm:
    """What the buyer typed on the hosted page.

    Attributes:
        email: E-mail address.
        card_number: Card number (spaces allowed).
        expiry: ``MM/YY``.
        cvc: Security code.
        name: Name on card.
    """

    email: str = ""
    card_number: str = ""
    expiry: str = ""
    cvc: str = ""
    name: str = ""


@dataclass
class PaymentResult:
    """The result of one payment attempt.

    Attributes:
        outcome: ``succeeded``, ``requires_action`` (3-D Secure), ``declined``,
            ``invalid`` (a malformed field), ``not_open`` (expired/complete) or
            ``promotion_invalid`` (the code can no longer be used; removed).
        session: The session after the attempt.
        message: What to show the buyer.
        field: The form field at fault (``invalid``).
        error: The card error as the API reports it (``declined``).
        redirect_url: Where to send the buyer (``succeeded``).
    """

    outcome: Outcome
    session: Record
    message: str | None = None
    field: str | None = None
    error: dict[str, Any] | None = None
    redirect_url: str | None = None


@dataclass
class PromotionResult:
    """The result of applying a promotion code on the hosted page."""

    ok: bool
    session: Record
    message: str | None = None


def _check_url(params: dict[str, Any], key: str) -> str | None:
    url = get_str(params, key, max_length=5000)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_request("Not a valid URL", param=key, code="url_invalid")
    return url


class Checkout:
    """Checkout Session operations.

    Args:
        store: The object store.
        config: The instance's configuration.
        discounts: Coupon and promotion code operations.
        payments: PaymentIntent and charge operations.
        products: Product operations (``price_data[product]``).
        prices: Price operations (``line_items[i][price]``).
    """

    def __init__(
        self,
        store: Store,
        config: StripeLocalConfig,
        discounts: Discounts,
        payments: Payments,
        products: Products,
        prices: Prices,
    ) -> None:
        self.prices = prices
        self.store = store
        self.config = config
        self.discounts = discounts
        self.payments = payments
        self.products = products

    # -- creation --------------------------------------------------------

    def _parse_line_items(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        raw_items = get_list(params, "line_items")
        if not raw_items:
            raise invalid_request("`line_items` is required in `payment` mode.", param="line_items")
        if len(raw_items) > 100:
            raise invalid_request("You may only specify up to 100 line items.", param="line_items")
        created = self.store.now()
        items: list[dict[str, Any]] = []
        for index, raw in enumerate(raw_items):
            prefix = f"line_items[{index}]"
            if not isinstance(raw, dict):
                raise invalid_request(f"Invalid object: {prefix}", param=prefix)
            check_allowed(raw, {"price_data", "quantity", "price", "adjustable_quantity"}, prefix)
            if get_dict(raw, "adjustable_quantity", param=f"{prefix}[adjustable_quantity]"):
                raise invalid_request(
                    "The embedded Stripe does not serve `adjustable_quantity`.",
                    param=f"{prefix}[adjustable_quantity]",
                )
            price_id = get_str(raw, "price", param=f"{prefix}[price]")
            if price_id and "price_data" in raw:
                raise invalid_request(
                    "You may only specify one of these parameters: price, price_data.", param=prefix
                )
            if price_id:
                stored_price = self.prices.require_for_line_item(price_id, param=f"{prefix}[price]").data
                currency = stored_price["currency"]
                unit_amount = int(stored_price["unit_amount"])
                product = self._stored_product(stored_price["product"], f"{prefix}[price]")
                price_id = stored_price["id"]
            else:
                if "price_data" not in raw:
                    raise invalid_request(
                        f"You must specify either `price` or `price_data` in {prefix}.",
                        param=prefix,
                        code="parameter_missing",
                    )
                price_data = get_dict(raw, "price_data", param=f"{prefix}[price_data]")
                pprefix = f"{prefix}[price_data]"
                check_allowed(
                    price_data,
                    {"currency", "unit_amount", "product", "product_data", "tax_behavior"},
                    pprefix,
                )
                currency = check_currency(
                    get_str(price_data, "currency", param=f"{pprefix}[currency]", required=True) or "",
                    param=f"{pprefix}[currency]",
                )
                amount = get_int(
                    price_data,
                    "unit_amount",
                    param=f"{pprefix}[unit_amount]",
                    required=True,
                    minimum=0,
                    maximum=99_999_999,
                )
                assert amount is not None
                unit_amount = amount
                product = self._line_item_product(price_data, pprefix, created)
                price_id = None
            quantity = get_int(
                raw,
                "quantity",
                param=f"{prefix}[quantity]",
                required=True,
                minimum=1,
                maximum=999_999,
            )
            assert quantity is not None
            items.append(
                {
                    "id": new_id("li", 24),
                    "product": product,
                    "price": {
                        "id": price_id or new_id("price", 24),
                        "currency": currency,
                        "unit_amount": unit_amount,
                        "created": created,
                        # A stored Price (``line_items[i][price]``) shows its current state.
                        "stored": price_id is not None,
                    },
                    "quantity": quantity,
                    "amount_subtotal": unit_amount * quantity,
                    "amount_discount": 0,
                }
            )
        currencies = {item["price"]["currency"] for item in items}
        if len(currencies) > 1:
            raise invalid_request("All line items must use the same currency.", param="line_items")
        return items

    def _line_item_product(self, price_data: dict[str, Any], pprefix: str, created: int) -> dict[str, Any]:
        """Return a line item's product from ``price_data[product]`` or ``[product_data]``.

        Exactly one of the two must be given. ``product`` names a stored,
        active product (copied into the line item); ``product_data`` makes an
        inline product with a generated ``prod_...`` id.
        """
        product_id = get_str(price_data, "product", param=f"{pprefix}[product]")
        has_data = "product_data" in price_data
        if product_id and has_data:
            raise invalid_request(
                "You may only specify one of these parameters: product, product_data.", param=pprefix
            )
        if not product_id and not has_data:
            raise invalid_request(
                "You must specify either `product` or `product_data` when creating a price.",
                param=pprefix,
                code="parameter_missing",
            )
        if product_id:
            self.products.require_for_price(product_id, param=f"{pprefix}[product]")
            return self._stored_product(product_id, f"{pprefix}[product]")
        product_data = get_dict(price_data, "product_data", param=f"{pprefix}[product_data]")
        # Stored (retrievable by id, as on Stripe) when the session is: see ``create``.
        stored = self.products.create_inline(
            product_data, f"{pprefix}[product_data]", NO_REQUEST, line_item=True
        )
        return self._product_snapshot(stored)

    def _stored_product(self, product_id: str, param: str) -> dict[str, Any]:
        return self._product_snapshot(self.store.require(PRODUCT, product_id, param=param).data)

    @staticmethod
    def _product_snapshot(stored: dict[str, Any]) -> dict[str, Any]:
        """What a line item keeps of its product (the hosted page and descriptions use it)."""
        return {
            "id": stored["id"],
            "name": stored["name"],
            "description": stored["description"],
            "images": list(stored["images"]),
            "metadata": dict(stored["metadata"]),
            "created": stored["created"],
        }

    def create(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/checkout/sessions`` (``mode=payment``; line items with a stored ``price``
        or inline ``price_data``).

        One transaction: the products inline ``product_data`` stores are kept only
        when the session is.
        """
        with self.store.db.transaction():
            return self._create(params, request)

    def _create(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        check_allowed(params, CREATE_PARAMS)
        mode = get_str(params, "mode", required=True)
        if mode != "payment":
            raise invalid_request(
                f"Invalid mode: {mode}. The embedded Stripe supports `payment` only.",
                param="mode",
            )
        ui_mode = get_str(params, "ui_mode") or "hosted_page"
        if ui_mode not in UI_MODES:
            raise invalid_request(f"Invalid ui_mode: must be one of {', '.join(UI_MODES)}", param="ui_mode")
        if ui_mode != "hosted_page":
            raise invalid_request(
                f"The embedded Stripe serves the hosted page only (`ui_mode=hosted_page`), not `{ui_mode}`.",
                param="ui_mode",
            )
        methods = get_list(params, "payment_method_types")
        if any(m != "card" for m in methods):
            raise invalid_request(
                "Only the `card` payment method is supported.", param="payment_method_types"
            )
        line_items = self._parse_line_items(params)
        currency = line_items[0]["price"]["currency"]
        success_url = _check_url(params, "success_url")
        cancel_url = _check_url(params, "cancel_url")
        created = self.store.now()
        expires_at = get_int(params, "expires_at")
        if expires_at is None:
            expires_at = created + MAX_EXPIRY_SECONDS
        elif expires_at < created + MIN_EXPIRY_SECONDS:
            raise invalid_request(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        elif expires_at > created + MAX_EXPIRY_SECONDS:
            raise invalid_request(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        customer_email = get_str(params, "customer_email", max_length=800)
        if customer_email and not EMAIL_PATTERN.match(customer_email):
            raise invalid_request(
                f"Invalid email address: {customer_email}",
                param="customer_email",
                code="email_invalid",
            )
        allow_codes = get_bool(params, "allow_promotion_codes")
        raw_discounts = get_list(params, "discounts")
        if allow_codes and raw_discounts:
            raise invalid_request(
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
                param="discounts",
            )
        if len(raw_discounts) > 1:
            raise invalid_request("You may only specify one discount.", param="discounts")
        pi_data = get_dict(params, "payment_intent_data")
        check_allowed(
            pi_data,
            {
                "metadata",
                "description",
                "receipt_email",
                "statement_descriptor",
                "statement_descriptor_suffix",
                "application_fee_amount",
                "transfer_data",
                "on_behalf_of",
                "transfer_group",
            },
            "payment_intent_data",
        )
        internal: dict[str, Any] = {
            "line_items": line_items,
            "applied": None,
            "pending_auth": None,
            "payment_intent_data": {
                "metadata": get_metadata(pi_data),
                "description": get_str(pi_data, "description", max_length=1000),
                "receipt_email": get_str(pi_data, "receipt_email"),
            },
        }
        session_id = new_id("cs_test", 58)
        data: dict[str, Any] = {
            "id": session_id,
            "object": SESSION,
            "after_expiration": None,
            "allow_promotion_codes": allow_codes,
            "amount_subtotal": 0,
            "amount_total": 0,
            "billing_address_collection": None,
            "cancel_url": cancel_url,
            "client_reference_id": get_str(params, "client_reference_id", max_length=200),
            "client_secret": None,
            "created": created,
            "currency": currency,
            "customer": None,
            "customer_creation": "if_required",
            "customer_details": None,
            "customer_email": customer_email,
            "discounts": [],
            "expires_at": expires_at,
            "invoice": None,
            "livemode": False,
            "locale": get_str(params, "locale"),
            "metadata": get_metadata(params),
            "mode": "payment",
            "payment_intent": None,
            "payment_link": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "submit_type": get_str(params, "submit_type"),
            "success_url": success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted_page",
            "url": f"{self.config.public_base_url}/checkout/{session_id}",
        }
        record = Record(
            id=session_id, type=SESSION, data=data, internal=internal, lookup="open", created=created
        )
        with self.store.db.transaction():
            if raw_discounts:
                self._apply_discount_param(record, raw_discounts[0])
            self._reprice(record)
            total = data["amount_total"]
            if self.payments.transfers is not None:
                internal["payment_intent_data"]["connect"] = self.payments.transfers.check_destination(
                    pi_data, total
                )
            minimum = minimum_charge(currency)
            if total > 0 and minimum is not None and total < minimum:
                raise invalid_request(
                    "The Checkout Session's total amount due must add up to at least "
                    f"{format_amount(minimum, currency)}",
                    param="line_items",
                    code="amount_too_small",
                )
            self.store.insert(SESSION, data, internal=internal, lookup="open")
            return self.view(record, get_expand(params))

    def _apply_discount_param(self, record: Record, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise invalid_request("Invalid object: discounts[0]", param="discounts[0]")
        check_allowed(raw, {"coupon", "promotion_code"}, "discounts[0]")
        coupon_id = get_str(raw, "coupon", param="discounts[0][coupon]")
        promo_id = get_str(raw, "promotion_code", param="discounts[0][promotion_code]")
        if bool(coupon_id) == bool(promo_id):
            raise invalid_request(
                "Specify exactly one of `coupon` or `promotion_code` in a discount.",
                param="discounts[0]",
            )
        items = record.internal["line_items"]
        currency = record.data["currency"]
        param = "discounts[0][promotion_code]" if promo_id else "discounts[0][coupon]"
        try:
            if promo_id:
                promo = self.store.require("promotion_code", promo_id, param=param)
                coupon = self.discounts.check_promotion(
                    promo,
                    line_items=items,
                    currency=currency,
                    email=record.data["customer_email"],
                )
            else:
                coupon = self.store.require("coupon", coupon_id, param=param)
                self.discounts.check_coupon(coupon, line_items=items, currency=currency)
        except PromotionInvalid as exc:
            raise invalid_request(exc.message, param=param, code="coupon_expired") from None
        record.internal["applied"] = {"coupon": coupon.id, "promotion_code": promo_id}

    # -- views -----------------------------------------------------------

    def _reprice(self, record: Record) -> None:
        """Recompute amounts and ``discounts`` from the line items and applied coupon."""
        items = record.internal["line_items"]
        applied = record.internal.get("applied")
        coupon = self.store.get("coupon", applied["coupon"]) if applied else None
        amounts = line_discounts(coupon.data if coupon else None, items)
        for item, off in zip(items, amounts, strict=True):
            item["amount_discount"] = off
        subtotal = sum(item["amount_subtotal"] for item in items)
        discount = sum(amounts)
        data = record.data
        data["amount_subtotal"] = subtotal
        data["amount_total"] = subtotal - discount
        data["total_details"]["amount_discount"] = discount
        data["discounts"] = (
            [{"coupon": applied["coupon"], "promotion_code": applied["promotion_code"]}] if applied else []
        )

    def line_item_view(self, record: Record, item: dict[str, Any], expand: set[str]) -> dict[str, Any]:
        """Return one line item (``object: item``)."""
        price = item["price"]
        product = item["product"]
        product_view: Any = product["id"]
        stored = self.store.get(PRODUCT, product["id"]) if "data.price.product" in expand else None
        if stored is not None:
            product_view = self.products.view(stored)  # a stored product expands to its current state
        elif "data.price.product" in expand:
            product_view = {
                "id": product["id"],
                "object": "product",
                "active": False,
                "created": product["created"],
                "description": product["description"],
                "images": product["images"],
                "livemode": False,
                "metadata": product["metadata"],
                "name": product["name"],
                "type": "service",
                "url": None,
            }
        discount = item.get("amount_discount", 0)
        return {
            "id": item["id"],
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": discount,
            "amount_subtotal": item["amount_subtotal"],
            "amount_tax": 0,
            "amount_total": item["amount_subtotal"] - discount,
            "currency": price["currency"],
            "description": product["name"],
            "metadata": {},
            "price": self._line_item_price(price, product_view),
            "quantity": item["quantity"],
        }

    def _line_item_price(self, price: dict[str, Any], product_view: Any) -> dict[str, Any]:
        """A line item's price: the stored Price as it is now, or the inline one ``price_data`` made."""
        stored = self.store.get("price", price["id"]) if price.get("stored") else None
        if stored is not None:
            return {**self.prices.view(stored), "product": product_view}
        return {
            "id": price["id"],
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": price["currency"],
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": product_view,
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": price["unit_amount"],
            "unit_amount_decimal": str(price["unit_amount"]),
        }

    def view(self, record: Record, expand: set[str] | None = None) -> dict[str, Any]:
        """Return a session as the API shows it, with the requested expansions."""
        expand = expand or set()
        unknown = expand - SESSION_EXPANDABLE
        if unknown:
            path = sorted(unknown)[0]
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        data = dict(record.data)
        if "line_items" in expand or any(p.startswith("line_items.") for p in expand):
            item_expand = {p.removeprefix("line_items.") for p in expand}
            data["line_items"] = {
                "object": "list",
                "data": [
                    self.line_item_view(record, item, item_expand) for item in record.internal["line_items"]
                ],
                "has_more": False,
                "url": f"/v1/checkout/sessions/{record.id}/line_items",
            }
        if data["payment_intent"] and any(p.startswith("payment_intent") for p in expand):
            pi = self.store.get("payment_intent", data["payment_intent"])
            if pi is not None:
                pi_expand = {
                    p.removeprefix("payment_intent.") for p in expand if p.startswith("payment_intent.")
                }
                data["payment_intent"] = self.payments.payment_intent_view(pi, pi_expand)
        return data

    def retrieve(self, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/checkout/sessions/{id}``."""
        check_allowed(params, {"expand"})
        record = self.store.require(SESSION, session_id, param="session")
        return self.view(record, get_expand(params))

    def get(self, session_id: str) -> Record | None:
        """Return the stored session, or None."""
        return self.store.get(SESSION, session_id)

    def list_sessions(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/checkout/sessions``: newest first, filters ``status``, ``payment_intent``,
        ``customer_details[email]`` and ``created``."""
        check_allowed(
            params,
            {
                "limit",
                "starting_after",
                "ending_before",
                "status",
                "payment_intent",
                "expand",
                "customer_details",
                "created",
            },
        )
        status = get_str(params, "status")
        if status is not None and status not in ("open", "complete", "expired"):
            raise invalid_request("Invalid status: must be one of open, complete, or expired", param="status")
        pi_id = get_str(params, "payment_intent")
        details = get_dict(params, "customer_details")
        check_allowed(details, {"email"}, "customer_details")
        email = get_str(
            details, "email", param="customer_details[email]", required="customer_details" in params
        )
        created = created_filter(params)

        def accept(record: Record) -> bool:
            data = record.data
            if pi_id and data["payment_intent"] != pi_id:
                return False
            if email is not None and (data["customer_details"] or {}).get("email") != email:
                return False
            return created(record.created)

        records, has_more = self.store.page_of(
            SESSION,
            params,
            lookups=[status] if status else None,
            accept=accept,
        )
        expand = {p.removeprefix("data.") for p in get_expand(params)}
        return [self.view(r, expand) for r in records], has_more

    def update(self, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/checkout/sessions/{id}``: ``metadata`` (Stripe sends no event for it)."""
        check_allowed(params, {"metadata", "expand"})
        with self.store.db.transaction():
            record = self.store.require(SESSION, session_id, param="session")
            record.data["metadata"] = update_metadata(record.data["metadata"], params)
            self.store.update(record)
        return self.view(record, get_expand(params))

    def list_line_items(self, session_id: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/checkout/sessions/{id}/line_items``."""
        check_allowed(params, {"limit", "starting_after", "ending_before", "expand"})
        record = self.store.require(SESSION, session_id, param="session")
        limit = get_int(params, "limit", minimum=1, maximum=100) or 10
        items = record.internal["line_items"]
        ids = [item["id"] for item in items]
        start = 0
        after = get_str(params, "starting_after")
        if after:
            if after not in ids:
                raise invalid_request(
                    f"No such item: '{after}'", param="starting_after", code="resource_missing", status=404
                )
            start = ids.index(after) + 1
        chunk = items[start : start + limit]
        expand = get_expand(params)
        return ([self.line_item_view(record, item, expand) for item in chunk], start + limit < len(items))

    # -- expiry ----------------------------------------------------------

    def _expire(self, record: Record, request: RequestInfo) -> None:
        data = record.data
        data["status"] = "expired"
        data["url"] = None
        record.lookup = "expired"
        record.internal["pending_auth"] = None
        if data["payment_intent"]:
            pi = self.store.require("payment_intent", data["payment_intent"])
            if pi.data["status"] != "succeeded":
                pi.data["status"] = "canceled"
                pi.data["canceled_at"] = self.store.now()
                pi.data["cancellation_reason"] = "abandoned"
                pi.data["next_action"] = None
                self.store.update(pi)
                self.store.emit("payment_intent.canceled", pi.data, request)
        self.store.update(record)
        self.store.emit("checkout.session.expired", self.view(record), request)

    def expire(self, session_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/checkout/sessions/{id}/expire`` (open sessions only)."""
        check_allowed(params, {"expand"})
        with self.store.db.transaction():
            record = self.store.require(SESSION, session_id, param="session")
            status = record.data["status"]
            if status != "open":
                raise invalid_request(
                    f'Only Checkout Sessions with a status in ["open"] can be expired; this one is {status}.',
                    param="session",
                )
            self._expire(record, request)
            return self.view(record, get_expand(params))

    def _expire_if_due(self, record: Record) -> None:
        if record.data["status"] == "open" and record.data["expires_at"] <= self.store.now():
            self._expire(record, NO_REQUEST)

    def sweep_expired(self) -> int:
        """Expire open sessions past ``expires_at`` and emit ``checkout.session.expired``.

        Returns:
            How many sessions expired.
        """
        rows = (
            self.store.db.connection()
            .execute(
                "SELECT id FROM objects WHERE type = ? AND lookup = 'open'"
                " AND json_extract(data, '$.expires_at') <= ?",
                (SESSION, self.store.now()),
            )
            .fetchall()
        )
        expired = 0
        for row in rows:
            with self.store.db.transaction():
                record = self.store.get(SESSION, row["id"])
                if (
                    record
                    and record.data["status"] == "open"
                    and record.data["expires_at"] <= self.store.now()
                ):
                    self._expire(record, NO_REQUEST)
                    expired += 1
        return expired

    # -- promotion codes on the hosted page ------------------------------

    def apply_promotion_code(self, session_id: str, code: str) -> PromotionResult:
        """Apply a promotion code typed on the hosted page and recompute totals."""
        with self.store.db.transaction():
            record = self.store.require(SESSION, session_id)
            self._expire_if_due(record)
            if record.data["status"] != "open":
                return PromotionResult(False, record, "This checkout session is no longer open.")
            if not record.data["allow_promotion_codes"]:
                return PromotionResult(False, record, "Promotion codes can't be used here.")
            code = (code or "").strip()
            if not code:
                return PromotionResult(False, record, "Enter a promotion code.")
            promo = self.discounts.find_active_code(code)
            if promo is None:
                inactive = self.store.db.find("promotion_code", code.lower())
                message = "This code is no longer active." if inactive else "This code is invalid."
                return PromotionResult(False, record, message)
            try:
                coupon = self.discounts.check_promotion(
                    promo,
                    line_items=record.internal["line_items"],
                    currency=record.data["currency"],
                    email=record.data["customer_email"],
                )
            except PromotionInvalid as exc:
                return PromotionResult(False, record, exc.message)
            record.internal["applied"] = {
                "coupon": coupon.id,
                "promotion_code": promo.id,
                "code": promo.data["code"],
            }
            self._reprice(record)
            self.store.update(record)
            return PromotionResult(True, record)

    def remove_promotion_code(self, session_id: str) -> PromotionResult:
        """Remove the promotion code applied on the hosted page."""
        with self.store.db.transaction():
            record = self.store.require(SESSION, session_id)
            if record.data["status"] == "open" and record.data["allow_promotion_codes"]:
                record.internal["applied"] = None
                self._reprice(record)
                self.store.update(record)
            return PromotionResult(True, record)

    def applied_code(self, record: Record) -> str | None:
        """Return the customer-facing code applied to a session, if any."""
        applied = record.internal.get("applied")
        if not applied or not applied.get("promotion_code"):
            return None
        if applied.get("code"):
            return applied["code"]
        promo = self.store.get("promotion_code", applied["promotion_code"])
        return promo.data["code"] if promo else None

    def discount_label(self, record: Record) -> str:
        """How the hosted page names the discount: the code the customer typed there, else the
        coupon's name (as Stripe shows it). A code the merchant attached (``discounts``) is never
        shown: it may be a hidden one that only the merchant's server may use."""
        applied = record.internal.get("applied") or {}
        if applied.get("code"):
            return f"Discount ({applied['code']})"
        coupon = self.store.get("coupon", applied["coupon"]) if applied.get("coupon") else None
        name = coupon.data.get("name") if coupon else None
        return f"Discount ({name})" if name else "Discount"

    # -- payment ---------------------------------------------------------

    def _ensure_payment_intent(self, record: Record) -> Record:
        data = record.data
        if data["payment_intent"]:
            pi = self.store.require("payment_intent", data["payment_intent"])
            if pi.data["amount"] != data["amount_total"]:
                pi.data["amount"] = data["amount_total"]
                self.store.update(pi)
            return pi
        pi_data = record.internal["payment_intent_data"]
        pi = self.payments.create_payment_intent(
            amount=data["amount_total"],
            currency=data["currency"],
            metadata=dict(pi_data["metadata"]),
            description=pi_data["description"],
            receipt_email=pi_data["receipt_email"],
            connect=pi_data.get("connect"),
        )
        data["payment_intent"] = pi.id
        self.store.emit("payment_intent.created", pi.data, NO_REQUEST)
        return pi

    def _check_applied(self, record: Record, email: str) -> str | None:
        applied = record.internal.get("applied")
        if not applied:
            return None
        items = record.internal["line_items"]
        currency = record.data["currency"]
        try:
            if applied.get("promotion_code"):
                promo = self.store.require("promotion_code", applied["promotion_code"])
                self.discounts.check_promotion(promo, line_items=items, currency=currency, email=email)
            else:
                coupon = self.store.require("coupon", applied["coupon"])
                self.discounts.check_coupon(coupon, line_items=items, currency=currency)
        except PromotionInvalid as exc:
            return exc.message
        return None

    def pay(self, session_id: str, form: PaymentForm) -> PaymentResult:
        """Run one payment attempt from the hosted page (or the local pay helper).

        Returns:
            What happened; on ``succeeded`` the session is complete, the
            PaymentIntent succeeded, redemptions are counted and
            ``checkout.session.completed`` is queued.
        """
        with self.store.db.transaction():
            record = self.store.require(SESSION, session_id)
            self._expire_if_due(record)
            if record.data["status"] != "open":
                return PaymentResult("not_open", record, message=_not_open_message(record.data["status"]))
            email = (form.email or record.data["customer_email"] or "").strip()
            name = (form.name or "").strip()
            if not email:
                return PaymentResult("invalid", record, "Your email address is incomplete.", field="email")
            if not EMAIL_PATTERN.match(email):
                return PaymentResult("invalid", record, "Your email address is invalid.", field="email")
            if not name:
                return PaymentResult("invalid", record, "Enter the name on your card.", field="name")
            problem = self._check_applied(record, email)
            if problem:
                record.internal["applied"] = None
                self._reprice(record)
                self.store.update(record)
                return PaymentResult(
                    "promotion_invalid",
                    record,
                    f"{problem} The discount was removed; check the new total and pay again.",
                )
            record.internal["pending_auth"] = None
            fee = (record.internal["payment_intent_data"].get("connect") or {}).get("application_fee_amount")
            if fee is not None and 0 < record.data["amount_total"] < fee:
                # Stripe refuses an application fee above the amount; a discount applied on the
                # page can bring the total below the fee the merchant set, so the payment is refused.
                # A total of 0 makes no payment at all, so there is no fee to take.
                return PaymentResult(
                    "invalid",
                    record,
                    "This order can't be paid with this discount: the total is below the seller's "
                    "application fee. Remove the promotion code, or ask the shop for help.",
                )
            if record.data["amount_total"] == 0:
                self._complete(record, email=email, name=name, paid="no_payment_required")
                self.store.update(record)
                self.store.emit("checkout.session.completed", self.view(record), NO_REQUEST)
                return PaymentResult("succeeded", record, redirect_url=self._success_url(record))
            try:
                card = check_card(form.card_number, form.expiry, form.cvc)
            except CardFieldError as exc:
                self.store.update(record)
                return PaymentResult(
                    "invalid",
                    record,
                    exc.message,
                    field=exc.field,
                    error={"type": "card_error", "code": exc.code, "message": exc.message},
                )
            summary = {
                "brand": card.brand,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "available_at_once": card.number == AVAILABLE_AT_ONCE_CARD,
                "refund_behavior": (
                    "pending"
                    if card.number in REFUND_PENDING_CARDS
                    else "fails"
                    if card.number in REFUND_FAILS_CARDS
                    else None
                ),
            }
            pi = self._ensure_payment_intent(record)
            action = card.action
            if action in (Action.AUTHENTICATE_THEN_SUCCEED, Action.AUTHENTICATE_THEN_DECLINE):
                decline = card.decline
                record.internal["pending_auth"] = {
                    "card": summary,
                    "email": email,
                    "name": name,
                    "decline": next((k for k, v in DECLINES.items() if v == decline), None),
                }
                pi.data["status"] = "requires_action"
                pi.data["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {}}
                self.store.update(pi)
                self.store.update(record)
                self.store.emit("payment_intent.requires_action", pi.data, NO_REQUEST)
                return PaymentResult("requires_action", record)
            if action is Action.DECLINE:
                assert card.decline is not None
                return self._decline(record, pi, summary, card.decline, email, name)
            return self._succeed(
                record, pi, summary, email, name, dispute=action is Action.SUCCEED_THEN_DISPUTE
            )

    def authenticate(self, session_id: str, complete: bool) -> PaymentResult:
        """Finish the 3-D Secure step: ``complete`` or fail the authentication."""
        with self.store.db.transaction():
            record = self.store.require(SESSION, session_id)
            self._expire_if_due(record)
            if record.data["status"] != "open":
                return PaymentResult("not_open", record, message=_not_open_message(record.data["status"]))
            pending = record.internal.get("pending_auth")
            if not pending:
                return PaymentResult("invalid", record, "There is no payment waiting for authentication.")
            record.internal["pending_auth"] = None
            pi = self._ensure_payment_intent(record)
            pi.data["next_action"] = None
            if not complete:
                return self._decline(
                    record,
                    pi,
                    pending["card"],
                    DECLINES["authentication_failed"],
                    pending["email"],
                    pending["name"],
                )
            if pending.get("decline"):
                return self._decline(
                    record,
                    pi,
                    pending["card"],
                    DECLINES[pending["decline"]],
                    pending["email"],
                    pending["name"],
                )
            return self._succeed(record, pi, pending["card"], pending["email"], pending["name"])

    def _decline(
        self,
        record: Record,
        pi: Record,
        card: dict[str, Any],
        decline: Decline,
        email: str,
        name: str,
    ) -> PaymentResult:
        error = {
            "type": "card_error",
            "code": decline.code,
            "decline_code": decline.decline_code,
            "message": decline.message,
            "doc_url": f"{DOC_BASE}/{decline.code.replace('_', '-')}",
            "payment_intent": pi.id,
        }
        if decline.code == "payment_intent_authentication_failure":
            error["type"] = "invalid_request_error"
        charge = None
        if decline.code != "payment_intent_authentication_failure":
            charge = self.payments.create_charge(pi, card=card, email=email, name=name, decline=decline)
            pi.data["latest_charge"] = charge.id
            error["charge"] = charge.id
        pi.data["status"] = "requires_payment_method"
        pi.data["next_action"] = None
        pi.data["last_payment_error"] = {k: v for k, v in error.items() if k != "payment_intent"}
        self.store.update(pi)
        self.store.update(record)
        if charge is not None:
            self.store.emit("charge.failed", charge.data, NO_REQUEST)
        self.store.emit("payment_intent.payment_failed", pi.data, NO_REQUEST)
        return PaymentResult("declined", record, decline.message, error=error)

    def _complete(self, record: Record, *, email: str, name: str, paid: str) -> None:
        data = record.data
        applied = record.internal.get("applied")
        if applied:
            self.discounts.redeem(applied["coupon"], applied.get("promotion_code"))
        data["status"] = "complete"
        data["payment_status"] = paid
        data["url"] = None
        data["customer_details"] = {
            "address": None,
            "email": email,
            "name": name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        record.lookup = "complete"
        self.discounts.remember_paid(email)

    def _succeed(
        self,
        record: Record,
        pi: Record,
        card: dict[str, Any],
        email: str,
        name: str,
        *,
        dispute: bool = False,
    ) -> PaymentResult:
        charge = self.payments.create_charge(pi, card=card, email=email, name=name, decline=None)
        if self.payments.transfers is not None:
            self.payments.transfers.settle_charge(
                charge, available_at_once=bool(card.get("available_at_once"))
            )
        pi.data.update(
            status="succeeded",
            amount_received=pi.data["amount"],
            latest_charge=charge.id,
            payment_method=charge.data["payment_method"],
            last_payment_error=None,
            next_action=None,
        )
        self.store.update(pi)
        self._complete(record, email=email, name=name, paid="paid")
        self.store.update(record)
        self.store.emit("charge.succeeded", charge.data, NO_REQUEST)
        self.store.emit("payment_intent.succeeded", pi.data, NO_REQUEST)
        self.store.emit("checkout.session.completed", self.view(record), NO_REQUEST)
        if dispute:
            self.payments.open_dispute(charge)
        return PaymentResult("succeeded", record, redirect_url=self._success_url(record))

    @staticmethod
    def _success_url(record: Record) -> str | None:
        url = record.data["success_url"]
        return url.replace("{CHECKOUT_SESSION_ID}", record.id) if url else None

    def seconds_until_next_expiry(self) -> float | None:
        """Seconds until the earliest open session expires (None when none is open)."""
        row = (
            self.store.db.connection()
            .execute(
                "SELECT MIN(json_extract(data, '$.expires_at')) AS t FROM objects"
                " WHERE type = ? AND lookup = 'open'",
                (SESSION,),
            )
            .fetchone()
        )
        if row is None or row["t"] is None:
            return None
        return max(0.0, row["t"] - self.store.clock.time())


def _not_open_message(status: str) -> str:
    if status == "complete":
        return "This checkout session is already paid. Nothing more to do here."
    return "This checkout session has expired. Go back to the shop to start a new one."
