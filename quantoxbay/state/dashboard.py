"""`/seller`: the seller's live dashboard (revenue, orders, units per product, charts, CSV export).

Every event handler carries the seller guard (``state.guards``: the user is looked up from the
session cookie on the server, never taken from the browser) before it touches data, and the
seller id handed to the services is that user's id. tests/integration/test_state_authorization.py
calls every handler with a buyer, nobody and a seller to prove it.

Live: ``load`` registers the page for ``notifier.seller_topic(user id)``; when an order of
this seller is paid or refunded, the pusher (api/live.py) calls ``on_announcement`` inside
``app.modify_state``: the figures are recomputed and a toast names the sale. No polling.
"""

from __future__ import annotations

from typing import TypedDict

import reflex as rx
from reflex.event import EventSpec

from quantoxbay.models import Role
from quantoxbay.services import DomainError, analytics, live, notifier
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.money import format_amount
from quantoxbay.state.guards import requires, seller_only
from quantoxbay.state.session import run_service

BROWSER_ZONE_JS = "Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'"
PERIOD_OPTIONS = [{"value": k, "label": v} for k, v in analytics.PERIODS.items()]


def _refuse(state: DashboardState, exc: DomainError) -> EventSpec:
    """A refused caller sees the figures cleared and why."""
    state._clear(str(exc))
    return rx.toast.error(str(exc))


#: The guard of every handler but the CSV export (which only answers with the toast).
_seller_page = requires(Role.SELLER, refuse=_refuse)


def _major(cents: int) -> float:
    return round(cents / 100, 2)


# The rows the page shows, made here from analytics.SellerDashboard (money formatted).


class CurrencyTotalRow(TypedDict):
    currency: str  # upper case
    gross: str
    refunds: str
    net: str
    orders: int


class ProductRow(TypedDict):
    id: int
    title: str
    orders: int
    units: int
    gross: str
    refunds: str
    net: str


class SeriesPoint(TypedDict):
    """One bar of the revenue chart (major units: the chart's axis shows them)."""

    label: str
    net: float
    refunds: float
    units: int


class ProductBar(TypedDict):
    title: str  # shortened to fit the axis
    units: int
    net: float


