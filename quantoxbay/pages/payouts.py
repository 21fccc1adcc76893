"""`/seller/payouts`: the seller's Stripe account status, balances, payouts, and each sale's net."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from quantoxbay import routes
from quantoxbay.components.layout import button_link, data_table, empty_state, loading_block, page
from quantoxbay.components.verify_notice import verify_email_notice
from quantoxbay.state.payouts import PayoutsState

P = PayoutsState
MUTED = rx.color("gray", 10)
ENABLED = "Payouts enabled"


def _status() -> rx.Component:
    label = P.status_label
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Stripe account", size="4", as_="h2"),
                rx.badge(
                    label,
                    color_scheme=rx.match(label, (ENABLED, "green"), ("Action required", "amber"), "gray"),
                    size="2",
                    data_testid="payout-status",
                ),
                align="center",
                spacing="3",
            ),
            rx.cond(
                P.needs.length() > 0,
                rx.vstack(
                    rx.text("Stripe still needs:", size="2", weight="medium"),
                    rx.el.ul(
                        rx.foreach(P.needs, lambda need: rx.el.li(need)),
                        style={"padding_left": "1.2em", "margin": "0"},
                    ),
                    spacing="1",
                    data_testid="payout-needs",
                ),
            ),
            rx.cond(
                ~P.has_account,
                rx.text(
                    "Sales are paid to your own Stripe account, less the platform's fee. Stripe asks for "
                    "your details and bank account once; then payouts reach your bank on Stripe's schedule.",
                    size="2",
                    color=MUTED,
                ),
            ),
            rx.cond(
                P.publish_note != "",
                rx.callout(P.publish_note, icon="info", color_scheme="amber", size="1"),
            ),
            rx.hstack(
                rx.cond(
                    label != ENABLED,
                    rx.button(
                        rx.icon("landmark", size=16),
                        "Set up payouts",
                        on_click=P.set_up_payouts,
                        loading=P.busy,
                    ),
                ),
                rx.cond(
                    P.can_open_dashboard,
                    rx.button(
                        rx.icon("external-link", size=16),
                        "Open Stripe dashboard",
                        variant="soft",
                        on_click=P.open_dashboard,
                        loading=P.busy,
                    ),
                ),
                spacing="3",
                wrap="wrap",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _figure(label: str, value: rx.Var, test_id: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", color=MUTED),
        rx.text(value, size="6", weight="bold", data_testid=test_id),
        spacing="1",
    )


def _balances() -> rx.Component:
    def currency(b: ObjectVar) -> rx.Component:
        return rx.grid(
            _figure("Available", b["available"], "balance-available"),
            _figure("Pending", b["pending"], "balance-pending"),
            rx.text(b["currency"], size="1", color=MUTED, align_self="end"),
            columns="3",
            spacing="4",
            width="100%",
        )

    return rx.card(
        rx.vstack(
            rx.heading("Balance", size="4", as_="h2"),
            rx.cond(
                P.balances_note != "",
                rx.callout(P.balances_note, icon="triangle-alert", color_scheme="orange", size="1"),
                rx.vstack(rx.foreach(P.balances, currency), spacing="3", width="100%"),
            ),
            rx.text(
                "Available money is paid out to your bank on Stripe's schedule; pending money becomes "
                "available a few days after each sale.",
                size="1",
                color=MUTED,
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _payouts() -> rx.Component:
    def row(p: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(p["arrival_date"]),
            rx.table.cell(p["amount"]),
            rx.table.cell(
                rx.badge(
                    p["status"],
                    color_scheme=rx.match(p["status"], ("paid", "green"), ("failed", "red"), "gray"),
                )
            ),
            data_testid="payout-row",
        )

    return rx.card(
        rx.vstack(
            rx.heading("Recent payouts", size="4", as_="h2"),
            rx.cond(
                P.payouts.length() > 0,
                data_table(["Arrival", "Amount", "Status"], P.payouts, row),
                rx.text("No payouts yet.", size="2", color=MUTED),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _orders() -> rx.Component:
    def row(o: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell("#", o["order_id"].to(str)),
            rx.table.cell(o["title"]),
            rx.table.cell(o["paid_at"], color=MUTED),
            rx.table.cell(rx.badge(o["status"])),
            rx.table.cell(o["gross"]),
            rx.table.cell(o["discount"]),
            rx.table.cell(o["platform_fee"]),
            rx.table.cell(o["refunded"]),
            rx.table.cell(o["reversed"]),
            rx.table.cell(rx.text(o["net"], weight="bold")),
            data_testid="payout-order-row",
        )

    headers = ["Order", "Product", "Paid", "Status", "Gross", "Discount", "Platform fee", "Refunded"]
    return rx.card(
        rx.vstack(
            rx.heading("Recent sales", size="4", as_="h2"),
            rx.cond(
                P.orders.length() > 0,
                rx.vstack(
                    data_table([*headers, "Reversed", "Net"], P.orders, row),
                    rx.text(
                        "Gross is what the buyer paid, after the discount. Net is what reaches your "
                        "Stripe account: gross less the platform fee, less what refunds and disputes "
                        "took back. Sales made before payouts were set up show no net.",
                        size="1",
                        color=MUTED,
                    ),
                    spacing="2",
                    width="100%",
                ),
                empty_state(
                    "receipt",
                    "No sales yet",
                    "Each sale appears here with the platform fee and what you receive.",
                    button_link("Your products", routes.SELLER_PRODUCTS),
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def payouts_page() -> rx.Component:
    body = rx.vstack(
        _status(),
        rx.grid(
            _balances(), _payouts(), columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"
        ),
        _orders(),
        spacing="4",
        width="100%",
    )
    return page(
        verify_email_notice(),
        rx.hstack(
            rx.heading("Payouts", size="7"),
            rx.hstack(
                button_link("Seller dashboard", routes.SELLER, variant="outline"),
                button_link("Orders", routes.SELLER_ORDERS, variant="outline"),
                spacing="3",
            ),
            justify="between",
            align="center",
            wrap="wrap",
            gap="3",
            width="100%",
            padding_bottom="1em",
        ),
        rx.cond(
            P.loaded, body, rx.cond(P.error != "", rx.callout(P.error, color_scheme="red"), loading_block())
        ),
    )
