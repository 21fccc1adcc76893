"""Prices: ``POST/GET /v1/prices``, ``GET /v1/prices/{id}``, ``POST /v1/prices/{id}``.

One-time prices only (``type: one_time``, ``billing_scheme: per_unit``): the
embedded Stripe has no subscriptions, so ``recurring`` is refused. A price
names a stored product (``product``) or creates one (``product_data``), as on
Stripe. ``lookup_key`` is unique among prices; ``transfer_lookup_key=true``
moves it from the price holding it. A Checkout Session's
``line_items[i][price]`` takes a stored, active price (:meth:`Prices.require_for_line_item`).
"""

from __future__ import annotations

import re
from typing import Any

from .db import Record
from .errors import invalid_request, missing_param
from .ids import new_id
from .money import check_currency
from .params import (
    check_allowed,
    check_expand,
    created_filter,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_metadata,
    get_str,
    update_metadata,
)
from .products import Products
from .store import RequestInfo, Store, previous_attributes

PRICE = "price"
LOOKUP_KEY_MAX_LENGTH = 200
MAX_UNIT_AMOUNT = 99_999_999
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")

CREATE_PARAMS = {
    "currency",
    "unit_amount",
    "unit_amount_decimal",
    "product",
    "product_data",
    "active",
    "metadata",
    "nickname",
    "lookup_key",
    "transfer_lookup_key",
    "tax_behavior",
    "billing_scheme",
    "recurring",
    "expand",
}
UPDATE_PARAMS = {
    "active",
    "metadata",
    "nickname",
    "lookup_key",
    "transfer_lookup_key",
    "tax_behavior",
    "expand",
}
LIST_PARAMS = {
    "active",
    "currency",
    "product",
    "type",
    "lookup_keys",
    "created",
    "limit",
    "starting_after",
    "ending_before",
    "expand",
    "recurring",
}
PRICE_EXPANDABLE = {"product"}


