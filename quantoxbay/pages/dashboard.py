"""`/seller`: the live seller dashboard."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.layout import button_link, empty_state, loading_block, page
from quantoxbay.components.verify_notice import verify_email_notice
from quantoxbay.constants import PERIODS
from quantoxbay.state.dashboard import DashboardState

D = DashboardState
MUTED = rx.color("gray", 10)


def _figure(label: str, value: rx.Var, test_id: str, **props: object) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", color=MUTED),
        rx.text(value, size="6", weight="bold", data_testid=test_id, **props),
        spacing="1",
    )


def _revenue() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Revenue", size="4", as_="h2"),
                rx.badge(D.period_label, variant="soft"),
                align="center",
                spacing="3",
            ),
            rx.grid(
                _figure("Gross", D.gross, "revenue-gross"),
                _figure("Refunds", D.refunds, "revenue-refunds"),
                _figure("Net", D.net, "revenue-net", color=rx.color("accent", 11)),
                _figure("Orders", D.orders, "revenue-orders"),
                _figure("Units", D.units, "revenue-units"),
                columns=rx.breakpoints(initial="2", md="5"),
                spacing="4",
                width="100%",
            ),
            rx.text(
                "Gross is what buyers paid after discounts (",
                D.discounts,
                " in discounts); refunds count on the day of the sale. Times in ",
                D.tz,
                ".",
                size="1",
                color=MUTED,
            ),
            rx.foreach(
                D.other_currencies,
                lambda c: rx.text(
                    c["currency"],
                    ": gross ",
                    c["gross"],
                    ", refunds ",
                    c["refunds"],
                    ", net ",
                    c["net"],
                    size="2",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _revenue_chart() -> rx.Component:
    return rx.card(
        rx.heading(
            rx.cond(
                D.bucket == "hour",
                "Revenue per hour",
                rx.cond(D.bucket == "month", "Revenue per month", "Revenue per day"),
            ),
            size="3",
            as_="h2",
            padding_bottom="0.5em",
        ),
        rx.box(
            rx.recharts.bar_chart(
                rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
                rx.recharts.x_axis(data_key="label", font_size=12),
                rx.recharts.y_axis(font_size=12, width=60),
                rx.recharts.graphing_tooltip(),
                rx.recharts.legend(),
                rx.recharts.bar(data_key="net", name="Net", fill=rx.color("accent", 9), stack_id="a"),
                rx.recharts.bar(data_key="refunds", name="Refunds", fill=rx.color("red", 8), stack_id="a"),
                data=D.series,
                width="100%",
                height=280,
            ),
            role="img",
            aria_label="Sales chart: revenue over the period",
            data_testid="sales-chart",
            width="100%",
        ),
        width="100%",
    )


def _product_chart() -> rx.Component:
    return rx.card(
        rx.heading("Sales per product", size="3", as_="h2", padding_bottom="0.5em"),
        rx.box(
            rx.recharts.bar_chart(
                rx.recharts.cartesian_grid(stroke_dasharray="3 3", horizontal=False),
                rx.recharts.x_axis(type_="number", allow_decimals=False, font_size=12),
                rx.recharts.y_axis(data_key="title", type_="category", width=160, font_size=12),
                rx.recharts.graphing_tooltip(),
                rx.recharts.bar(data_key="units", name="Units", fill=rx.color("accent", 9)),
                data=D.product_chart,
                layout="vertical",
                width="100%",
                height=280,
            ),
            role="img",
            aria_label="Units sold per product",
            width="100%",
        ),
        width="100%",
    )


def _products_table() -> rx.Component:
    return rx.card(
        rx.heading("Products", size="3", as_="h2", padding_bottom="0.5em"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in ("Product", "Orders", "Units", "Gross", "Refunds", "Net")
                    ]
                )
            ),
            rx.table.body(
                rx.foreach(
                    D.products,
                    lambda p: rx.table.row(
                        rx.table.row_header_cell(p["title"]),
                        rx.table.cell(p["orders"]),
                        rx.table.cell(p["units"]),
                        rx.table.cell(p["gross"]),
                        rx.table.cell(p["refunds"]),
                        rx.table.cell(p["net"]),
                        data_testid="product-row",
                    ),
                )
            ),
            width="100%",
            variant="ghost",
        ),
        width="100%",
    )


def _top_products() -> rx.Component:
    return rx.card(
        rx.heading("Top products", size="3", as_="h2", padding_bottom="0.5em"),
        rx.el.ol(
            rx.foreach(
                D.top_products,
                lambda p: rx.el.li(
                    rx.hstack(
                        rx.text(p["title"], weight="medium"),
                        rx.text(p["net"], " · ", p["units"], " sold", color=MUTED, size="2"),
                        justify="between",
                        width="100%",
                    ),
                    padding_y="0.25em",
                ),
            ),
            style={"padding_left": "1.2em", "margin": "0"},
        ),
        width="100%",
    )


def _toast() -> rx.Component:
    """The live toast: a polite status region pinned to the corner; names the sale pushed to the page."""
    return rx.box(
        rx.cond(
            D.toast != "",
            rx.callout.root(
                rx.hstack(
                    rx.callout.icon(rx.icon(rx.cond(D.toast_kind == "refund", "undo-2", "party-popper"))),
                    rx.callout.text(D.toast, data_testid="live-toast"),
                    rx.icon_button(
                        rx.icon("x", size=14),
                        variant="ghost",
                        size="1",
                        aria_label="Dismiss",
                        on_click=D.dismiss_toast,
                    ),
                    align="center",
                    spacing="3",
                ),
                color_scheme=rx.cond(D.toast_kind == "refund", "amber", "green"),
                variant="surface",
                box_shadow="var(--shadow-4)",
            ),
        ),
        role="status",
        aria_live="polite",
        position="fixed",
        bottom="1.5em",
        right="1.5em",
        z_index="20",
        max_width="26em",
    )


def seller_dashboard_page() -> rx.Component:
    controls = rx.hstack(
        rx.segmented_control.root(
            *[rx.segmented_control.item(label, value=value) for value, label in PERIODS.items()],
            value=D.period,
            on_change=D.set_period,
            aria_label="Period",
        ),
        rx.button(rx.icon("download", size=16), "Export CSV", variant="soft", on_click=D.export_csv),
        button_link("Your products", routes.SELLER_PRODUCTS, variant="outline"),
        button_link("Orders", routes.SELLER_ORDERS, variant="outline"),
        button_link("Payouts", routes.SELLER_PAYOUTS, variant="outline"),
        spacing="3",
        wrap="wrap",
        align="center",
    )
    body = rx.vstack(
        _revenue(),
        rx.cond(
            D.orders > 0,
            rx.vstack(
                rx.grid(
                    _revenue_chart(),
                    _product_chart(),
                    columns=rx.breakpoints(initial="1", lg="2"),
                    spacing="4",
                    width="100%",
                ),
                rx.grid(
                    _products_table(),
                    _top_products(),
                    columns=rx.breakpoints(initial="1", lg="2"),
                    spacing="4",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
            rx.vstack(
                _revenue_chart(),
                empty_state(
                    "chart-no-axes-column",
                    "No sales in this period",
                    "Sales appear here the moment they are paid.",
                    button_link("Your products", routes.SELLER_PRODUCTS),
                ),
                spacing="4",
                width="100%",
            ),
        ),
        spacing="4",
        width="100%",
    )
    return page(
        verify_email_notice(),
        rx.hstack(
            rx.heading("Seller dashboard", size="7"),
            controls,
            justify="between",
            align="center",
            wrap="wrap",
            gap="3",
            width="100%",
            padding_bottom="1em",
        ),
        rx.cond(
            D.loaded, body, rx.cond(D.error != "", rx.callout(D.error, color_scheme="red"), loading_block())
        ),
        _toast(),
    )
