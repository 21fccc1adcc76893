"""A product in a listing: cover, title (the link's accessible name), seller, price."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar


def cover_image(url: rx.Var, height: str, icon_size: int = 40) -> rx.Component:
    """The product's cover, or a neutral placeholder when it has none."""
    return rx.cond(
        url,
        rx.image(
            src=url.to(str),
            alt="",
            width="100%",
            height=height,
            object_fit="cover",
            border_radius="var(--radius-3)",
            loading="lazy",
        ),
        rx.center(
            rx.icon("package", size=icon_size, color=rx.color("accent", 9)),
            height=height,
            width="100%",
            background=rx.color("accent", 3),
            border_radius="var(--radius-3)",
        ),
    )


def price_tag(product: ObjectVar, size: str = "2") -> rx.Component:
    """The price to pay now; the list price struck through while a sale runs."""
    return rx.hstack(
        rx.cond(
            product["on_sale"],
            rx.text(
                product["regular_price_label"],
                size="1",
                color=rx.color("gray", 10),
                text_decoration="line-through",
            ),
        ),
        rx.badge(
            product["price_label"],
            size=size,
            variant="soft",
            color_scheme=rx.cond(product["on_sale"], "red", "violet"),
        ),
        spacing="2",
        align="center",
    )


def product_card(product: ObjectVar) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                cover_image(product["cover_url"], "9em"),
                rx.text(product["title"], weight="bold", size="3", trim="both"),
                rx.hstack(
                    rx.text(product["seller_name"], size="2", color=rx.color("gray", 10)),
                    price_tag(product),
                    justify="between",
                    align="center",
                    width="100%",
                ),
                spacing="2",
            ),
            width="100%",
            height="100%",
            _hover={"box_shadow": "var(--shadow-4)"},
        ),
        href="/products/" + product["id"].to_string(),
        underline="none",
        aria_label=product["title"],
        color="inherit",
    )


def product_grid(products: rx.Var) -> rx.Component:
    return rx.grid(
        rx.foreach(products, product_card),
        columns=rx.breakpoints(initial="1", sm="2", md="3", lg="4"),
        spacing="4",
        width="100%",
    )
