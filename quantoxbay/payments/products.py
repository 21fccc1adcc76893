"""Each shop product's Stripe Product, made the first time a checkout or a promo code needs it.

Checkout line items name it (``price_data[product]``) and product-scoped coupons list it in
``applies_to[products]``: Stripe matches a coupon against the Stripe Product ids of the line
items, and refuses ids it does not know, so a shop's own product ids cannot stand in for them.
"""

from __future__ import annotations

import stripe
from sqlmodel import Session

from quantoxbay.models import Product
from quantoxbay.payments.retry import with_rate_limit_retry


def stripe_product_id_for(*, session: Session, stripe_client: stripe.StripeClient, product: Product) -> str:
    """The product's Stripe Product id: created on first need, renamed when the title changed.

    The id is written in the caller's transaction. Creating is idempotent per shop product
    (its id and creation time make the key), so two checkouts racing for a product without
    one, or a retry after the caller's transaction rolled back, get the same Stripe Product
    from Stripe's idempotency replay (kept 24 h) rather than two.
    """
    assert product.id is not None
    if product.stripe_product_id and product.stripe_product_name == product.title:
        return product.stripe_product_id
    if product.stripe_product_id:
        stripe_id = product.stripe_product_id
        with_rate_limit_retry(lambda: stripe_client.v1.products.update(stripe_id, {"name": product.title}))
    else:
        key = f"qb-product-{product.id}-{product.created_at.timestamp():.6f}"
        created = with_rate_limit_retry(
            lambda: stripe_client.v1.products.create(
                {"name": product.title, "metadata": {"product_id": str(product.id)}},
                {"idempotency_key": key},
            )
        )
        product.stripe_product_id = str(created.id)
    product.stripe_product_name = product.title
    session.add(product)
    session.flush()
    return product.stripe_product_id
