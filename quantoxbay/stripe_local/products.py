"""Products: ``POST /v1/products``, ``GET /v1/products/{id}``, ``POST /v1/products/{id}``.

A stored product is what Checkout's ``line_items[i][price_data][product]`` and a
coupon's ``applies_to[products]`` refer to. Line items created with inline
``price_data[product_data]`` get a generated ``prod_...`` id that is not stored
here (so it cannot be retrieved or used in ``applies_to``).
"""

from __future__ import annotations

from typing import Any

from .db import Record
from .errors import invalid_request
from .ids import new_id
from .params import (
    check_allowed,
    get_bool,
    get_list,
    get_metadata,
    get_str,
    update_metadata,
)
from .store import RequestInfo, Store

PRODUCT = "product"
NAME_MAX_LENGTH = 250
MAX_IMAGES = 8

CREATE_PARAMS = {"id", "name", "description", "images", "metadata", "active", "expand"}
UPDATE_PARAMS = {"name", "description", "images", "metadata", "active", "expand"}


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
            data["updated"] = self.store.now()
            self.store.update(record)
            self.store.emit("product.updated", data, request)
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
