"""Products: ``POST/GET /v1/products``, ``GET /v1/products/{id}``, ``POST /v1/products/{id}``.

A stored product is what a Price's ``product``, Checkout's
``line_items[i][price_data][product]`` and a coupon's ``applies_to[products]``
refer to. Inline ``product_data`` (on a Price, or on a Checkout line item's
``price_data``) stores a product too, retrievable by its generated id as on
Stripe; the one a Checkout line item makes is inactive (as Stripe's are) and
emits no ``product.created``.
"""

from __future__ import annotations

from typing import Any

from .db import Record
from .errors import invalid_request
from .ids import new_id
from .params import (
    check_allowed,
    created_filter,
    get_bool,
    get_list,
    get_metadata,
    get_str,
    update_metadata,
)
from .store import RequestInfo, Store, previous_attributes

PRODUCT = "product"
NAME_MAX_LENGTH = 250
MAX_IMAGES = 8

CREATE_PARAMS = {"id", "name", "description", "images", "metadata", "active", "expand"}
UPDATE_PARAMS = {"name", "description", "images", "metadata", "active", "expand"}
INLINE_PARAMS = {
    "name",
    "description",
    "images",
    "metadata",
    "tax_code",
    "unit_label",
    "statement_descriptor",
}
LIST_PARAMS = {
    "active",
    "ids",
    "created",
    "limit",
    "starting_after",
    "ending_before",
    "expand",
    "shippable",
    "url",
}


def product_images(params: dict[str, Any], *, param: str = "images") -> list[str]:
    """A product's ``images`` (a product, or a line item's inline ``product_data``): at most 8."""
    images = [str(i) for i in get_list(params, "images", param=param)]
    if len(images) > MAX_IMAGES:
        raise invalid_request(f"At most {MAX_IMAGES} images.", param=param)
    return images


class Products:
    """Product operations.

    Args:
        store: The object store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def view(record: Record) -> dict[str, Any]:
        """Return a product as the API shows it."""
        return dict(record.data)

    def create(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/products``; emits ``product.created``."""
        check_allowed(params, CREATE_PARAMS)
        name = get_str(params, "name", required=True, max_length=NAME_MAX_LENGTH)
        custom_id = get_str(params, "id")
        active = get_bool(params, "active")
        created = self.store.now()
        data: dict[str, Any] = {
            "id": custom_id or new_id("prod", 14),
            "object": PRODUCT,
            "active": True if active is None else active,
            "created": created,
            "default_price": None,
            "description": get_str(params, "description"),
            "images": product_images(params),
            "livemode": False,
            "marketing_features": [],
            "metadata": get_metadata(params),
            "name": name,
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "type": "service",
            "unit_label": None,
            "updated": created,
            "url": None,
        }
        with self.store.db.transaction():
            # Object ids share one table: an id held by any object (not only a
            # product) is refused rather than failing on the unique index.
            if custom_id and self.store.db.id_taken(custom_id):
                raise invalid_request("Product already exists.", param="id", code="resource_already_exists")
            record = self.store.insert(PRODUCT, data)
            self.store.emit("product.created", data, request)
            return self.view(record)

    def create_inline(
        self,
        product_data: dict[str, Any],
        prefix: str,
        request: RequestInfo,
        *,
        line_item: bool = False,
    ) -> dict[str, Any]:
        """Store the product an inline ``product_data`` hash describes (inside a transaction).

        Args:
            product_data: The hash (``name`` required; ``description``, ``images``,
                ``metadata``, ``tax_code``, ``unit_label``, ``statement_descriptor``).
            prefix: Its parameter name, for errors (``product_data``).
            request: The request behind it.
            line_item: Made for a Checkout line item: inactive and without an event.
        """
        check_allowed(product_data, INLINE_PARAMS, prefix)
        name = get_str(
            product_data, "name", param=f"{prefix}[name]", required=True, max_length=NAME_MAX_LENGTH
        )
        created = self.store.now()
        data: dict[str, Any] = {
            "id": new_id("prod", 14),
            "object": PRODUCT,
            "active": not line_item,
            "created": created,
            "default_price": None,
            "description": get_str(product_data, "description", param=f"{prefix}[description]"),
            "images": product_images(product_data, param=f"{prefix}[images]"),
            "livemode": False,
            "marketing_features": [],
            "metadata": get_metadata(product_data),
            "name": name,
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": get_str(product_data, "statement_descriptor"),
            "tax_code": get_str(product_data, "tax_code"),
            "type": "service",
            "unit_label": get_str(product_data, "unit_label"),
            "updated": created,
            "url": None,
        }
        self.store.insert(PRODUCT, data)
        if not line_item:
            self.store.emit("product.created", data, request)
        return data

    def list_products(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/products``: newest first; filters ``active``, ``ids[]``, ``created``,
        ``shippable``, ``url``."""
        check_allowed(params, LIST_PARAMS)
        active = get_bool(params, "active")
        shippable = get_bool(params, "shippable")
        ids = {str(i) for i in get_list(params, "ids")}
        url = get_str(params, "url")
        created = created_filter(params)

        def accept(record: Record) -> bool:
            data = record.data
            return (
                (active is None or data["active"] == active)
                and (shippable is None or data["shippable"] == shippable)
                and (not ids or record.id in ids)
                and (url is None or data["url"] == url)
                and created(record.created)
            )

        records, has_more = self.store.page_of(PRODUCT, params, accept=accept)
        return [self.view(r) for r in records], has_more

    def retrieve(self, product_id: str) -> dict[str, Any]:
        """``GET /v1/products/{id}``."""
        return self.view(self.store.require(PRODUCT, product_id))

    def update(self, product_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/products/{id}``: ``name``, ``description``, ``images``,
        ``metadata`` (merged; keys posted empty are removed), ``active``.
        Bumps ``updated``; emits ``product.updated``."""
        check_allowed(params, UPDATE_PARAMS)
        with self.store.db.transaction():
            record = self.store.require(PRODUCT, product_id)
            data = record.data
            before = {k: data.get(k) for k in ("name", "description", "images", "active", "metadata")}
            if "name" in params:
                data["name"] = get_str(params, "name", required=True, max_length=NAME_MAX_LENGTH)
            if "description" in params:
                data["description"] = get_str(params, "description")  # "" unsets it
            if "images" in params:
                data["images"] = product_images(params)
            active = get_bool(params, "active")
            if active is not None:
                data["active"] = active
            data["metadata"] = update_metadata(data["metadata"], params)
            previous = previous_attributes(before, {k: data.get(k) for k in before})
            if previous:
                previous["updated"] = data["updated"]
            data["updated"] = self.store.now()
            self.store.update(record)
            self.store.emit("product.updated", data, request, previous=previous)
            return self.view(record)

    def require_for_price(self, product_id: str, *, param: str) -> Record:
        """Return a product a new price may use.

        Raises:
            StripeLocalError: 404 ``resource_missing`` for an unknown id, 400
                for an archived (inactive) product; both name ``param``.
        """
        record = self.store.require(PRODUCT, product_id, param=param)
        if not record.data["active"]:
            raise invalid_request(
                f"The product {product_id} is marked as inactive, and thus new prices "
                "cannot be created for it.",
                param=param,
            )
        return record
