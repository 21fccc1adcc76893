"""`/admin`: platform totals and the sections "Platform fees", "Users", "Products", "Orders",
"Webhook events"."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from quantoxbay.components.layout import data_table, loading_block, page
from quantoxbay.constants import FULL_REFUND_NOTE
from quantoxbay.state.admin import REFUND_REASONS, ROLES, AdminState

A = AdminState
MUTED = rx.color("gray", 10)


def _search(label: str, handler: rx.EventHandler, placeholder: str) -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(name="q", placeholder=placeholder, aria_label=label, width="100%", max_width="28em"),
            rx.button("Search", type="submit", variant="soft"),
            spacing="2",
            width="100%",
        ),
        on_submit=handler,
        reset_on_submit=False,
        width="100%",
    )


def _section(title: str, *children: rx.Component) -> rx.Component:
    return rx.card(
        rx.el.section(
            rx.vstack(rx.heading(title, size="5", as_="h2"), *children, spacing="3", width="100%"),
            aria_label=title,
        ),
        width="100%",
    )


def _totals() -> rx.Component:
    def stat(label: str, value: rx.Var | str, test_id: str) -> rx.Component:
        return rx.card(
            rx.text(label, size="2", color=MUTED),
            rx.text(value, size="6", weight="bold", data_testid=test_id),
        )

    return rx.vstack(
        rx.grid(
            stat("Paid orders", A.total_orders, "admin-orders"),
            stat("Active sellers", A.active_sellers, "admin-active-sellers"),
            stat("Users", A.total_users, "admin-users"),
            columns=rx.breakpoints(initial="1", sm="3"),
            spacing="3",
            width="100%",
        ),
        rx.foreach(
            A.revenue,
            lambda r: rx.text(
                rx.text.strong("Revenue ", r["currency"], ": "),
                "gross ",
                r["gross"],
                " · refunds ",
                r["refunds"],
                " · net ",
                r["net"],
                " (",
                r["orders"],
                " orders)",
                size="2",
            ),
        ),
        spacing="3",
        width="100%",
    )


def _users() -> rx.Component:
    def row(u: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.cell(u["id"]),
            rx.table.row_header_cell(u["email"]),
            rx.table.cell(
                rx.select.root(
                    rx.select.trigger(aria_label="Role of " + u["email"].to(str)),
                    rx.select.content(*[rx.select.item(r, value=r) for r in ROLES]),
                    value=u["role"].to(str),
                    on_change=lambda value: A.change_role(u["id"], value),
                    size="1",
                )
            ),
            rx.table.cell(
                rx.cond(u["disabled"], rx.badge("disabled", color_scheme="red"), rx.badge("active"))
            ),
            rx.table.cell(
                rx.cond(
                    u["disabled"],
                    rx.button("Enable", size="1", variant="soft", on_click=A.set_disabled(u["id"], False)),
                    rx.button(
                        "Disable",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=A.set_disabled(u["id"], True),
                    ),
                )
            ),
            rx.table.cell(u["created"], color=MUTED),
        )

    return _section(
        "Users",
        _search("Search users", A.search_users, "E-mail, name or id"),
        data_table(["Id", "Email", "Role", "Status", "", "Joined"], A.users, row),
    )


def _products() -> rx.Component:
    def row(p: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.cell(p["id"]),
            rx.table.row_header_cell(p["title"]),
            rx.table.cell(p["seller"]),
            rx.table.cell(rx.badge(p["status"]), rx.text(p["reason"], size="1", color=MUTED)),
            rx.table.cell(p["price"]),
            rx.table.cell(
                rx.cond(
                    p["status"] == "removed",
                    rx.button(
                        "Restore",
                        size="1",
                        variant="soft",
                        aria_label="Restore " + p["title"].to(str),
                        on_click=A.restore(p["id"]),
                    ),
                    rx.form(
                        rx.hstack(
                            rx.el.input(type="hidden", name="product_id", value=p["id"].to(str)),
                            rx.input(
                                name="reason",
                                placeholder="Reason the seller sees",
                                aria_label="Reason for unpublishing " + p["title"].to(str),
                                size="1",
                            ),
                            rx.button(
                                "Unpublish",
                                type="submit",
                                size="1",
                                color_scheme="red",
                                variant="soft",
                                aria_label="Unpublish " + p["title"].to(str),
                            ),
                            spacing="2",
                        ),
                        on_submit=A.unpublish,
                    ),
                )
            ),
        )

    return _section(
        "Products",
        _search("Search products", A.search_products, "Title, seller e-mail or id"),
        data_table(["Id", "Title", "Seller", "Status", "Price", ""], A.products, row),
    )


def _order_detail() -> rx.Component:
    # An ObjectVar for mypy (Reflex's stubs do not infer TypedDict fields); at run time it keeps the
    # TypedDict, so a key the service does not send fails the build.
    o: ObjectVar = A.order.to(ObjectVar)
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Order #", o["id"].to(str), size="4", as_="h3"),
                rx.badge(o["status"]),
                rx.spacer(),
                rx.button("Close", size="1", variant="ghost", on_click=A.close_order),
                width="100%",
                align="center",
            ),
            rx.text("Buyer ", o["buyer"], " · paid ", o["paid_at"], size="2"),
            rx.text(
                "Subtotal ",
                o["subtotal"],
                " · discount ",
                o["discount"],
                " ",
                o["promo_code"],
                " · total ",
                o["total"],
                " · refunded ",
                o["refunded"],
                size="2",
            ),
            rx.text("Session ", o["session"], " · payment ", o["payment_intent"], size="1", color=MUTED),
            data_table(
                ["Product", "Qty", "Price", "Discount", "Total"],
                A.order_items,
                lambda i: rx.table.row(
                    rx.table.row_header_cell(i["title"]),
                    rx.table.cell(i["quantity"]),
                    rx.table.cell(i["price"]),
                    rx.table.cell(i["discount"]),
                    rx.table.cell(i["total"]),
                ),
            ),
            rx.heading("Refunds", size="2", as_="h4"),
            rx.foreach(
                A.order_refunds,
                lambda r: rx.text(
                    r["created"], " · ", r["amount"], " · ", r["status"], " · ", r["reason"], size="2"
                ),
            ),
            rx.form(
                rx.hstack(
                    rx.el.input(type="hidden", name="order_id", value=o["id"].to(str)),
                    rx.input(
                        name="amount", placeholder="All that is left", aria_label="Refund amount", size="1"
                    ),
                    rx.el.select(
                        *[rx.el.option(r.replace("_", " "), value=r) for r in REFUND_REASONS],
                        name="reason",
                        aria_label="Refund reason",
                    ),
                    rx.button("Refund", type="submit", size="1", color_scheme="red"),
                    spacing="2",
                    align="center",
                ),
                on_submit=A.refund,
            ),
            rx.text(FULL_REFUND_NOTE, size="1"),
            rx.heading("Events", size="2", as_="h4"),
            data_table(
                ["Type", "Received", "Outcome"],
                A.order_events,
                lambda e: rx.table.row(
                    rx.table.row_header_cell(e["type"]),
                    rx.table.cell(e["received"]),
                    rx.table.cell(rx.badge(e["outcome"])),
                ),
            ),
            spacing="2",
            width="100%",
        ),
        variant="surface",
        width="100%",
    )


def _orders() -> rx.Component:
    def row(o: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(
                rx.link("#", o["id"].to(str), href="#", on_click=A.open_order(o["id"]).prevent_default)
            ),
            rx.table.cell(o["buyer"]),
            rx.table.cell(rx.badge(o["status"])),
            rx.table.cell(o["total"]),
            rx.table.cell(o["refunded"]),
            rx.table.cell(o["created"], color=MUTED),
        )

    return _section(
        "Orders",
        _search("Search orders", A.search_orders, "Buyer e-mail, order id or Stripe session id"),
        rx.cond(A.order, _order_detail()),
        data_table(["Order", "Buyer", "Status", "Total", "Refunded", "Created"], A.orders, row),
    )


def _events() -> rx.Component:
    def row(e: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(e["type"]),
            rx.table.cell(rx.text(e["event_id"], size="1")),
            rx.table.cell(e["received"]),
            rx.table.cell(
                rx.badge(
                    e["outcome"],
                    color_scheme=rx.match(e["outcome"], ("failed", "red"), ("rejected", "orange"), "gray"),
                ),
                rx.text(e["reason"], size="1", color=rx.color("orange", 11)),
                rx.text(e["error"], size="1", color=rx.color("red", 11)),
            ),
            rx.table.cell(rx.button("Resend", size="1", variant="soft", on_click=A.resend_event(e["id"]))),
        )

    return _section(
        "Webhook events",
        _search("Search webhook events", A.search_events, "Event id, type or outcome (rejected)"),
        data_table(["Type", "Event", "Received", "Outcome", ""], A.events, row),
    )


def _platform_fees() -> rx.Component:
    def total(t: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(t["label"]),
            rx.table.cell(t["currency"]),
            rx.table.cell(t["fees"], data_testid="platform-fees-" + t["period"].to(str)),
            rx.table.cell(t["orders"]),
        )

    def seller(s: ObjectVar) -> rx.Component:
        return rx.table.row(
            rx.table.row_header_cell(s["email"]),
            rx.table.cell(
                rx.badge(
                    s["status"],
                    color_scheme=rx.match(
                        s["status"], ("Payouts enabled", "green"), ("Action required", "amber"), "gray"
                    ),
                )
            ),
            rx.table.cell(rx.text(s["needs"], size="1")),
            rx.table.cell(rx.text(s["account"], size="1", color=MUTED)),
            data_testid="seller-payout-row",
        )

    return _section(
        "Platform fees",
        rx.text("Fee: ", rx.text.strong(A.fee_schedule, data_testid="fee-schedule"), size="2"),
        rx.text(
            "What the platform keeps of each sale's application fee (less fees refunded), by day in UTC.",
            size="1",
            color=MUTED,
        ),
        data_table(["Period", "Currency", "Platform fees", "Orders"], A.fee_totals, total),
        rx.heading("Sellers' payouts", size="3", as_="h3"),
        data_table(["Seller", "Payouts", "What Stripe needs", "Account"], A.seller_payouts, seller),
    )


def admin_page() -> rx.Component:
    return page(
        rx.heading("Admin", size="7", padding_bottom="1em"),
        rx.cond(
            A.loaded,
            rx.vstack(
                _totals(),
                _platform_fees(),
                _users(),
                _products(),
                _orders(),
                _events(),
                spacing="4",
                width="100%",
            ),
            rx.cond(A.error != "", rx.callout(A.error, color_scheme="red"), loading_block()),
        ),
    )
