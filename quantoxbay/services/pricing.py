"""What a product costs right now. The server decides, at checkout time, never the browser."""

from __future__ import annotations

from datetime import datetime

from quantoxbay.models import Product, utcnow
from quantoxbay.services import DomainError
from quantoxbay.services.money import MAX_PRICE_CENTS, format_amount, min_charge_cents


class NamedPriceRefused(DomainError):
    """A pay-what-you-want amount the shop cannot charge (shown under "Name a fair price")."""


def sale_is_running(product: Product, now: datetime | None = None) -> bool:
    """A sale runs when a sale price below the list price is set and now is inside [starts, ends)."""
    if product.sale_price_cents is None or product.sale_price_cents >= product.price_cents:
        return False
    now = now or utcnow()
    starts, ends = product.sale_starts_at, product.sale_ends_at
    return (starts is None or starts <= now) and (ends is None or now < ends)


def current_price_cents(product: Product, now: datetime | None = None) -> int:
    """The list price, or the sale price while the sale runs; for pay what you want, the minimum."""
    if sale_is_running(product, now):
        assert product.sale_price_cents is not None
        return product.sale_price_cents
    return product.price_cents


def is_free(product: Product, now: datetime | None = None) -> bool:
    """Free to have (no Stripe): priced 0 and not pay what you want (whose 0 is only a minimum)."""
    return not product.pay_what_you_want and current_price_cents(product, now) == 0


def named_price_cents(product: Product, named_cents: int | None, now: datetime | None = None) -> int:
    """What the buyer pays for ``product`` when they name ``named_cents`` (pay what you want).

    The product's price is the minimum; a named amount is refused below it, below Stripe's minimum
    charge in the product's currency (except 0 when the minimum is 0: that buyer takes it free) and
    above the shop's maximum. A product that is not pay what you want costs its price whatever was
    named, and so does a pay-what-you-want one when nothing was named.
    """
    minimum = current_price_cents(product, now)
    if not product.pay_what_you_want or named_cents is None:
        return minimum
    if named_cents == 0 and minimum == 0:
        return 0
    lowest = max(minimum, min_charge_cents(product.currency))
    if named_cents < lowest:
        at_least = format_amount(lowest, product.currency)
        if minimum == 0:
            raise NamedPriceRefused(f"Name at least {at_least}, or 0 to get it free.")
        if lowest == minimum:
            raise NamedPriceRefused(f"Name at least {at_least}, this product's minimum price.")
        raise NamedPriceRefused(f"Name at least {at_least}, the smallest amount a card can be charged.")
    if named_cents > MAX_PRICE_CENTS:
        raise NamedPriceRefused(f"Name at most {format_amount(MAX_PRICE_CENTS, product.currency)}.")
    return named_cents
