"""`/seller/promotions`: promo codes (list, create, deactivate) and sales (schedule, end)."""

from __future__ import annotations

import reflex as rx

from quantoxbay.components.layout import loading_block, page
from quantoxbay.state.promotions import ALL_PRODUCTS, AMOUNT, PERCENT, PromotionsState

S = PromotionsState


def _field(label: str, control: rx.Component, hint: str | rx.Var = "") -> rx.Component:
    """A labelled control; the hint sits outside the <label> so the control's name is just ``label``."""
    return rx.vstack(
        rx.el.label(
            rx.text(label, size="2", weight="medium"),
            control,
            style={"display": "flex", "flex_direction": "column", "gap": "0.35em", "width": "100%"},
        ),
        *([rx.text(hint, size="1", color=rx.color("gray", 10))] if isinstance(hint, rx.Var) or hint else []),
        spacing="1",
        width="100%",
    )


def _messages(error: rx.Var, notice: rx.Var) -> rx.Component:
    return rx.fragment(
        rx.cond(
            error != "",
            rx.callout(error, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
        ),
        rx.cond(
            notice != "",
            rx.callout(notice, icon="circle-check", color_scheme="green", role="status", width="100%"),
        ),
    )


def _product_select(value: rx.Var, on_change: rx.EventHandler, label: str, with_all: bool) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label=label, placeholder="Choose a product"),
        rx.select.content(
            *([rx.select.item("All my products", value=ALL_PRODUCTS)] if with_all else []),
            rx.foreach(S.products, lambda p: rx.select.item(p["title"], value=p["id"].to(str))),
        ),
        value=value,
        on_change=on_change,
        size="3",
    )


def _code_form() -> rx.Component:
    return rx.vstack(
        rx.heading("New promo code", size="4", as_="h2"),
        rx.flex(
            _field(
                "Code",
                rx.input(value=S.code, on_change=S.set_code, max_length=40, size="3"),
                "Letters, digits and dashes; buyers type it at checkout.",
            ),
            _field(
                "Discount type",
                rx.select.root(
                    rx.select.trigger(aria_label="Discount type"),
                    rx.select.content(
                        rx.select.item("Percent off", value=PERCENT),
                        rx.select.item("Amount off", value=AMOUNT),
                    ),
                    value=S.kind,
                    on_change=S.set_kind,
                    size="3",
                ),
            ),
            _field(
                "Discount",
                rx.input(value=S.amount, on_change=S.set_amount, input_mode="decimal", size="3"),
                rx.cond(S.kind == PERCENT, "Percent, 1 to 100.", "Amount, like 5.00."),
            ),
            gap="3",
            width="100%",
            direction=rx.breakpoints(initial="column", sm="row"),
        ),
        rx.flex(
            # mypy reads reflex's rx.event as returning its namespace, not the handler
            _field("Applies to", _product_select(S.scope, S.set_scope, "Applies to", True)),  # type: ignore[arg-type]
            _field(
                "Max redemptions",
                rx.input(
                    value=S.max_redemptions, on_change=S.set_max_redemptions, input_mode="numeric", size="3"
                ),
                "Empty: no limit.",
            ),
            _field(
                "Expires",
                rx.input(type="datetime-local", value=S.expires, on_change=S.set_expires, size="3"),
                "Your local time. Empty: never.",
            ),
            gap="3",
            width="100%",
            direction=rx.breakpoints(initial="column", sm="row"),
        ),
        rx.vstack(
            rx.checkbox("Once per buyer", checked=S.once_per_buyer, on_change=S.set_once_per_buyer),
            rx.text(
                "Buyers then enter the code on the product page (not on the payment page), "
                "so we can check who used it.",
                size="1",
                color=rx.color("gray", 10),
            ),
            spacing="1",
        ),
        _messages(S.error, S.notice),
        rx.button("Create code", size="3", on_click=S.create_code, loading=S.busy),
        spacing="3",
        width="100%",
    )


def _codes_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                *[
                    rx.table.column_header_cell(h)
                    for h in (
                        "Code",
                        "Discount",
                        "Applies to",
                        "Uses",
                        "Expires",
                        "Once per buyer",
                        "Status",
                        "",
                    )
                ]
            )
        ),
        rx.table.body(
            rx.foreach(
                S.codes,
                lambda c: rx.table.row(
                    rx.table.row_header_cell(rx.text.strong(c["code"])),
                    rx.table.cell(c["discount"]),
                    rx.table.cell(c["scope"]),
                    rx.table.cell(c["uses"]),
                    rx.table.cell(c["expires"]),
                    rx.table.cell(c["once"]),
                    rx.table.cell(rx.badge(c["status"])),
                    rx.table.cell(
                        rx.cond(
                            c["active"],
                            rx.button(
                                "Deactivate",
                                size="1",
                                variant="soft",
                                color_scheme="red",
                                aria_label="Deactivate " + c["code"].to(str),
                                on_click=S.deactivate(c["id"].to(int)),
                            ),
                        )
                    ),
                    data_testid="promo-row",
                ),
            )
        ),
        width="100%",
        aria_label="Promo codes",
    )


def _sale_form() -> rx.Component:
    return rx.vstack(
        rx.heading("Schedule a sale", size="4", as_="h2"),
        rx.flex(
            _field("Product", _product_select(S.sale_product, S.set_sale_product, "Product", False)),  # type: ignore[arg-type]
            _field(
                "Sale price",
                rx.input(value=S.sale_price, on_change=S.set_sale_price, input_mode="decimal", size="3"),
            ),
            gap="3",
            width="100%",
            direction=rx.breakpoints(initial="column", sm="row"),
        ),
        rx.flex(
            _field(
                "Sale starts",
                rx.input(type="datetime-local", value=S.sale_starts, on_change=S.set_sale_starts, size="3"),
                "Your local time. Empty: now.",
            ),
            _field(
                "Sale ends",
                rx.input(type="datetime-local", value=S.sale_ends, on_change=S.set_sale_ends, size="3"),
                "Your local time.",
            ),
            gap="3",
            width="100%",
            direction=rx.breakpoints(initial="column", sm="row"),
        ),
        _messages(S.sale_error, S.sale_notice),
        rx.button("Schedule sale", size="3", on_click=S.schedule_sale),
        rx.cond(
            S.sales.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("Product", "Price", "Starts", "Ends", "Status", "")
                        ]
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        S.sales,
                        lambda s: rx.table.row(
                            rx.table.row_header_cell(s["title"]),
                            rx.table.cell(s["prices"]),
                            rx.table.cell(s["starts"]),
                            rx.table.cell(s["ends"]),
                            rx.table.cell(rx.badge(s["status"])),
                            rx.table.cell(
                                rx.button(
                                    "End sale",
                                    size="1",
                                    variant="soft",
                                    aria_label="End sale on " + s["title"].to(str),
                                    on_click=S.end_sale(s["product_id"].to(int)),
                                )
                            ),
                        ),
                    )
                ),
                width="100%",
                aria_label="Sales",
            ),
        ),
        spacing="3",
        width="100%",
    )


def promotions_page() -> rx.Component:
    body = rx.vstack(
        _code_form(),
        rx.cond(
            S.codes.length() > 0,
            _codes_table(),
            rx.text("No promo codes yet.", color=rx.color("gray", 11)),
        ),
        rx.separator(size="4"),
        _sale_form(),
        spacing="5",
        width="100%",
    )
    return page(
        rx.heading("Promotions", size="7", as_="h1", padding_bottom="1em"),
        rx.cond(S.loaded, body, loading_block()),
        max_width="60em",
    )
