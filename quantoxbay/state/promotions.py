"""`/seller/promotions`: the seller's promo codes and sales. Thin: the service decides everything.

Every handler re-checks on the server that the user is a seller; the service checks that the
code or product is theirs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypedDict

import reflex as rx
from reflex.event import EventSpec

from quantoxbay.models import Role
from quantoxbay.services import DomainError, PaymentError, catalog, promotions
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.money import parse_price
from quantoxbay.state.guards import requires
from quantoxbay.state.session import run_service

ALL_PRODUCTS = "all"  # a Select cannot hold "", so this stands for "all my products"
PERCENT, AMOUNT = "percent", "amount"
STRIPE_DOWN = "Payments are unavailable right now. Please try again in a minute."


def _refuse_page(state: PromotionsState, exc: DomainError) -> EventSpec:
    state.error = state.notice = state.sale_error = state.sale_notice = ""
    state.loaded = False
    return rx.toast.error(str(exc))


def _refuse_quietly(state: PromotionsState, _exc: DomainError) -> None:
    """The browser's own callback after ``load``, which already answered with the error toast."""
    state.loaded = False


def _refuse_code(state: PromotionsState, exc: DomainError) -> None:
    state.error, state.notice, state.busy = str(exc), "", False


def _refuse_sale(state: PromotionsState, exc: DomainError) -> None:
    state.sale_error, state.sale_notice = str(exc), ""


def _when(value: datetime | None, offset_minutes: int) -> str:
    """A UTC time in the viewer's zone (offset from the browser), as "2026-12-01 18:00"."""
    if value is None:
        return ""
    return (value - timedelta(minutes=offset_minutes)).strftime("%Y-%m-%d %H:%M")


# The rows the page shows, made here from the promotions service's results.


class CodeRow(TypedDict):
    id: int
    code: str
    discount: str  # "20% off", "$5.00 off"
    scope: str
    uses: str  # "3 / 10"
    expires: str  # in the viewer's zone, or "Never"
    once: str  # "Yes" | "No"
    status: str
    active: bool


class SaleRow(TypedDict):
    product_id: int
    title: str
    prices: str  # "$5.00 (was $10.00)"
    starts: str  # in the viewer's zone
    ends: str
    status: str


class ProductChoice(TypedDict):
    """A product in the page's selects (a Select's values are strings)."""

    id: str
    title: str  # with its price


