"""`/seller/orders`: the seller's orders, with Refund, Reset downloads and Reissue access."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from quantoxbay import routes
from quantoxbay.components.layout import button_link, empty_state, loading_block, page
from quantoxbay.constants import FULL_REFUND_NOTE, REFUND_REASONS
from quantoxbay.state.seller_orders import SellerOrdersState

S = SellerOrdersState


def _refund_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Refund order #", S.refund_order_id, " (", S.refund_title, ")", size="4"),
                rx.hstack(
                    rx.vstack(
                        rx.el.label("Refund amount", html_for="refund-amount", size="2"),
                        rx.input(
                            id="refund-amount",
                            value=S.refund_amount,
                            on_change=S.set_refund_amount,
                            inputmode="decimal",
                        ),
                        spacing="1",
                    ),
                    rx.vstack(
                        rx.el.label("Reason", html_for="refund-reason"),
                        rx.el.select(
                            *[rx.el.option(r.replace("_", " "), value=r) for r in REFUND_REASONS],
                            id="refund-reason",
                            value=S.refund_reason,
                            on_change=S.set_refund_reason,
                        ),
                        spacing="1",
                    ),
                    spacing="4",
                    align="end",
                    wrap="wrap",
                ),
                rx.text(FULL_REFUND_NOTE, size="2", data_testid="refund-note"),
                rx.hstack(
                    rx.button("Confirm refund", type="submit", loading=S.busy, color_scheme="red"),
                    rx.button("Cancel", type="button", variant="soft", on_click=S.cancel_refund),
                    spacing="3",
                ),
                spacing="3",
            ),
            on_submit=lambda _data: S.confirm_refund(),
        ),
        width="100%",
        margin_bottom="1em",
    )


def _row(o: ObjectVar) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text("#", o["order_id"])),
        rx.table.cell(o["title"]),
        rx.table.cell(o["buyer"]),
        rx.table.cell(o["date"]),
        rx.table.cell(
            o["total"], rx.cond(o["refunded"] != "", rx.text("refunded ", o["refunded"], size="1"))
        ),
        rx.table.cell(rx.badge(o["status_label"])),
        rx.table.cell(o["downloads_used"]),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    o["can_refund"],
                    # mypy reads reflex's rx.event as returning its namespace, not the handler
                    rx.button("Refund", size="1", color_scheme="red", on_click=S.start_refund(o["order_id"])),  # type: ignore[operator]
                ),
                rx.button("Reset downloads", size="1", variant="soft", on_click=S.reset_limit(o["order_id"])),
                rx.button("Reissue access", size="1", variant="soft", on_click=S.reissue(o["order_id"])),
                spacing="2",
                wrap="wrap",
            )
        ),
        data_testid="seller-order-row",
    )


def seller_orders_page() -> rx.Component:
    table = rx.table.root(
        rx.table.header(
            rx.table.row(
                *[
                    rx.table.column_header_cell(h)
                    for h in ("Order", "Product", "Buyer", "Date", "Total", "Status", "Downloads", "Actions")
                ]
            )
        ),
        rx.table.body(rx.foreach(S.orders, _row)),
        width="100%",
        variant="surface",
    )
    pager = rx.hstack(
        rx.button("Previous", variant="soft", on_click=S.previous_page, disabled=S.page == 0),
        rx.button("Next", variant="soft", on_click=S.next_page, disabled=~S.has_next),
        spacing="3",
        padding_top="1em",
    )
    return page(
        rx.hstack(
            rx.heading("Orders", size="7"),
            button_link("Products", routes.SELLER_PRODUCTS, variant="soft"),
            justify="between",
            width="100%",
            padding_bottom="1em",
        ),
        rx.cond(S.refund_order_id > 0, _refund_form()),
        rx.cond(
            S.loaded,
            rx.cond(
                S.orders.length() > 0,
                rx.vstack(table, rx.cond((S.page > 0) | S.has_next, pager), width="100%"),
                empty_state("receipt", "No orders yet", "Orders for your products appear here."),
            ),
            loading_block(),
        ),
    )
