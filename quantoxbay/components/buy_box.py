"""The product page's purchase box ("Buy now" / "Download"), owned by the payments flow."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.layout import button_link
from quantoxbay.state.checkout import BuyBoxState


def buy_box() -> rx.Component:
    """Rendered on the product page under the price."""
    return rx.vstack(
        rx.cond(
            BuyBoxState.owned,
            rx.vstack(
                rx.callout("You own this product.", icon="circle-check", color_scheme="green"),
                button_link("Download", routes.LIBRARY, size="3"),
                spacing="2",
            ),
            rx.vstack(
                rx.input(
                    placeholder="Promo code (optional)",
                    aria_label="Promo code",
                    value=BuyBoxState.promo_code,
                    on_change=BuyBoxState.set_promo_code,
                    max_length=40,
                    size="2",
                    width="14em",
                ),
                rx.cond(
                    BuyBoxState.promo_error != "",
                    rx.text(BuyBoxState.promo_error, size="2", color=rx.color("red", 11), role="alert"),
                ),
                rx.button(
                    rx.icon("lock", size=16),
                    "Buy now",
                    size="3",
                    on_click=BuyBoxState.buy_now,
                    loading=BuyBoxState.busy,
                    aria_label="Buy now",
                ),
                spacing="2",
                align="start",
            ),
        ),
        rx.text("Secure checkout by Stripe · instant download", size="1", color=rx.color("gray", 10)),
        spacing="2",
        align="start",
    )