def _whole_number(text: str, message: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise DomainError(message)
    return int(text)


class PromotionsState(rx.State):
    """Promo codes (create, deactivate) and sales (schedule, end) of the logged-in seller."""

    loaded: rx.Field[bool] = rx.field(False)
    codes: rx.Field[list[CodeRow]] = rx.field(default_factory=list)
    sales: rx.Field[list[SaleRow]] = rx.field(default_factory=list)
    products: rx.Field[list[ProductChoice]] = rx.field(default_factory=list)
    # the browser's Date.getTimezoneOffset()
    tz_offset: rx.Field[int] = rx.field(0)

    # the new-code form
    code: rx.Field[str] = rx.field("")
    kind: rx.Field[str] = rx.field(PERCENT)
    amount: rx.Field[str] = rx.field("")
    scope: rx.Field[str] = rx.field(ALL_PRODUCTS)
    max_redemptions: rx.Field[str] = rx.field("")
    expires: rx.Field[str] = rx.field("")
    once_per_buyer: rx.Field[bool] = rx.field(False)
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")
    busy: rx.Field[bool] = rx.field(False)

    # the sale form
    sale_product: rx.Field[str] = rx.field("")
    sale_price: rx.Field[str] = rx.field("")
    sale_starts: rx.Field[str] = rx.field("")
    sale_ends: rx.Field[str] = rx.field("")
    sale_error: rx.Field[str] = rx.field("")
    sale_notice: rx.Field[str] = rx.field("")

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_page)
    async def load(self, user: UserPublic):
        self.error = self.notice = self.sale_error = self.sale_notice = ""
        await self._refresh(user)
        return rx.call_script("new Date().getTimezoneOffset()", callback=PromotionsState.set_tz_offset)

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_quietly)
    async def set_tz_offset(self, value: int | str, user: UserPublic) -> None:
        try:
            self.tz_offset = int(value)
        except (TypeError, ValueError):
            self.tz_offset = 0
        await self._refresh(user)  # times now shown in the viewer's zone

    async def _refresh(self, user: UserPublic) -> None:
        codes = await run_service(promotions.list_promotions, seller_id=user.id)
        sales = await run_service(promotions.list_sales, seller_id=user.id)
        products = await run_service(catalog.list_seller_products, seller_id=user.id)
        self.codes = [
            CodeRow(
                id=c.id,
                code=c.code,
                discount=c.discount_label,
                scope=c.scope_label,
                uses=f"{c.redemptions} / {c.max_redemptions}" if c.max_redemptions else str(c.redemptions),
                expires=_when(c.expires_at, self.tz_offset) or "Never",
                once="Yes" if c.once_per_buyer else "No",
                status=c.status,
                active=c.active,
            )
            for c in codes
        ]
        self.sales = [
            SaleRow(
                product_id=s.product_id,
                title=s.title,
                prices=f"{s.sale_price_label} (was {s.price_label})",
                starts=_when(s.starts_at, self.tz_offset),
                ends=_when(s.ends_at, self.tz_offset),
                status=s.status,
            )
            for s in sales
        ]
        self.products = [
            ProductChoice(id=str(p["id"]), title=f"{p['title']} ({p['price']})") for p in products
        ]
        if self.products and self.sale_product not in {p["id"] for p in self.products}:
            self.sale_product = self.products[0]["id"]
        self.loaded = True

    # -- setters (bounded; the server validates again on submit) --

    @rx.event
    def set_code(self, value: str) -> None:
        self.code = value[:40]

    @rx.event
    def set_kind(self, value: str) -> None:
        self.kind = value if value in (PERCENT, AMOUNT) else PERCENT

    @rx.event
    def set_amount(self, value: str) -> None:
        self.amount = value[:12]

    @rx.event
    def set_scope(self, value: str) -> None:
        self.scope = value[:20]

    @rx.event
    def set_max_redemptions(self, value: str) -> None:
        self.max_redemptions = value[:9]

    @rx.event
    def set_expires(self, value: str) -> None:
        self.expires = value[:30]

    @rx.event
    def set_once_per_buyer(self, value: bool) -> None:
        self.once_per_buyer = bool(value)

    @rx.event
    def set_sale_product(self, value: str) -> None:
        self.sale_product = value[:20]

    @rx.event
    def set_sale_price(self, value: str) -> None:
        self.sale_price = value[:12]

    @rx.event
    def set_sale_starts(self, value: str) -> None:
        self.sale_starts = value[:30]

    @rx.event
    def set_sale_ends(self, value: str) -> None:
        self.sale_ends = value[:30]

    # -- codes --

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_code)
    async def create_code(self, user: UserPublic):
        self.error = self.notice = ""
        self.busy = True
        yield
        try:
            percent = amount = None
            if self.kind == PERCENT:
                percent = _whole_number(self.amount, "Enter a percentage from 1 to 100.")
                if percent is None:
                    raise DomainError("Enter a percentage from 1 to 100.")
            else:
                if not self.amount.strip():
                    raise DomainError("Enter the amount off, like 5.00.")
                amount = parse_price(self.amount)
            product_id = (
                None if self.scope == ALL_PRODUCTS else _whole_number(self.scope, "Choose a product.")
            )
            made = await run_service(
                promotions.create_promotion,
                seller_id=user.id,
                code=self.code,
                percent_off=percent,
                amount_off_cents=amount,
                product_id=product_id,
                max_redemptions=_whole_number(
                    self.max_redemptions, "Max redemptions must be a whole number (or empty for no limit)."
                ),
                expires_at=promotions.parse_local_datetime(self.expires, self.tz_offset, field="Expires"),
                once_per_buyer=self.once_per_buyer,
            )
        except PaymentError:  # Stripe unreachable (what it refuses, the service explains)
            self.error, self.busy = STRIPE_DOWN, False
            return
        except DomainError as exc:
            self.error, self.busy = str(exc), False
            return
        self.notice = f"Code {made.code} created: {made.discount_label}, {made.scope_label.lower()}."
        self.code = self.amount = self.max_redemptions = self.expires = ""
        self.once_per_buyer = False
        self.busy = False
        await self._refresh(user)

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_code)
    async def deactivate(self, promotion_id: int, user: UserPublic):
        self.error = self.notice = ""
        try:
            done = await run_service(
                promotions.deactivate_promotion,
                seller_id=user.id,
                promotion_id=int(promotion_id),
            )
        except PaymentError:
            self.error = STRIPE_DOWN
            return
        except (DomainError, ValueError, TypeError) as exc:
            self.error = str(exc) or "That code does not exist."
            return
        self.notice = f"Code {done.code} deactivated."
        await self._refresh(user)

    # -- sales --

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_sale)
    async def schedule_sale(self, user: UserPublic):
        self.sale_error = self.sale_notice = ""
        try:
            product_id = _whole_number(self.sale_product, "Choose a product.")
            if product_id is None:
                raise DomainError("Choose a product.")
            if not self.sale_price.strip():
                raise DomainError("Enter the sale price, like 9.99.")
            sale = await run_service(
                promotions.schedule_sale,
                seller_id=user.id,
                product_id=product_id,
                sale_price_cents=parse_price(self.sale_price),
                starts_at=promotions.parse_local_datetime(
                    self.sale_starts, self.tz_offset, field="Sale starts"
                ),
                ends_at=promotions.parse_local_datetime(self.sale_ends, self.tz_offset, field="Sale ends"),
            )
        except DomainError as exc:
            self.sale_error = str(exc)
            return
        self.sale_notice = f"Sale on {sale.title}: {sale.sale_price_label} ({sale.status.lower()})."
        self.sale_price = self.sale_starts = self.sale_ends = ""
        await self._refresh(user)

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_sale)
    async def end_sale(self, product_id: int, user: UserPublic):
        self.sale_error = self.sale_notice = ""
        try:
            await run_service(promotions.end_sale, seller_id=user.id, product_id=int(product_id))
        except (DomainError, ValueError, TypeError) as exc:
            self.sale_error = str(exc) or "That product does not exist."
            return
        self.sale_notice = "Sale ended."
        await self._refresh(user)
