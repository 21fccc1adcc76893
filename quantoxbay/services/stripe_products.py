"""Each shop product's Stripe Product, made the first time a checkout or a promo code needs it.

Checkout line items name it (``price_data[product]``) and product-scoped coupons list it in
``applies_to[products]``: Stripe matches a coupon against the Stripe Product ids of the line
items, and refuses ids it does not know, so a shop's own product ids cannot stand in for them.
"""

from __future__ import annotations

from sqlmodel import Session

from quantoxbay.models import Product
from quantoxbay.payments.gateway import StripeGateway


def stripe_product_id_for(*, session: Session, gateway: StripeGateway, product: Product) -> str:
    """The product's Stripe Product id: created on first need, renamed when the title changed.

    The id is written in the caller's transaction. Creating is idempotent per shop product
    (its id and creation time make the key: ``gateway.product_key``), so two checkouts racing
    for a product without one, or a retry after the caller's transaction rolled back, get the
    same Stripe Product from Stripe's idempotency replay (kept 24 h) rather than two.
    """
    assert product.id is not None
    if product.stripe_product_id and product.stripe_product_name == product.title:
        return product.stripe_product_id
    if product.stripe_product_id:
        gateway.rename_product(product.stripe_product_id, product.title)
    else:
        created = gateway.create_product(
            product_id=product.id, name=product.title, created_at=product.created_at
        )
        product.stripe_product_id = str(created.id)
    product.stripe_product_name = product.title
    session.add(product)
    session.flush()
    return product.stripe_product_id
