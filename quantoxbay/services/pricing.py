"""What a product costs right now. The server decides, at checkout time, never the browser."""

from __future__ import annotations

from datetime import datetime

from quantoxbay.models import Product, utcnow


def sale_is_running(product: Product, now: datetime | None = None) -> bool:
    """A sale runs when a sale price below the list price is set and now is inside [starts, ends)."""
    if product.sale_price_cents is None or product.sale_price_cents >= product.price_cents:
        return False
    now = now or utcnow()
    starts, ends = product.sale_starts_at, product.sale_ends_at
    return (starts is None or starts <= now) and (ends is None or now < ends)


def current_price_cents(product: Product, now: datetime | None = None) -> int:
    if sale_is_running(product, now):
        assert product.sale_price_cents is not None
        return product.sale_price_cents
    return product.price_cents
