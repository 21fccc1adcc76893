"""Coupons and promotion codes.

``applies_to[products]`` on a coupon lists Product ids (``prod_...`` or custom
ids of products created with ``POST /v1/products``); each must exist when the
coupon is created. A line item counts as one of those products when its
product's id is in the list, so only line items created with
``price_data[product]`` can match (``price_data[product_data]`` gets a fresh
generated id no coupon can name). A coupon without ``applies_to`` applies to
every line item.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .db import Record
from .errors import invalid_request, missing_param
from .ids import new_id, new_promotion_code, random_token
from .money import format_amount
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
from .products import PRODUCT
from .store import NO_REQUEST, RequestInfo, Store, previous_attributes

CODE_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,500}$")


class PromotionInvalid(Exception):
    """A code or coupon cannot be redeemed; ``message`` is shown to the buyer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def product_keys(line_item: dict[str, Any]) -> set[str]:
    """Return the ids a line item answers to in ``applies_to[products]``: its product's id."""
    return {line_item["product"]["id"]}


def coupon_applies(coupon: dict[str, Any], line_item: dict[str, Any]) -> bool:
    """Tell whether ``coupon`` discounts ``line_item`` (see module docstring)."""
    applies_to = coupon.get("applies_to")
    if not applies_to or not applies_to.get("products"):
        return True
    return bool(product_keys(line_item) & set(applies_to["products"]))


def line_discounts(coupon: dict[str, Any] | None, line_items: list[dict[str, Any]]) -> list[int]:
    """Split a coupon's discount over line items (minor units, one per item).

    ``percent_off`` rounds each line half-up; ``amount_off`` is capped at the
    eligible subtotal and spread in proportion, the last eligible line taking
    the rounding remainder.
    """
    amounts = [0] * len(line_items)
    if coupon is None:
        return amounts
    eligible = [i for i, item in enumerate(line_items) if coupon_applies(coupon, item)]
    if coupon.get("percent_off") is not None:
        percent = Decimal(str(coupon["percent_off"]))
        for i in eligible:
            subtotal = Decimal(line_items[i]["amount_subtotal"])
            amounts[i] = int((subtotal * percent / 100).quantize(Decimal(1), ROUND_HALF_UP))
        return amounts
    base = sum(line_items[i]["amount_subtotal"] for i in eligible)
    off = min(int(coupon.get("amount_off") or 0), base)
    if not eligible or base == 0:
        return amounts
    given = 0
    for i in eligible[:-1]:
        amounts[i] = off * line_items[i]["amount_subtotal"] // base
        given += amounts[i]
    amounts[eligible[-1]] = off - given
    return amounts


