"""`/checkout/success` (live confirmation) and `/library`."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ArrayVar, ObjectVar

from quantoxbay import routes
from quantoxbay.components.layout import button_link, empty_state, loading_block, page
from quantoxbay.state.checkout import CheckoutSuccessState, LibraryState


def _download_link(f: ObjectVar) -> rx.Component:
    return rx.hstack(
        rx.icon("file-down", size=16),
        rx.text(f["filename"], size="2"),
        # A plain <a download>: the client-side router must not swallow a file response.
        rx.el.a(
            "Download",
            href=f["url"],
            download=f["filename"],
            custom_attrs={"reloadDocument": True},
            style={"fontWeight": 600, "color": "var(--accent-11)", "textDecoration": "underline"},
        ),
        spacing="2",
        align="center",
    )


def success_page() -> rx.Component:
    waiting = rx.vstack(
        rx.spinner(size="3"),
        rx.heading("Waiting for payment confirmation", size="5"),
        rx.text(
            "This page updates by itself the moment Stripe confirms your payment. "
            "You can also close it: your purchase will be in your library.",
            color=rx.color("gray", 11),
            text_align="center",
        ),
        align="center",
        spacing="3",
    )
    paid = rx.vstack(
        rx.icon("circle-check", size=48, color=rx.color("green", 9)),
        rx.heading("Payment confirmed", size="6"),
        rx.text("Order #", CheckoutSuccessState.order_id, data_testid="order-number"),
        rx.text(
            "Thank you! ",
            rx.text.strong(CheckoutSuccessState.title),
            " is yours (",
            CheckoutSuccessState.total_label,
            ").",
        ),
        rx.text(
            "We e-mailed your receipt to ",
            rx.text.strong(CheckoutSuccessState.receipt_email),
            ".",
            data_testid="receipt-note",
        ),
        rx.vstack(rx.foreach(CheckoutSuccessState.files, _download_link), spacing="2"),
        button_link("Go to your library", routes.LIBRARY, variant="soft"),
        align="center",
        spacing="3",
    )
    failed = rx.vstack(
        rx.icon("circle-x", size=48, color=rx.color("red", 9)),
        rx.heading("Payment failed", size="6"),
        rx.text(
            "Your bank did not confirm the payment, so nothing was charged. You can try again.",
            color=rx.color("gray", 11),
        ),
        button_link("Back to the store", routes.STOREFRONT),
        align="center",
        spacing="3",
    )
    # Fulfilment refused the session (not what the shop sold): a plain message, no confirmation.
    refused = empty_state(
        "circle-alert",
        "This purchase could not be confirmed",
        "This payment does not match what the shop sells, so no order was made. "
        "If you were charged, contact support for a refund.",
        button_link("Back to the store", routes.STOREFRONT),
    )
    unknown = empty_state(
        "circle-help",
        "We could not find this checkout",
        "Check your library for your purchases.",
        button_link("Open library", routes.LIBRARY),
    )
    return page(
        rx.center(
            rx.card(
                rx.match(
                    CheckoutSuccessState.status,
                    ("paid", paid),
                    ("failed", failed),
                    ("refused", refused),
                    ("unknown", unknown),
                    waiting,
                ),
                size="4",
                width="100%",
                max_width="36em",
                role="status",
                aria_live="polite",
            ),
            width="100%",
        ),
        max_width="48em",
    )


def _library_row(entry: ObjectVar) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.vstack(
                rx.text(entry["title"], weight="bold", size="3"),
                rx.hstack(
                    rx.text(entry["date"], size="2", color=rx.color("gray", 10)),
                    rx.text(entry["total"], size="2", color=rx.color("gray", 10)),
                    rx.badge(entry["status"], variant="soft", data_testid="order-status"),
                    rx.cond(
                        entry["refunded"] != "",
                        rx.text("refunded ", entry["refunded"], size="2", color=rx.color("gray", 10)),
                    ),
                    spacing="3",
                    wrap="wrap",
                ),
                rx.cond(
                    entry["downloads"] != "",
                    rx.text(entry["downloads"], size="1", color=rx.color("gray", 10)),
                ),
                rx.button(
                    "Resend receipt",
                    variant="ghost",
                    size="1",
                    # mypy reads reflex's rx.event as returning its namespace, not the handler
                    on_click=LibraryState.resend_receipt(entry["order_id"]),
                ),
                spacing="1",
                align="start",
            ),
            rx.cond(
                entry["can_download"],
                rx.vstack(rx.foreach(entry["files"].to(ArrayVar), _download_link), spacing="1", align="end"),
                rx.text("Not available", size="2", color=rx.color("gray", 10)),
            ),
            justify="between",
            align="center",
            wrap="wrap",
            gap="3",
            width="100%",
        ),
        width="100%",
        data_testid="library-row",
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            "Previous", variant="soft", on_click=LibraryState.previous_page, disabled=LibraryState.page == 0
        ),
        rx.text("Page ", LibraryState.page + 1, size="2"),
        rx.button("Next", variant="soft", on_click=LibraryState.next_page, disabled=~LibraryState.has_next),
        spacing="3",
        align="center",
        justify="center",
        width="100%",
        padding_top="1em",
    )


def library_page() -> rx.Component:
    return page(
        rx.heading("Your library", size="7", padding_bottom="1em"),
        rx.cond(
            LibraryState.notice != "",
            rx.callout(LibraryState.notice, icon="info", margin_bottom="1em"),
        ),
        rx.cond(
            LibraryState.loaded,
            rx.cond(
                LibraryState.entries.length() > 0,
                rx.vstack(
                    rx.foreach(LibraryState.entries, _library_row),
                    rx.cond((LibraryState.page > 0) | LibraryState.has_next, _pager()),
                    spacing="3",
                    width="100%",
                ),
                empty_state(
                    "library",
                    "No purchases yet",
                    "Products you buy appear here, ready to download.",
                    button_link("Browse the store", routes.STOREFRONT),
                ),
            ),
            loading_block(),
        ),
    )
