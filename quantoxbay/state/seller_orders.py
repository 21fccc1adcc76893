"""`/seller/orders`: the seller's orders with Refund, Reset downloads and Reissue access.

Every handler re-checks on the server that the user is a seller; the services check that
the order is theirs (admins may act on any order).
"""

from __future__ import annotations

import reflex as rx
from reflex.event import EventSpec

from quantoxbay.models import Role
from quantoxbay.services import DomainError, downloads, live, notifier, refunds
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.money import parse_price
from quantoxbay.state.guards import requires, shows_errors
from quantoxbay.state.session import run_service

PAGE_SIZE = 25


def _refuse(state: SellerOrdersState, exc: DomainError) -> EventSpec:
    """A refused caller sees no orders, and why."""
    state.orders, state.loaded = [], False
    return rx.toast.error(str(exc))


#: Sellers (and admins) only: the page's loads refuse by emptying it, its actions with a toast.
_orders_page = requires(Role.SELLER, Role.ADMIN, refuse=_refuse)
_orders_only = requires(Role.SELLER, Role.ADMIN)


class SellerOrdersState(rx.State):
    orders: rx.Field[list[refunds.SellerOrderRow]] = rx.field(default_factory=list)
    loaded: rx.Field[bool] = rx.field(False)
    page: rx.Field[int] = rx.field(0)
    has_next: rx.Field[bool] = rx.field(False)
    # The refund form of the selected order.
    refund_order_id: rx.Field[int] = rx.field(0)
    refund_title: rx.Field[str] = rx.field("")
    refund_amount: rx.Field[str] = rx.field("")
    refund_reason: rx.Field[str] = rx.field("requested_by_customer")
    busy: rx.Field[bool] = rx.field(False)

    async def _load(self, user: UserPublic) -> None:
        rows = await run_service(
            refunds.list_seller_orders, seller_id=user.id, limit=PAGE_SIZE + 1, offset=self.page * PAGE_SIZE
        )
        self.has_next = len(rows) > PAGE_SIZE
        self.orders = rows[:PAGE_SIZE]
        self.loaded = True

    @rx.event
    @_orders_page
    async def load(self, user: UserPublic):
        self.refund_order_id, self.busy = 0, False
        await self._load(user)
        await run_service(
            live.subscribe,
            topic=notifier.seller_topic(user.id),
            client_token=self.router.session.client_token,
            state_name=self.get_full_name(),
        )
        return None

    @_orders_page
    async def on_announcement(self, kind: str, data: dict, user: UserPublic):
        """Called by the live pusher (inside app.modify_state) when one of this seller's orders
        changes. Reflex makes every public method an event handler the browser could call too:
        it is guarded like the others (a seller demoted to buyer keeps a valid session)."""
        await self._load(user)

    @rx.event
    @_orders_page
    async def next_page(self, user: UserPublic):
        if self.has_next:
            self.page += 1
            await self._load(user)

    @rx.event
    @_orders_page
    async def previous_page(self, user: UserPublic):
        if self.page > 0:
            self.page -= 1
            await self._load(user)

    @rx.event
    def start_refund(self, order_id: int) -> None:
        row = next((o for o in self.orders if o["order_id"] == order_id), None)
        if row is None:
            return
        self.refund_order_id, self.refund_title = order_id, row["title"]
        cents = row["refundable_cents"]
        self.refund_amount = f"{cents // 100}.{cents % 100:02d}"
        self.refund_reason = "requested_by_customer"

    @rx.event
    def cancel_refund(self) -> None:
        self.refund_order_id = 0

    @rx.event
    def set_refund_amount(self, value: str) -> None:
        self.refund_amount = value

    @rx.event
    def set_refund_reason(self, value: str) -> None:
        self.refund_reason = value

    @rx.event
    @_orders_only
    async def confirm_refund(self, user: UserPublic):
        if self.busy or not self.refund_order_id:
            return
        self.busy = True
        yield
        try:
            amount = parse_price(self.refund_amount)
            refund, _announced = await run_service(
                refunds.refund_order,
                actor=user,
                order_id=self.refund_order_id,
                amount_cents=amount,
                reason=self.refund_reason,
            )
        except DomainError as exc:
            self.busy = False
            yield rx.toast.error(str(exc))
            return
        self.refund_order_id, self.busy = 0, False
        notice = await run_service(refunds.refund_notice, refund_id=refund.id)
        await self._load(user)
        yield rx.toast.success(notice)

    @rx.event
    @_orders_only
    @shows_errors()
    async def reset_limit(self, order_id: int, user: UserPublic):
        await run_service(downloads.reset_download_limit, actor=user, order_id=int(order_id))
        return rx.toast.success(f"Order #{order_id}: download count reset.")

    @rx.event
    @_orders_only
    async def reissue(self, order_id: int, user: UserPublic):
        try:
            await run_service(downloads.reissue_access, actor=user, order_id=int(order_id))
        except DomainError as exc:
            return rx.toast.error(str(exc))
        await self._load(user)
        return rx.toast.success(f"Order #{order_id}: access reissued.")
