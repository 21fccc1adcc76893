"""The product page's purchase box ("Buy now" / "Get it free" / "Download"), owned by the payments flow."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.layout import button_link
from quantoxbay.constants import OFFER_FREE, OFFER_PAY_WHAT_YOU_WANT
from quantoxbay.state.checkout import BuyBoxState


def _owned() -> rx.Component:
    return rx.vstack(
        rx.callout("You own this product.", icon="circle-check", color_scheme="green"),
        button_link("Download", routes.LIBRARY, size="3"),
        spacing="2",
    )


def _get_it_free() -> rx.Component:
    return rx.button(
        rx.icon("gift", size=16),
        "Get it free",
        size="3",
        on_click=BuyBoxState.get_free,
        loading=BuyBoxState.busy,
        aria_label="Get it free",
    )


def _fair_price() -> rx.Component:
    """Pay what you want: the amount the buyer names, prefilled with the suggested price."""
    return rx.vstack(
        rx.el.label("Name a fair price", html_for="qb-fair-price", class_name="rt-Text rt-r-size-2"),
        rx.input(
            id="qb-fair-price",
            value=BuyBoxState.named_price,
            on_change=BuyBoxState.set_named_price,
            inputmode="decimal",
            max_length=20,
            size="2",
            width="10em",
            aria_describedby="qb-fair-price-help",
        ),
        rx.text(BuyBoxState.minimum_label, id="qb-fair-price-help", size="1", color=rx.color("gray", 11)),
        rx.cond(
            BuyBoxState.named_price_error != "",
            rx.text(BuyBoxState.named_price_error, size="2", color=rx.color("red", 11), role="alert"),
        ),
        spacing="1",
        align="start",
    )


def _buy_now() -> rx.Component:
    return rx.vstack(
        rx.cond(BuyBoxState.offer == OFFER_PAY_WHAT_YOU_WANT, _fair_price()),
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
    )


def buy_box() -> rx.Component:
    """Rendered on the product page under the price."""
    free = BuyBoxState.offer == OFFER_FREE
    return rx.vstack(
        rx.cond(BuyBoxState.owned, _owned(), rx.cond(free, _get_it_free(), _buy_now())),
        rx.text(
            rx.cond(
                free, "Instant download, no payment needed", "Secure checkout by Stripe · instant download"
            ),
            size="1",
            color=rx.color("gray", 10),
        ),
        spacing="2",
        align="start",
    )
