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
            rx.button(
                rx.icon("lock", size=16),
                "Buy now",
                size="3",
                on_click=BuyBoxState.buy_now,
                loading=BuyBoxState.busy,
                aria_label="Buy now",
            ),
        ),
        rx.text("Secure checkout by Stripe · instant download", size="1", color=rx.color("gray", 10)),
        spacing="2",
        align="start",
    )