class Discounts:
    """Coupon and promotion code operations.

    Args:
        store: The object store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- coupons ---------------------------------------------------------

    def coupon_view(self, record: Record, expand: set[str] | None = None) -> dict[str, Any]:
        """Return a coupon as the API shows it, with ``valid`` up to date.

        ``applies_to`` is an optional field Stripe never sends as null: present for a
        coupon limited to some products, or when ``expand[]=applies_to`` asks for it.
        """
        data = dict(record.data)
        data["valid"] = self._coupon_problem(data, deleted=bool(record.internal.get("deleted"))) is None
        if data.get("applies_to") is None and not (expand and "applies_to" in expand):
            data.pop("applies_to", None)
        return data

    def _coupon_problem(self, coupon: dict[str, Any], *, deleted: bool = False) -> str | None:
        if deleted or coupon.get("deleted"):
            return "This code is invalid."
        redeem_by = coupon.get("redeem_by")
        if redeem_by is not None and redeem_by <= self.store.now():
            return "This code has expired."
        limit = coupon.get("max_redemptions")
        if limit is not None and coupon["times_redeemed"] >= limit:
            return "This code has reached its redemption limit."
        return None

    def create_coupon(self, params: dict[str, Any], request: RequestInfo = NO_REQUEST) -> dict[str, Any]:
        """Create a coupon (``POST /v1/coupons``); emits ``coupon.created``."""
        check_allowed(
            params,
            {
                "id",
                "percent_off",
                "amount_off",
                "currency",
                "duration",
                "duration_in_months",
                "max_redemptions",
                "redeem_by",
                "applies_to",
                "name",
                "metadata",
                "expand",
            },
        )
        percent_text = get_str(params, "percent_off")
        amount_off = get_int(params, "amount_off", minimum=1)
        if (percent_text is None) == (amount_off is None):
            raise invalid_request(
                "You must pass exactly one of `percent_off` or `amount_off`.",
                param="percent_off" if percent_text is None else "amount_off",
            )
        percent_off: float | None = None
        if percent_text is not None:
            try:
                percent = Decimal(percent_text)
            except InvalidOperation:
                raise invalid_request(f"Invalid decimal: {percent_text}", param="percent_off") from None
            if not 0 < percent <= 100:
                raise invalid_request(
                    "percent_off must be greater than 0 and at most 100.", param="percent_off"
                )
            percent_off = float(percent)
        currency = get_str(params, "currency")
        if amount_off is not None and not currency:
            raise missing_param("currency")
        if currency and not re.fullmatch(r"[a-z]{3}", currency):
            raise invalid_request(f"Invalid currency: {currency}", param="currency")
        duration = get_str(params, "duration") or "once"
        if duration not in ("once", "forever", "repeating"):
            raise invalid_request(f"Invalid duration: {duration}", param="duration")
        months = get_int(params, "duration_in_months", minimum=1)
        if duration == "repeating" and months is None:
            raise missing_param("duration_in_months")
        redeem_by = get_int(params, "redeem_by")
        if redeem_by is not None and redeem_by <= self.store.now():
            raise invalid_request("redeem_by must be in the future.", param="redeem_by")
        applies = get_dict(params, "applies_to")
        check_allowed(applies, {"products"}, "applies_to")
        products = [str(p) for p in get_list(applies, "products", param="applies_to[products]")]
        coupon_id = get_str(params, "id", max_length=200) or random_token(8)
        with self.store.db.transaction():
            if self.store.get("coupon", coupon_id):
                raise invalid_request("Coupon already exists.", param="id", code="resource_already_exists")
            for product_id in products:
                self.store.require(PRODUCT, product_id, param="applies_to[products]")
            data = {
                "id": coupon_id,
                "object": "coupon",
                "amount_off": amount_off,
                "applies_to": {"products": products} if products else None,
                "created": self.store.now(),
                "currency": currency if amount_off is not None else None,
                "duration": duration,
                "duration_in_months": months if duration == "repeating" else None,
                "livemode": False,
                "max_redemptions": get_int(params, "max_redemptions", minimum=1),
                "metadata": get_metadata(params),
                "name": get_str(params, "name", max_length=40),
                "percent_off": percent_off,
                "redeem_by": redeem_by,
                "times_redeemed": 0,
                "valid": True,
            }
            record = self.store.insert("coupon", data)
            self.store.emit("coupon.created", self.coupon_view(record), request)
            return self.coupon_view(record, get_expand(params))

    def _live_coupon(self, coupon_id: str) -> Record:
        """The coupon, unless deleted: a deleted coupon is gone from the API (404), as on Stripe,
        while promotion codes made from it keep refusing it."""
        record = self.store.require("coupon", coupon_id)
        if record.internal.get("deleted"):
            self.store.require("coupon", None)
        return record

    def retrieve_coupon(self, coupon_id: str, expand: set[str] | None = None) -> dict[str, Any]:
        """Return one coupon (``GET /v1/coupons/{id}``)."""
        return self.coupon_view(self._live_coupon(coupon_id), expand)

    def list_coupons(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/coupons``: newest first, filter ``created``."""
        check_allowed(params, {"created", "limit", "starting_after", "ending_before", "expand"})
        created = created_filter(params)
        records, has_more = self.store.page_of(
            "coupon",
            params,
            accept=lambda r: not r.internal.get("deleted") and created(r.created),
        )
        expand = {p.removeprefix("data.") for p in get_expand(params)}
        return [self.coupon_view(r, expand) for r in records], has_more

    def update_coupon(self, coupon_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/coupons/{id}``: only ``name`` and ``metadata`` change (Stripe keeps a
        coupon's terms fixed); emits ``coupon.updated`` with ``previous_attributes``."""
        check_allowed(params, {"name", "metadata", "expand"})
        with self.store.db.transaction():
            record = self._live_coupon(coupon_id)
            changes: dict[str, Any] = {"metadata": update_metadata(record.data["metadata"], params)}
            if "name" in params:
                changes["name"] = get_str(params, "name", max_length=40) or None
            previous = previous_attributes(record.data, changes)
            record.data.update(changes)
            self.store.update(record)
            self.store.emit("coupon.updated", self.coupon_view(record), request, previous=previous)
            return self.coupon_view(record, get_expand(params))

    def delete_coupon(self, coupon_id: str, request: RequestInfo) -> dict[str, Any]:
        """``DELETE /v1/coupons/{id}``: the coupon can no longer be redeemed or retrieved;
        emits ``coupon.deleted``."""
        with self.store.db.transaction():
            record = self._live_coupon(coupon_id)
            record.internal["deleted"] = True
            record.data["valid"] = False
            self.store.update(record)
            self.store.emit("coupon.deleted", self.coupon_view(record), request)
        return {"id": record.id, "object": "coupon", "deleted": True}

    def check_coupon(self, coupon: Record, *, line_items: list[dict[str, Any]], currency: str) -> None:
        """Check a coupon can discount this order.

        Raises:
            PromotionInvalid: Expired, exhausted, wrong currency, or no
                eligible line item.
        """
        problem = self._coupon_problem(coupon.data, deleted=bool(coupon.internal.get("deleted")))
        if problem:
            raise PromotionInvalid(problem)
        if coupon.data.get("amount_off") is not None and coupon.data["currency"] != currency:
            raise PromotionInvalid("This code can't be used with this currency.")
        if not any(coupon_applies(coupon.data, item) for item in line_items):
            raise PromotionInvalid("This code doesn't apply to any item in your order.")

    # -- promotion codes -------------------------------------------------

    def promotion_view(self, record: Record, expand: set[str] | None = None) -> dict[str, Any]:
        """Return a promotion code as the API shows it (``promotion.coupon`` expandable)."""
        data = dict(record.data)
        if expand and "promotion.coupon" in expand:
            coupon = self.store.get("coupon", data["promotion"]["coupon"])
            data["promotion"] = dict(data["promotion"])
            data["promotion"]["coupon"] = self.coupon_view(coupon) if coupon else None
        return data

    def find_active_code(self, code: str) -> Record | None:
        """Return the active promotion code matching ``code`` (any case)."""
        for record in self.store.db.find("promotion_code", code.strip().lower()):
            if record.data["active"]:
                return record
        return None

    def create_promotion_code(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """Create a promotion code (``POST /v1/promotion_codes``).

        The coupon is given as ``promotion[type]=coupon&promotion[coupon]=ID``
        (API 2025-09-30.clover and later).
        """
        check_allowed(
            params,
            {
                "promotion",
                "code",
                "active",
                "expires_at",
                "max_redemptions",
                "metadata",
                "restrictions",
                "expand",
            },
        )
        if "promotion" not in params:
            raise missing_param("promotion")
        promotion = get_dict(params, "promotion")
        check_allowed(promotion, {"type", "coupon"}, "promotion")
        kind = get_str(promotion, "type", param="promotion[type]", required=True)
        if kind != "coupon":
            raise invalid_request(f"Invalid promotion type: {kind}", param="promotion[type]")
        coupon_id = get_str(promotion, "coupon", param="promotion[coupon]", required=True)
        coupon = self.store.require("coupon", coupon_id, param="promotion[coupon]")
        code = get_str(params, "code") or new_promotion_code()
        if not CODE_PATTERN.match(code):
            raise invalid_request(
                "Promotion codes may only contain letters, digits and dashes.", param="code"
            )
        expires_at = get_int(params, "expires_at")
        if expires_at is not None:
            if expires_at <= self.store.now():
                raise invalid_request("expires_at must be in the future.", param="expires_at")
            redeem_by = coupon.data.get("redeem_by")
            if redeem_by is not None and expires_at > redeem_by:
                raise invalid_request(
                    "The promotion code cannot expire after its coupon's redeem_by.",
                    param="expires_at",
                )
        max_redemptions = get_int(params, "max_redemptions", minimum=1)
        restrictions = get_dict(params, "restrictions")
        check_allowed(
            restrictions,
            {"first_time_transaction", "minimum_amount", "minimum_amount_currency"},
            "restrictions",
        )
        minimum_amount = get_int(
            restrictions, "minimum_amount", param="restrictions[minimum_amount]", minimum=0
        )
        minimum_currency = get_str(
            restrictions, "minimum_amount_currency", param="restrictions[minimum_amount_currency]"
        )
        if minimum_amount is not None and not minimum_currency:
            raise missing_param("restrictions[minimum_amount_currency]")
        active = get_bool(params, "active")
        active = True if active is None else active
        with self.store.db.transaction():
            if active and self.find_active_code(code):
                raise invalid_request(
                    f"An active promotion code with `code: {code}` already exists.",
                    param="code",
                    code="resource_already_exists",
                )
            data = {
                "id": new_id("promo", 24),
                "object": "promotion_code",
                "active": active,
                "code": code,
                "created": self.store.now(),
                "customer": None,
                "expires_at": expires_at,
                "livemode": False,
                "max_redemptions": max_redemptions,
                "metadata": get_metadata(params),
                "promotion": {"coupon": coupon.id, "type": "coupon"},
                "restrictions": {
                    "currency_options": {},
                    "first_time_transaction": bool(
                        get_bool(
                            restrictions,
                            "first_time_transaction",
                            param="restrictions[first_time_transaction]",
                        )
                    ),
                    "minimum_amount": minimum_amount,
                    "minimum_amount_currency": minimum_currency if minimum_amount is not None else None,
                },
                "times_redeemed": 0,
            }
            record = self.store.insert("promotion_code", data, lookup=code.lower())
            self.store.emit("promotion_code.created", data, request)
            return self.promotion_view(record, get_expand(params))

    def update_promotion_code(
        self, promo_id: str, params: dict[str, Any], request: RequestInfo
    ) -> dict[str, Any]:
        """Update ``active`` or ``metadata`` (``POST /v1/promotion_codes/{id}``)."""
        check_allowed(params, {"active", "metadata", "expand"})
        with self.store.db.transaction():
            record = self.store.require("promotion_code", promo_id)
            changes: dict[str, Any] = {"metadata": update_metadata(record.data["metadata"], params)}
            active = get_bool(params, "active")
            if active is not None and active != record.data["active"]:
                if active and self.find_active_code(record.data["code"]):
                    raise invalid_request(
                        f"An active promotion code with `code: {record.data['code']}` already exists.",
                        param="active",
                        code="resource_already_exists",
                    )
                changes["active"] = active
            previous = previous_attributes(record.data, changes)
            record.data.update(changes)
            self.store.update(record)
            self.store.emit("promotion_code.updated", record.data, request, previous=previous)
            return self.promotion_view(record, get_expand(params))

    def retrieve_promotion_code(self, promo_id: str, expand: set[str]) -> dict[str, Any]:
        """Return one promotion code (``GET /v1/promotion_codes/{id}``)."""
        return self.promotion_view(self.store.require("promotion_code", promo_id), expand)

    def list_promotion_codes(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """List promotion codes, newest first, filtered by ``code``/``active``/``coupon``."""
        check_allowed(
            params,
            {"active", "code", "coupon", "limit", "starting_after", "ending_before", "expand"},
        )
        active = get_bool(params, "active")
        code = get_str(params, "code")
        coupon = get_str(params, "coupon")

        def accept(record: Record) -> bool:
            if active is not None and record.data["active"] != active:
                return False
            return coupon is None or record.data["promotion"]["coupon"] == coupon

        records, has_more = self.store.page_of(
            "promotion_code",
            params,
            lookups=[code.lower()] if code else None,
            accept=accept,
        )
        expand = {p.removeprefix("data.") for p in get_expand(params)}
        return [self.promotion_view(r, expand) for r in records], has_more

    def check_promotion(
        self,
        promo: Record,
        *,
        line_items: list[dict[str, Any]],
        currency: str,
        email: str | None,
    ) -> Record:
        """Check a promotion code can discount this order.

        Args:
            promo: The promotion code.
            line_items: The session's internal line items.
            currency: The session's currency.
            email: The buyer's e-mail, when known (first-time restriction).

        Returns:
            The coupon behind the code.

        Raises:
            PromotionInvalid: With the message to show the buyer.
        """
        data = promo.data
        if not data["active"]:
            raise PromotionInvalid("This code is no longer active.")
        if data["expires_at"] is not None and data["expires_at"] <= self.store.now():
            raise PromotionInvalid("This code has expired.")
        if data["max_redemptions"] is not None and data["times_redeemed"] >= data["max_redemptions"]:
            raise PromotionInvalid("This code has reached its redemption limit.")
        coupon = self.store.require("coupon", data["promotion"]["coupon"])
        self.check_coupon(coupon, line_items=line_items, currency=currency)
        restrictions = data["restrictions"]
        minimum = restrictions.get("minimum_amount")
        if minimum is not None:
            minimum_currency = restrictions.get("minimum_amount_currency") or currency
            subtotal = sum(item["amount_subtotal"] for item in line_items)
            if minimum_currency != currency or subtotal < minimum:
                raise PromotionInvalid(
                    f"This code requires a minimum order of {format_amount(minimum, minimum_currency)}."
                )
        if restrictions.get("first_time_transaction") and email and self.has_paid(email):
            raise PromotionInvalid("This code is only valid for first-time customers.")
        return coupon

    # -- redemption ------------------------------------------------------

    def has_paid(self, email: str) -> bool:
        """Tell whether ``email`` has completed a payment before."""
        return self.store.get("paid_email", "paid_email:" + email.strip().lower()) is not None

    def remember_paid(self, email: str) -> None:
        """Record that ``email`` completed a payment (first-time restriction)."""
        key = "paid_email:" + email.strip().lower()
        if self.store.get("paid_email", key) is None:
            self.store.insert("paid_email", {"id": key, "created": self.store.now()})

    def redeem(self, coupon_id: str | None, promotion_code_id: str | None) -> None:
        """Count one redemption of a coupon and its promotion code (in a transaction)."""
        if promotion_code_id:
            promo = self.store.require("promotion_code", promotion_code_id)
            promo.data["times_redeemed"] += 1
            self.store.update(promo)
        if coupon_id:
            coupon = self.store.require("coupon", coupon_id)
            coupon.data["times_redeemed"] += 1
            coupon.data["valid"] = (
                self._coupon_problem(coupon.data, deleted=bool(coupon.internal.get("deleted"))) is None
            )
            self.store.update(coupon)
