"""`/admin`: users, products, orders, webhook events and platform totals (admins only).

Every event handler carries the admin guard (``state.guards``: the user comes from the session
cookie, on the server, on every call); the services check the role again.
tests/integration/test_state_authorization.py calls every handler as a buyer, a seller and
nobody, and checks each is refused before any service runs.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from quantoxbay.models import Role
from quantoxbay.services import DomainError, admin
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.admin import FeeTotalRow, SellerPayoutRow
from quantoxbay.services.money import parse_price
from quantoxbay.state.guards import admin_only, requires, shows_errors
from quantoxbay.state.session import run_service

ROLES = [r.value for r in Role]
REFUND_REASONS = ["requested_by_customer", "duplicate", "fraudulent"]


#: The guard of the page's loads and searches: a refused caller also sees the page emptied.
_admin_page = requires(Role.ADMIN, refuse=lambda state, exc: state._deny(exc))


def _as_id(value: Any) -> int | None:
    text = str(value).strip().lstrip("#")
    return int(text) if text.isdigit() else None


class AdminState(rx.State):
    loaded: rx.Field[bool] = rx.field(False)
    error: rx.Field[str] = rx.field("")

    revenue: rx.Field[list[admin.RevenueRow]] = rx.field(default_factory=list)
    total_orders: rx.Field[int] = rx.field(0)
    active_sellers: rx.Field[int] = rx.field(0)
    total_users: rx.Field[int] = rx.field(0)

    user_query: rx.Field[str] = rx.field("")
    users: rx.Field[list[admin.UserRow]] = rx.field(default_factory=list)
    product_query: rx.Field[str] = rx.field("")
    products: rx.Field[list[admin.ProductRow]] = rx.field(default_factory=list)
    order_query: rx.Field[str] = rx.field("")
    orders: rx.Field[list[admin.OrderRow]] = rx.field(default_factory=list)
    order: rx.Field[admin.OrderHead | None] = rx.field(None)  # the order opened, if any
    order_items: rx.Field[list[admin.OrderItemRow]] = rx.field(default_factory=list)
    order_events: rx.Field[list[admin.EventRow]] = rx.field(default_factory=list)
    order_refunds: rx.Field[list[admin.RefundRow]] = rx.field(default_factory=list)
    event_query: rx.Field[str] = rx.field("")
    events: rx.Field[list[admin.EventRow]] = rx.field(default_factory=list)
    actions: rx.Field[list[admin.ActionRow]] = rx.field(default_factory=list)
    # "Platform fees": the fee in force, fees per period and currency, sellers' payout status.
    fee_schedule: rx.Field[str] = rx.field("")
    fee_totals: rx.Field[list[FeeTotalRow]] = rx.field(default_factory=list)
    seller_payouts: rx.Field[list[SellerPayoutRow]] = rx.field(default_factory=list)

    def _deny(self, exc: DomainError):
        self.loaded, self.error = False, str(exc)
        self.users, self.products, self.orders, self.events, self.revenue = [], [], [], [], []
        self.order, self.order_items, self.order_events, self.order_refunds = None, [], [], []
        self.fee_schedule, self.fee_totals, self.seller_payouts = "", [], []
        return rx.toast.error(str(exc))

    async def _totals(self, user: UserPublic) -> None:
        t = await run_service(admin.platform_totals, actor=user)
        self.revenue = t["revenue"]
        self.total_orders, self.active_sellers, self.total_users = (
            t["orders"],
            t["active_sellers"],
            t["users"],
        )
        self.actions = await run_service(admin.recent_actions, actor=user)
        fees = await run_service(admin.platform_fees, actor=user)
        self.fee_schedule, self.fee_totals, self.seller_payouts = (
            fees["schedule"],
            fees["totals"],
            fees["sellers"],
        )

    async def _users(self, user: UserPublic) -> None:
        self.users = await run_service(admin.search_users, actor=user, query=self.user_query)

    async def _products(self, user: UserPublic) -> None:
        self.products = await run_service(admin.search_products, actor=user, query=self.product_query)

    async def _orders(self, user: UserPublic) -> None:
        self.orders = await run_service(admin.search_orders, actor=user, query=self.order_query)

    async def _events(self, user: UserPublic) -> None:
        self.events = await run_service(admin.list_webhook_events, actor=user, query=self.event_query)

    async def _order(self, user: UserPublic, order_id: int) -> None:
        detail = await run_service(admin.order_detail, actor=user, order_id=order_id)
        self.order, self.order_items = detail["order"], detail["items"]
        self.order_events, self.order_refunds = detail["events"], detail["refunds"]

    @rx.event
    @_admin_page
    async def load(self, user: UserPublic):
        await self._totals(user)
        await self._users(user)
        await self._products(user)
        await self._orders(user)
        await self._events(user)
        self.loaded, self.error = True, ""
        return None

    # --- users ---

    @rx.event
    @_admin_page
    async def search_users(self, form_data: dict, user: UserPublic):
        self.user_query = str(form_data.get("q", ""))[:200]
        await self._users(user)
        return None

    @rx.event
    @admin_only
    async def change_role(self, user_id: int, role: str, user: UserPublic):
        try:
            target = _as_id(user_id)
            if target is None:
                raise DomainError("This user does not exist.")
            row = await run_service(admin.set_role, actor=user, user_id=target, role=str(role))
        except DomainError as exc:
            return rx.toast.error(str(exc))
        await self._users(user)
        return rx.toast.success(f"{row['email']} is now {row['role']}.")

    @rx.event
    @admin_only
    async def set_disabled(self, user_id: int, disabled: bool, user: UserPublic):
        try:
            target = _as_id(user_id)
            if target is None:
                raise DomainError("This user does not exist.")
            row = await run_service(admin.set_disabled, actor=user, user_id=target, disabled=bool(disabled))
        except DomainError as exc:
            return rx.toast.error(str(exc))
        await self._users(user)
        await self._totals(user)
        state = "disabled and logged out" if row["disabled"] else "enabled"
        return rx.toast.success(f"{row['email']} is {state}.")

    # --- products ---

    @rx.event
    @_admin_page
    async def search_products(self, form_data: dict, user: UserPublic):
        self.product_query = str(form_data.get("q", ""))[:200]
        await self._products(user)
        return None

    @rx.event
    @admin_only
    async def unpublish(self, form_data: dict, user: UserPublic):
        try:
            product_id = _as_id(form_data.get("product_id", ""))
            if product_id is None:
                raise DomainError("This product does not exist.")
            await run_service(
                admin.unpublish_product,
                actor=user,
                product_id=product_id,
                reason=str(form_data.get("reason", "")),
            )
        except DomainError as exc:
            return rx.toast.error(str(exc))
        await self._products(user)
        await self._totals(user)
        return rx.toast.success(
            "Taken down. It stays off the store until an admin restores it; the seller sees your reason "
            "and gets an e-mail."
        )

    @rx.event
    @admin_only
    @shows_errors()
    async def restore(self, product_id: int, user: UserPublic):
        target = _as_id(product_id)
        if target is None:
            raise DomainError("This product does not exist.")
        await run_service(admin.restore_product, actor=user, product_id=target)
        await self._products(user)
        await self._totals(user)
        return rx.toast.success("Restored. The seller can publish it again and gets an e-mail.")

    # --- orders ---

    @rx.event
    @_admin_page
    async def search_orders(self, form_data: dict, user: UserPublic):
        self.order_query = str(form_data.get("q", ""))[:255]
        await self._orders(user)
        self.order, self.order_items, self.order_events, self.order_refunds = None, [], [], []
        if len(self.orders) == 1:
            await self._order(user, self.orders[0]["id"])
        return None

    @rx.event
    @admin_only
    @shows_errors()
    async def open_order(self, order_id: int, user: UserPublic):
        target = _as_id(order_id)
        if target is None:
            raise DomainError("This order does not exist.")
        await self._order(user, target)
        return None

    @rx.event
    @_admin_page
    async def close_order(self):
        self.order, self.order_items, self.order_events, self.order_refunds = None, [], [], []
        return None

    @rx.event
    @admin_only
    async def refund(self, form_data: dict, user: UserPublic):
        """Refund the open order: all that is left, or the amount typed (major units, "5.00")."""
        try:
            order_id = _as_id(form_data.get("order_id", ""))
            if order_id is None:
                raise DomainError("This order does not exist.")
            raw_amount = str(form_data.get("amount", "")).strip()
            amount = parse_price(raw_amount) if raw_amount else None
            reason = str(form_data.get("reason", "") or "requested_by_customer")
            notice, _announced = await run_service(  # its announcements go out after the commit
                admin.refund_order,
                actor=user,
                order_id=order_id,
                amount_cents=amount,
                reason=reason,
            )
        except DomainError as exc:  # refused, or Stripe unreachable: nothing was refunded
            return rx.toast.error(str(exc))
        await self._order(user, order_id)
        await self._orders(user)
        await self._totals(user)
        return rx.toast.success(notice)

    # --- webhook events ---

    @rx.event
    @_admin_page
    async def search_events(self, form_data: dict, user: UserPublic):
        self.event_query = str(form_data.get("q", ""))[:200]
        await self._events(user)
        return None

    @rx.event
    @admin_only
    async def resend_event(self, event_row_id: int, user: UserPublic):
        try:
            target = _as_id(event_row_id)
            if target is None:
                raise DomainError("This event does not exist.")
        except DomainError as exc:
            return rx.toast.error(str(exc))
        try:
            outcome, _announced = await run_service(
                admin.resend_webhook_event, actor=user, event_row_id=target
            )
        except DomainError as exc:
            return rx.toast.error(str(exc))
        except Exception as exc:  # the handler failed: keep the traceback on the row, like the webhook route
            await run_service(admin.record_resend_failure, actor=user, event_row_id=target, error=exc)
            await self._events(user)
            return rx.toast.error(f"Processing failed again: {exc}")
        await self._events(user)
        await self._orders(user)
        await self._totals(user)
        return rx.toast.success(f"Event sent through the handler again: {outcome}.")