class DashboardState(rx.State):
    """What the dashboard shows; plain data only."""

    period: rx.Field[str] = rx.field("30d")
    tz: rx.Field[str] = rx.field("UTC")
    loaded: rx.Field[bool] = rx.field(False)
    error: rx.Field[str] = rx.field("")

    currency: rx.Field[str] = rx.field("usd")
    gross: rx.Field[str] = rx.field("")
    refunds: rx.Field[str] = rx.field("")
    discounts: rx.Field[str] = rx.field("")
    net: rx.Field[str] = rx.field("")
    orders: rx.Field[int] = rx.field(0)
    units: rx.Field[int] = rx.field(0)
    other_currencies: rx.Field[list[CurrencyTotalRow]] = rx.field(default_factory=list)
    products: rx.Field[list[ProductRow]] = rx.field(default_factory=list)
    top_products: rx.Field[list[ProductRow]] = rx.field(default_factory=list)
    series: rx.Field[list[SeriesPoint]] = rx.field(default_factory=list)
    product_chart: rx.Field[list[ProductBar]] = rx.field(default_factory=list)
    bucket: rx.Field[str] = rx.field("day")

    # The live "toast": the last sale or refund pushed to this page.
    toast: rx.Field[str] = rx.field("")
    # "sale" | "refund"
    toast_kind: rx.Field[str] = rx.field("")
    live_updates: rx.Field[int] = rx.field(0)

    @rx.var
    def period_label(self) -> str:
        return analytics.PERIODS.get(self.period, "")

    async def _refresh(self, user: UserPublic) -> None:
        d = await run_service(analytics.seller_dashboard, seller_id=user.id, period=self.period, tz=self.tz)
        main = d.main
        self.tz = d.timezone
        self.currency = d.currency
        self.gross = format_amount(main.gross_cents, d.currency)
        self.refunds = format_amount(main.refunded_cents, d.currency)
        self.discounts = format_amount(main.discount_cents, d.currency)
        self.net = format_amount(main.net_cents, d.currency)
        self.orders, self.units = main.orders, main.units
        self.other_currencies = [
            CurrencyTotalRow(
                currency=t.currency.upper(),
                gross=format_amount(t.gross_cents, t.currency),
                refunds=format_amount(t.refunded_cents, t.currency),
                net=format_amount(t.net_cents, t.currency),
                orders=t.orders,
            )
            for t in d.totals[1:]
        ]
        products = [
            ProductRow(
                id=p.product_id,
                title=p.title,
                orders=p.orders,
                units=p.units,
                gross=format_amount(p.gross_cents, p.currency),
                refunds=format_amount(p.refunded_cents, p.currency),
                net=format_amount(p.net_cents, p.currency),
            )
            for p in d.products
        ]
        self.products, self.top_products = products, products[: analytics.TOP_PRODUCTS]
        self.series = [
            SeriesPoint(
                label=p.label, net=_major(p.net_cents), refunds=_major(p.refunded_cents), units=p.units
            )
            for p in d.series
        ]
        self.product_chart = [
            ProductBar(title=p.title[:28], units=p.units, net=_major(p.net_cents))
            for p in d.products[:10]
            if p.currency == d.currency
        ]
        self.bucket = d.bucket
        self.error = ""
        self.loaded = True

    def _clear(self, message: str) -> None:
        self.products, self.top_products, self.series, self.product_chart = [], [], [], []
        self.other_currencies = []
        self.gross = self.refunds = self.discounts = self.net = ""
        self.orders = self.units = 0
        self.loaded, self.error = False, message

    @rx.event
    @_seller_page
    async def load(self, user: UserPublic):
        """on_load: check, register for pushes, show the figures, then ask the browser for its zone."""
        self.toast = ""
        # Register first, then read: a sale made in between is not missed.
        await run_service(
            live.subscribe,
            topic=notifier.seller_topic(user.id),
            client_token=self.router.session.client_token,
            state_name=self.get_full_name(),
        )
        await self._refresh(user)
        return rx.call_script(BROWSER_ZONE_JS, callback=DashboardState.set_timezone)

    @rx.event
    @_seller_page
    async def set_timezone(self, tz: str, user: UserPublic):
        zone = analytics.zone(str(tz)[:64]).key
        if zone != self.tz or not self.loaded:
            self.tz = zone
            await self._refresh(user)
        return None

    @rx.event
    @_seller_page
    async def set_period(self, period: str | list[str], user: UserPublic):
        period = period[0] if isinstance(period, list) and period else str(period)
        if period not in analytics.PERIODS:
            return rx.toast.error(f"Choose one of: {', '.join(analytics.PERIODS.values())}.")
        self.period = period
        await self._refresh(user)
        return None

    @rx.event
    @seller_only
    async def export_csv(self, user: UserPublic):
        data = await run_service(analytics.orders_csv, seller_id=user.id, period=self.period, tz=self.tz)
        return rx.download(data=data, filename=analytics.csv_filename(self.period), mime_type="text/csv")

    @rx.event
    @_seller_page
    async def dismiss_toast(self):
        self.toast = ""
        return None

    @_seller_page
    async def on_announcement(self, kind: str, data: dict, user: UserPublic):
        """Called by the live pusher (inside app.modify_state) when one of this seller's orders changes.

        Reflex makes every public method an event handler the browser could call too: it is guarded
        like the others, and it only recomputes the seller's own figures.
        """
        await self._refresh(user)
        order_id = data.get("order_id") if isinstance(data, dict) else None
        if not isinstance(order_id, int):
            return None
        if kind == "order.paid":
            summary = await run_service(analytics.sale_summary, seller_id=user.id, order_id=order_id)
            if not summary:
                return None
            self.toast, self.toast_kind = f"New sale: {summary}", "sale"
        elif kind in ("order.refunded", "order.partially_refunded"):
            # What was refunded, not the order's total.
            summary = await run_service(analytics.refund_summary, seller_id=user.id, order_id=order_id)
            if not summary:
                return None
            self.toast, self.toast_kind = f"Refund: {summary}", "refund"
        self.live_updates += 1
        return None
