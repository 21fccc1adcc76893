"""Storefront `/` and product page `/products/[product_id]`."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.buy_box import buy_box
from quantoxbay.components.layout import button_link, empty_state, loading_block, page
from quantoxbay.state.catalog import ProductState, StorefrontState


def product_card(product: rx.Var) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.center(
                    rx.icon("package", size=40, color=rx.color("accent", 9)),
                    height="9em",
                    width="100%",
                    background=rx.color("accent", 3),
                    border_radius="var(--radius-3)",
                ),
                rx.text(product["title"], weight="bold", size="3", trim="both"),
                rx.hstack(
                    rx.text(product["seller_name"], size="2", color=rx.color("gray", 10)),
                    rx.badge(product["price_label"], size="2", variant="soft"),
                    justify="between",
                    width="100%",
                ),
                spacing="2",
            ),
            width="100%",
            _hover={"box_shadow": "var(--shadow-4)"},
        ),
        href="/products/" + product["id"].to_string(),
        underline="none",
        aria_label=product["title"],
        color="inherit",
    )


def storefront() -> rx.Component:
    return page(
        rx.vstack(
            rx.heading("Digital products from independent creators", size="7"),
            rx.text(
                "E-books, templates, presets, code and audio. Pay securely, download instantly.",
                color=rx.color("gray", 11),
            ),
            spacing="2",
            padding_bottom="1.5em",
        ),
        rx.cond(
            StorefrontState.loading,
            loading_block(),
            rx.cond(
                StorefrontState.total > 0,
                rx.grid(
                    rx.foreach(StorefrontState.products, product_card),
                    columns=rx.breakpoints(initial="1", sm="2", md="3", lg="4"),
                    spacing="4",
                    width="100%",
                ),
                empty_state(
                    "store", "No products yet", "Sellers have not published anything yet. Check back soon."
                ),
            ),
        ),
    )


def product_page() -> rx.Component:
    p = ProductState.product
    body = rx.grid(
        rx.center(
            rx.icon("package", size=72, color=rx.color("accent", 9)),
            height="18em",
            background=rx.color("accent", 3),
            border_radius="var(--radius-4)",
        ),
        rx.vstack(
            rx.heading(p["title"], size="8", as_="h1"),
            rx.text("by ", rx.text.strong(p["seller_name"]), color=rx.color("gray", 11)),
            rx.heading(p["price_label"], size="6", color=rx.color("accent", 11)),
            buy_box(),
            rx.box(rx.markdown(p["description"].to(str)), width="100%"),
            rx.heading("What you get", size="3", padding_top="1em"),
            rx.vstack(
                rx.foreach(
                    ProductState.files,
                    lambda f: rx.hstack(
                        rx.icon("file", size=16),
                        rx.text(f["filename"], size="2"),
                        rx.text(f["size_label"], size="2", color=rx.color("gray", 10)),
                        spacing="2",
                        align="center",
                    ),
                ),
                spacing="1",
            ),
            spacing="3",
            align="start",
        ),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="6",
        width="100%",
    )
    missing = empty_state(
        "circle-help",
        "Product not found",
        "This product does not exist or is no longer for sale.",
        button_link("Back to the store", routes.STOREFRONT),
    )
    return page(
        rx.cond(ProductState.loading, loading_block(), rx.cond(ProductState.not_found, missing, body))
    )
