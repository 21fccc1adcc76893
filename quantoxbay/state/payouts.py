"""`/seller/payouts`: the seller's Stripe account, balances, payouts and what each sale left them.

Every handler carries the seller guard (the user comes from the session cookie, on the server, on
every call) and hands the services that user's id only. Onboarding happens on Stripe's hosted
form: "Set up payouts" makes a single-use link (``connect.start_onboarding``) and the browser goes
there; Stripe sends the seller back here with ``?onboarding=return`` (read the account again: the
flags say whether it is done) or ``?onboarding=refresh`` (the link expired or was used: make a new
one and go back). Live: ``load`` registers for the seller's topic, so a sale, a refund, an account
update or a payout re-reads the page.
"""

from __future__ import annotations

import json

import reflex as rx
from reflex.event import EventSpec

from quantoxbay.models import Role
from quantoxbay.services import DomainError, PaymentError, connect, live, notifier, payouts
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.payouts import BalanceRow, PayoutOrderRow, PayoutRow, StatusView
from quantoxbay.settings import get_settings
from quantoxbay.state.guards import requires, shows_errors
from quantoxbay.state.session import run_service

#: What ``?onboarding=`` Stripe's return_url and refresh_url carry (services.connect.start_onboarding).
RETURNED, LINK_EXPIRED = "return", "refresh"


def _go(url: str) -> EventSpec:
    """Full navigation: Stripe's hosted pages are not Reflex pages."""
    return rx.call_script(f"window.location.assign({json.dumps(url)})")


def _no_status() -> StatusView:
    return payouts.status_view(connect.NO_ACCOUNT)


def _refuse(state: PayoutsState, exc: DomainError) -> EventSpec:
    """A refused caller sees nothing of the account, and why."""
    state._clear(str(exc))
    return rx.toast.error(str(exc))


#: Sellers only (admins pass every role check); a refused caller also sees the page emptied.
_payouts_page = requires(Role.SELLER, refuse=_refuse)


class PayoutsState(rx.State):
    loaded: rx.Field[bool] = rx.field(False)
    error: rx.Field[str] = rx.field("")
    busy: rx.Field[bool] = rx.field(False)

    status: rx.Field[StatusView] = rx.field(default_factory=_no_status)
    balances: rx.Field[list[BalanceRow]] = rx.field(default_factory=list)
    payouts: rx.Field[list[PayoutRow]] = rx.field(default_factory=list)
    orders: rx.Field[list[PayoutOrderRow]] = rx.field(default_factory=list)
    balances_note: rx.Field[str] = rx.field("")

    @rx.var
    def status_label(self) -> str:
        return self.status["label"]

    @rx.var
    def needs(self) -> list[str]:
        return self.status["needs"]

    @rx.var
    def has_account(self) -> bool:
        return self.status["has_account"]

    @rx.var
    def can_open_dashboard(self) -> bool:
        return self.status["can_open_dashboard"]

    @rx.var
    def publish_note(self) -> str:
        """Shown while the account cannot take charges: checkout and publish refuse priced sales."""
        return payouts.PUBLISH_NOTE if self.loaded and not self.status["charges_enabled"] else ""

    def _clear(self, message: str) -> None:
        self.status, self.balances, self.payouts, self.orders = _no_status(), [], [], []
        self.balances_note, self.busy = "", False
        self.loaded, self.error = False, message

    async def _refresh(self, user: UserPublic) -> None:
        page = await run_service(payouts.seller_payouts, seller_id=user.id)
        self.status, self.balances, self.payouts, self.orders = (
            page.status,
            page.balances,
            page.payouts,
            page.orders,
        )
        self.balances_note = page.balances_note
        self.loaded, self.error = True, ""

    async def _onboarding_url(self, user: UserPublic) -> str:
        return await run_service(
            connect.start_onboarding, seller_id=user.id, public_url=get_settings().public_url
        )

    @rx.event
    @_payouts_page
    @shows_errors()
    async def load(self, user: UserPublic):
        """on_load: register for pushes, take Stripe's word when coming back from its form, show the page."""
        self.busy = False
        # Register first, then read: an update made in between is not missed.
        await run_service(
            live.subscribe,
            topic=notifier.seller_topic(user.id),
            client_token=self.router.session.client_token,
            state_name=self.get_full_name(),
        )
        onboarding = str(self.router.page.params.get("onboarding", ""))
        notice: EventSpec | None = None
        if onboarding == RETURNED:
            try:
                status = await run_service(connect.refresh_account, seller_id=user.id)
            except PaymentError as exc:  # the status shown is the last one Stripe sent
                notice = rx.toast.warning(f"Could not check your account with Stripe: {exc}")
            else:
                notice = (
                    rx.toast.success("Payouts are set up.")
                    if status.label == connect.PAYOUTS_ENABLED
                    else rx.toast.info("Stripe still needs a few details: see below.")
                )
        await self._refresh(user)
        if onboarding == LINK_EXPIRED:
            # Stripe's link expired or was already used: a fresh one, and back to the form.
            return _go(await self._onboarding_url(user))
        return notice

    @rx.event
    @_payouts_page
    @shows_errors()
    async def set_up_payouts(self, user: UserPublic):
        """ "Set up payouts": the account is made on the first click, then Stripe's form."""
        if self.busy:
            return
        self.busy = True
        yield
        try:
            url = await self._onboarding_url(user)
        finally:
            self.busy = False
        yield _go(url)

    @rx.event
    @_payouts_page
    @shows_errors()
    async def open_dashboard(self, user: UserPublic):
        """ "Open Stripe dashboard": a single-use login link, made on the click."""
        if self.busy:
            return
        self.busy = True
        yield
        try:
            url = await run_service(connect.dashboard_link, seller_id=user.id)
        finally:
            self.busy = False
        yield _go(url)

    @_payouts_page
    @shows_errors()
    async def on_announcement(self, kind: str, data: dict, user: UserPublic):
        """Called by the live pusher (inside app.modify_state) for this seller's topic: a sale, a
        refund, an account update or a payout. Reflex makes every public method an event handler the
        browser could call too: it is guarded like the others and re-reads the seller's own page."""
        await self._refresh(user)
        return None