class Prices:
    """Price operations.

    Args:
        store: The object store.
        products: Product operations (``product``, ``product_data``).
    """

    def __init__(self, store: Store, products: Products) -> None:
        self.store = store
        self.products = products

    def view(self, record: Record, expand: set[str] | None = None) -> dict[str, Any]:
        """Return a price as the API shows it (``product`` expands to the stored product)."""
        data = dict(record.data)
        if expand and "product" in expand:
            stored = self.store.get("product", data["product"])
            if stored is not None:
                data["product"] = self.products.view(stored)
        return data

    # -- create ----------------------------------------------------------

    def create(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/prices``; emits ``price.created`` (and ``product.created`` for ``product_data``)."""
        check_allowed(params, CREATE_PARAMS)
        expand = check_expand(params, PRICE_EXPANDABLE)
        if get_dict(params, "recurring"):
            raise invalid_request(
                "The embedded Stripe serves one-time prices only; `recurring` is not supported.",
                param="recurring",
            )
        billing_scheme = get_str(params, "billing_scheme") or "per_unit"
        if billing_scheme != "per_unit":
            raise invalid_request(
                "The embedded Stripe serves `billing_scheme=per_unit` prices only.", param="billing_scheme"
            )
        currency = check_currency(get_str(params, "currency", required=True) or "", param="currency")
        unit_amount = self._unit_amount(params)
        tax_behavior = self._tax_behavior(params) or "unspecified"
        lookup_key = get_str(params, "lookup_key", max_length=LOOKUP_KEY_MAX_LENGTH)
        transfer = bool(get_bool(params, "transfer_lookup_key"))
        active = get_bool(params, "active")
        product_id = get_str(params, "product")
        has_product_data = "product_data" in params
        if product_id and has_product_data:
            raise invalid_request(
                "You may only specify one of these parameters: product, product_data.", param="product"
            )
        if not product_id and not has_product_data:
            raise invalid_request(
                "You must specify either `product` or `product_data` when creating a price.",
                param="product",
                code="parameter_missing",
            )
        created = self.store.now()
        data: dict[str, Any] = {
            "id": new_id("price", 24),
            "object": PRICE,
            "active": True if active is None else active,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": get_metadata(params),
            "nickname": get_str(params, "nickname"),
            "product": product_id,
            "recurring": None,
            "tax_behavior": tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        with self.store.db.transaction():
            if product_id:
                self.products.require_for_price(product_id, param="product")
            else:
                product = self.products.create_inline(
                    get_dict(params, "product_data"), "product_data", request
                )
                data["product"] = product["id"]
            if lookup_key:
                self._claim_lookup_key(lookup_key, transfer, request)
            record = self.store.insert(PRICE, data, lookup=lookup_key)
            self.store.emit("price.created", data, request)
            return self.view(record, expand)

    @staticmethod
    def _unit_amount(params: dict[str, Any]) -> int:
        decimal = get_str(params, "unit_amount_decimal")
        if "unit_amount" in params and decimal is not None:
            raise invalid_request(
                "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
                param="unit_amount",
            )
        if decimal is not None:
            # Sub-cent amounts are for metered billing, which the embedded Stripe lacks.
            if not re.fullmatch(r"\d+", decimal):
                raise invalid_request(
                    "The embedded Stripe accepts whole minor units in `unit_amount_decimal` only.",
                    param="unit_amount_decimal",
                )
            params = {"unit_amount": decimal}
        if "unit_amount" not in params:
            raise missing_param("unit_amount")
        amount = get_int(params, "unit_amount", required=True, minimum=0, maximum=MAX_UNIT_AMOUNT)
        assert amount is not None
        return amount

    @staticmethod
    def _tax_behavior(params: dict[str, Any]) -> str | None:
        value = get_str(params, "tax_behavior")
        if value is not None and value not in TAX_BEHAVIORS:
            raise invalid_request(
                f"Invalid tax_behavior: must be one of {', '.join(TAX_BEHAVIORS)}", param="tax_behavior"
            )
        return value

    def _claim_lookup_key(self, lookup_key: str, transfer: bool, request: RequestInfo) -> None:
        """Make ``lookup_key`` free for a new holder: refuse, or take it from its holder when
        ``transfer_lookup_key`` says so (the old holder emits ``price.updated``)."""
        for holder in self.store.db.find(PRICE, lookup_key):
            if not transfer:
                raise invalid_request(
                    f"A price (`{holder.id}`) already uses that lookup key.", param="lookup_key"
                )
            before = {"lookup_key": holder.data["lookup_key"]}
            holder.data["lookup_key"] = None
            holder.lookup = None
            self.store.update(holder)
            self.store.emit("price.updated", holder.data, request, previous=before)

    # -- retrieve, update, list -----------------------------------------

    def retrieve(self, price_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/prices/{id}``."""
        check_allowed(params, {"expand"})
        expand = check_expand(params, PRICE_EXPANDABLE)
        return self.view(self.store.require(PRICE, price_id, param="price"), expand)

    def update(self, price_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/prices/{id}``: ``active``, ``metadata`` (merged), ``nickname``,
        ``lookup_key`` (with ``transfer_lookup_key``), ``tax_behavior``; emits ``price.updated``."""
        check_allowed(params, UPDATE_PARAMS)
        expand = check_expand(params, PRICE_EXPANDABLE)
        with self.store.db.transaction():
            record = self.store.require(PRICE, price_id, param="price")
            data = record.data
            changes: dict[str, Any] = {}
            active = get_bool(params, "active")
            if active is not None:
                changes["active"] = active
            if "nickname" in params:
                changes["nickname"] = get_str(params, "nickname")
            tax_behavior = self._tax_behavior(params)
            if tax_behavior is not None:
                if data["tax_behavior"] != "unspecified" and tax_behavior != data["tax_behavior"]:
                    raise invalid_request(
                        "Once specified as either `inclusive` or `exclusive`, the `tax_behavior` "
                        "of a price cannot be changed.",
                        param="tax_behavior",
                    )
                changes["tax_behavior"] = tax_behavior
            if "lookup_key" in params:
                lookup_key = get_str(params, "lookup_key", max_length=LOOKUP_KEY_MAX_LENGTH)
                if lookup_key and lookup_key != data["lookup_key"]:
                    self._claim_lookup_key(lookup_key, bool(get_bool(params, "transfer_lookup_key")), request)
                changes["lookup_key"] = lookup_key
                record.lookup = lookup_key
            changes["metadata"] = update_metadata(data["metadata"], params)
            previous = previous_attributes(data, changes)
            data.update(changes)
            self.store.update(record)
            self.store.emit("price.updated", data, request, previous=previous)
            return self.view(record, expand)

    def list_prices(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/prices``: newest first; filters ``active``, ``currency``, ``product``,
        ``type``, ``lookup_keys[]`` (up to 10), ``created``."""
        check_allowed(params, LIST_PARAMS)
        expand = {
            p.removeprefix("data.") for p in check_expand(params, {f"data.{p}" for p in PRICE_EXPANDABLE})
        }
        if get_dict(params, "recurring"):
            return [], False  # every price here is one-time
        active = get_bool(params, "active")
        currency = get_str(params, "currency")
        product = get_str(params, "product")
        price_type = get_str(params, "type")
        if price_type is not None and price_type not in ("one_time", "recurring"):
            raise invalid_request("Invalid type: must be one of one_time, recurring", param="type")
        lookup_keys = [str(k) for k in get_list(params, "lookup_keys")]
        if len(lookup_keys) > 10:
            raise invalid_request("You may only specify up to 10 lookup keys.", param="lookup_keys")
        created = created_filter(params)

        def accept(record: Record) -> bool:
            data = record.data
            return (
                (active is None or data["active"] == active)
                and (currency is None or data["currency"] == currency.lower())
                and (product is None or data["product"] == product)
                and (price_type is None or data["type"] == price_type)
                and created(record.created)
            )

        records, has_more = self.store.page_of(PRICE, params, lookups=lookup_keys or None, accept=accept)
        return [self.view(r, expand) for r in records], has_more

    def require_for_line_item(self, price_id: str, *, param: str) -> Record:
        """Return a price a Checkout line item may use: stored, active, one-time.

        Raises:
            StripeLocalError: 404 ``resource_missing`` for an unknown id, 400 for
                an inactive price or one whose product is archived.
        """
        record = self.store.require(PRICE, price_id, param=param)
        if not record.data["active"]:
            raise invalid_request(
                f"The price specified ({price_id}) is inactive. This field only accepts active prices.",
                param=param,
            )
        product = self.store.get("product", record.data["product"])
        if product is not None and not product.data["active"]:
            raise invalid_request(
                f"The price specified ({price_id}) belongs to an inactive product "
                f"({product.id}). This field only accepts prices of active products.",
                param=param,
            )
        return record
