"""The app shell: navbar (links by role, account menu), page container, footer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import reflex as rx

from quantoxbay import routes
from quantoxbay.state.session import SessionState

# The seller area's pages, in the account and mobile menus.
SELLER_LINKS = [
    ("Seller dashboard", routes.SELLER),
    ("Products", routes.SELLER_PRODUCTS),
    ("Orders", routes.SELLER_ORDERS),
    ("Promotions", routes.SELLER_PROMOTIONS),
    ("Payouts", routes.SELLER_PAYOUTS),
]

# Log-out is a same-origin POST (the route refuses GET and other origins). The full page load
# after it also starts a new websocket: the old one's handshake still carries the old cookie.
LOG_OUT = rx.call_script(
    f"fetch({json.dumps(routes.API_AUTH_LOGOUT)}, {{method: 'POST', credentials: 'same-origin',"
    f" redirect: 'manual'}}).finally(() => window.location.assign({json.dumps(routes.STOREFRONT)}))"
)


def button_link(text: str, href: str | rx.Var[str], **props: object) -> rx.Component:
    """A link that looks like a button (an <a>, so assistive tech calls it a link)."""
    return rx.button(rx.link(text, href=href, underline="none"), as_child=True, **props)


def _brand() -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.icon("shopping-bag", size=22, color=rx.color("accent", 10)),
            rx.heading("QuantoxBay", size="5", weight="bold"),
            align="center",
            spacing="2",
        ),
        href=routes.STOREFRONT,
        underline="none",
        color=rx.color("gray", 12),
    )


def _nav_link(text: str, href: str) -> rx.Component:
    return rx.link(text, href=href, size="3", weight="medium", color=rx.color("gray", 11), underline="none")


def _role_links() -> list[rx.Component]:
    return [
        _nav_link("Store", routes.STOREFRONT),
        rx.cond(SessionState.is_logged_in, _nav_link("Library", routes.LIBRARY)),
        rx.cond(SessionState.is_seller, _nav_link("Seller", routes.SELLER)),
        rx.cond(SessionState.is_admin, _nav_link("Admin", routes.ADMIN)),
    ]


def _account_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.avatar(fallback=SessionState.initial, size="1", radius="full"),
                rx.text(SessionState.email, display=["none", "none", "inline"], size="2"),
                rx.icon("chevron-down", size=14),
                variant="ghost",
                aria_label="Account menu",
            )
        ),
        rx.menu.content(
            rx.box(
                rx.text(SessionState.email, size="2", weight="medium"),
                rx.badge(SessionState.role, variant="soft"),
                padding="0.5em 0.75em",
            ),
            rx.menu.separator(),
            rx.menu.item("Library", on_click=rx.redirect(routes.LIBRARY)),
            rx.cond(
                SessionState.is_seller,
                rx.fragment(
                    rx.menu.separator(),
                    *[rx.menu.item(label, on_click=rx.redirect(path)) for label, path in SELLER_LINKS],
                ),
            ),
            rx.cond(SessionState.is_admin, rx.menu.item("Admin", on_click=rx.redirect(routes.ADMIN))),
            rx.menu.separator(),
            rx.menu.item("Log out", on_click=LOG_OUT, color="red"),
        ),
    )


def _mobile_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(rx.icon_button(rx.icon("menu"), variant="ghost", aria_label="Open menu")),
        rx.menu.content(
            rx.menu.item("Store", on_click=rx.redirect(routes.STOREFRONT)),
            rx.cond(SessionState.is_logged_in, rx.menu.item("Library", on_click=rx.redirect(routes.LIBRARY))),
            rx.cond(
                SessionState.is_seller,
                rx.fragment(
                    *[rx.menu.item(label, on_click=rx.redirect(path)) for label, path in SELLER_LINKS]
                ),
            ),
            rx.cond(SessionState.is_admin, rx.menu.item("Admin", on_click=rx.redirect(routes.ADMIN))),
        ),
    )


def navbar() -> rx.Component:
    logged_out = rx.hstack(
        button_link("Log in", routes.LOGIN, variant="soft"),
        rx.box(button_link("Sign up", routes.SIGNUP), display=["none", "block"]),
        spacing="2",
    )
    logged_in = rx.hstack(
        rx.button("Log out", variant="ghost", color_scheme="gray", on_click=LOG_OUT),
        _account_menu(),
        spacing="3",
        align="center",
    )
    return rx.box(
        rx.hstack(
            rx.hstack(
                rx.box(_mobile_menu(), display=["block", "block", "none"]),
                _brand(),
                rx.hstack(
                    *_role_links(), spacing="5", display=["none", "none", "flex"], padding_left="1.5em"
                ),
                align="center",
                spacing="3",
            ),
            rx.hstack(
                rx.color_mode.button(variant="ghost", aria_label="Toggle dark mode"),
                rx.cond(SessionState.is_logged_in, logged_in, logged_out),
                align="center",
                spacing="3",
            ),
            justify="between",
            align="center",
            max_width="72em",
            margin_x="auto",
            padding_x=["1em", "1.5em"],
            padding_y="0.75em",
        ),
        as_="nav",
        position="sticky",
        top="0",
        z_index="10",
        background=rx.color("gray", 1, alpha=True),
        backdrop_filter="blur(12px)",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        width="100%",
    )


def footer() -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.text(
                "© QuantoxBay · self-hosted marketplace for digital products",
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.hstack(
                rx.icon("lock", size=14, color=rx.color("gray", 10)),
                rx.text("Payments processed securely by Stripe", size="1", color=rx.color("gray", 10)),
                spacing="1",
                align="center",
            ),
            justify="between",
            wrap="wrap",
            gap="2",
            max_width="72em",
            margin_x="auto",
            padding="1.5em",
        ),
        border_top=f"1px solid {rx.color('gray', 4)}",
        margin_top="4em",
        width="100%",
    )


def page(*children: rx.Component, max_width: str = "72em") -> rx.Component:
    """Navbar, content, footer; content shows a spinner until the session is known."""
    return rx.vstack(
        navbar(),
        rx.box(
            *children,
            width="100%",
            max_width=max_width,
            margin_x="auto",
            padding_x=["1em", "1.5em"],
            padding_top="2em",
            flex="1",
        ),
        footer(),
        min_height="100vh",
        spacing="0",
        width="100%",
    )


def loading_block() -> rx.Component:
    return rx.center(rx.spinner(size="3"), padding="4em", width="100%")


def empty_state(icon: str, title: str, text: str, action: rx.Component | None = None) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon(icon, size=36, color=rx.color("gray", 9)),
            rx.heading(title, size="4"),
            rx.text(text, color=rx.color("gray", 10), text_align="center"),
            *([action] if action is not None else []),
            align="center",
            spacing="3",
        ),
        padding="4em 1em",
        width="100%",
        border=f"1px dashed {rx.color('gray', 6)}",
        border_radius="var(--radius-4)",
    )


def data_table(headers: list[str], rows: rx.Var, render: Callable[[Any], rx.Component]) -> rx.Component:
    """A compact table of ``rows`` (one ``render(row)`` each) under ``headers``; scrolls sideways
    on a narrow screen rather than widening the page."""
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(rows, render)),
            width="100%",
            variant="ghost",
            size="1",
        ),
        overflow_x="auto",
        width="100%",
    )
