"""Library, seller and admin pages (guarded on load and in every handler)."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.layout import button_link, empty_state, loading_block, page
from quantoxbay.state.areas import SellerHomeState
from quantoxbay.state.session import SessionState


def seller_page() -> rx.Component:
    rows = rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("Product"),
                rx.table.column_header_cell("Status"),
                rx.table.column_header_cell("Price"),
                rx.table.column_header_cell("Sales"),
            )
        ),
        rx.table.body(
            rx.foreach(
                SellerHomeState.products,
                lambda p: rx.table.row(
                    rx.table.cell(p["title"]),
                    rx.table.cell(rx.badge(p["status"])),
                    rx.table.cell(p["price"]),
                    rx.table.cell(p["sales"]),
                ),
            )
        ),
        width="100%",
        variant="surface",
    )
    return page(
        rx.heading("Seller dashboard", size="7", padding_bottom="1em"),
        rx.cond(
            SellerHomeState.loaded,
            rx.cond(
                SellerHomeState.products.length() > 0,
                rows,
                empty_state("package-plus", "No products yet", "Create your first product to start selling."),
            ),
            loading_block(),
        ),
    )


def admin_page() -> rx.Component:
    return page(
        rx.heading("Admin", size="7", padding_bottom="1em"),
        rx.cond(
            SessionState.is_admin,
            rx.grid(
                *[
                    rx.card(
                        rx.heading(name, size="4"),
                        rx.text("Coming with the admin panel.", size="2", color=rx.color("gray", 10)),
                    )
                    for name in ("Users", "Products", "Orders", "Webhook events")
                ],
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="4",
                width="100%",
            ),
            loading_block(),
        ),
    )


def not_found_page() -> rx.Component:
    return page(
        empty_state(
            "map-pin-off",
            "Page not found",
            "The page you are looking for does not exist or has moved.",
            button_link("Back to the store", routes.STOREFRONT),
        ),
    )
