"""Buy now, the confirmation page (live "Payment confirmed"), and the library."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TypedDict

import reflex as rx
from reflex.event import EventCallback, EventSpec

from quantoxbay import routes
from quantoxbay.constants import OFFER_PAID, OFFER_PAY_WHAT_YOU_WANT
from quantoxbay.models import OrderStatus
from quantoxbay.services import (
    DomainError,
    PaymentError,
    PaymentRefused,
    checkout,
    fulfillment,
    library,
    live,
    notifier,
    pricing,
    receipts,
)
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.downloads import download_url
from quantoxbay.services.money import format_amount, min_charge_cents, parse_price
from quantoxbay.settings import get_settings
from quantoxbay.state.guards import logged_in, requires, shows_errors
from quantoxbay.state.session import SessionState, run_service


def _go(url: str) -> EventSpec:
    """Full navigation (the hosted checkout and API routes are not Reflex pages)."""
    return rx.call_script(f"window.location.assign({json.dumps(url)})")


class FileLink(TypedDict):
    """A purchased file with its fresh signed download link."""

    filename: str
    size: int  # bytes
    url: str


class LibraryRow(TypedDict):
    """A purchase in `/library` (made here from library.LibraryEntry)."""

    order_id: int
    title: str
    status: str  # "partially refunded"
    total: str
    refunded: str  # "" when nothing was refunded
    date: str
    can_download: bool
    downloads: str  # "2 of 5 downloads used", "" without a limit
    files: list[FileLink]


def _file_rows(entry: library.LibraryEntry, user_id: int) -> list[FileLink]:
    secret = get_settings().app_secret
    return [
        FileLink(
            filename=f.filename,
            size=f.size_bytes,
            url=download_url(secret=secret, user_id=user_id, order_id=entry.order_id, file_id=f.file_id),
        )
        for f in entry.files
    ]


def _minimum_label(offer: checkout.Offer) -> str:
    """The hint under "Name a fair price": what the shop can charge (Stripe has a minimum charge)."""
    lowest = max(offer.minimum_cents, min_charge_cents(offer.currency))
    if offer.minimum_cents == 0:
        return f"0 to get it free, or at least {format_amount(lowest, offer.currency)}"
    return f"At least {format_amount(lowest, offer.currency)}"


class BuyBoxState(rx.State):
    """The product page's "Buy now" / "Get it free" / "Download" box."""

    owned: rx.Field[bool] = rx.field(False)
    busy: rx.Field[bool] = rx.field(False)
    # How the product is sold: an OFFER_* of quantoxbay.constants (services.checkout.offer_for).
    offer: rx.Field[str] = rx.field(OFFER_PAID)
    # optional; checked by the server (services.promotions.check_code)
    promo_code: rx.Field[str] = rx.field("")
    promo_error: rx.Field[str] = rx.field("")
    # Pay what you want: the amount the buyer names (checked again by the server) and its minimum.
    named_price: rx.Field[str] = rx.field("")
    named_price_error: rx.Field[str] = rx.field("")
    minimum_label: rx.Field[str] = rx.field("")

    @rx.event
    def set_promo_code(self, value: str) -> None:
        self.promo_code, self.promo_error = value[:40], ""

    @rx.event
    def set_named_price(self, value: str) -> None:
        self.named_price, self.named_price_error = value[:20], ""

    def _product_id(self) -> int | None:
        raw = self.router.page.params.get("product_id", "")
        return int(raw) if str(raw).isdigit() else None

    @rx.event
    async def load(self) -> None:
        self.busy, self.promo_code, self.promo_error, self.named_price_error = False, "", "", ""
        user = await (await self.get_state(SessionState)).current_user()
        product_id = self._product_id()
        self.owned = bool(
            user
            and product_id
            and await run_service(checkout.owns_product, buyer_id=user.id, product_id=product_id)
        )
        offer = await run_service(checkout.offer_for, product_id=product_id) if product_id else None
        self.offer = offer.kind if offer else OFFER_PAID
        self.named_price = offer.suggested_price if offer else ""
        self.minimum_label = _minimum_label(offer) if offer else ""

    def _log_in_first(self, product_id: int) -> EventSpec:
        """Log in, then come back to the same product."""
        return rx.redirect(f"{routes.LOGIN}?next={routes.product_path(product_id)}")

    @rx.event
    async def buy_now(self):
        product_id = self._product_id()
        if product_id is None:
            yield rx.toast.error("This product does not exist.")
            return
        user = await (await self.get_state(SessionState)).current_user()
        if user is None:
            yield self._log_in_first(product_id)
            return
        named: int | None = None
        if self.offer == OFFER_PAY_WHAT_YOU_WANT:
            try:
                named = parse_price(self.named_price)
            except DomainError as exc:
                self.named_price_error = str(exc)
                return
            if named == 0:  # 0 where the minimum is 0: the free path (the server checks the minimum)
                async for event in self._get_free(user.id, product_id):
                    yield event
                return
        self.busy = True
        yield
        try:
            start = await run_service(
                checkout.start_checkout,
                buyer_id=user.id,
                product_id=product_id,
                public_url=get_settings().public_url,
                promo_code=self.promo_code,
                named_amount_cents=named,
            )
        except checkout.AlreadyOwned as exc:
            self.busy, self.owned = False, True
            yield rx.toast.info(str(exc))
            return
        except PaymentError:  # before DomainError: Stripe's trouble is not the promo code's fault
            self.busy = False
            yield rx.toast.error("Payments are unavailable right now. Please try again in a minute.")
            return
        except pricing.NamedPriceRefused as exc:
            self.busy, self.named_price_error = False, str(exc)
            return
        except DomainError as exc:
            self.busy = False
            if self.promo_code.strip():
                self.promo_error = str(exc)
            yield rx.toast.error(str(exc))
            return
        yield _go(start.url)

    @rx.event
    async def get_free(self):
        """The "Get it free" button: straight into the library, no payment page."""
        product_id = self._product_id()
        if product_id is None:
            yield rx.toast.error("This product does not exist.")
            return
        user = await (await self.get_state(SessionState)).current_user()
        if user is None:
            yield self._log_in_first(product_id)
            return
        async for event in self._get_free(user.id, product_id):
            yield event

    async def _get_free(self, buyer_id: int, product_id: int):
        self.busy = True
        yield
        try:
            await run_service(checkout.get_free_product, buyer_id=buyer_id, product_id=product_id)
        except checkout.AlreadyOwned as exc:
            self.busy, self.owned = False, True
            yield rx.toast.info(str(exc))
            return
        except pricing.NamedPriceRefused as exc:
            self.busy, self.named_price_error = False, str(exc)
            return
        except DomainError as exc:
            self.busy = False
            yield rx.toast.error(str(exc))
            return
        self.busy, self.owned = False, True
        yield rx.toast.success("It is in your library.")
        yield rx.redirect(routes.LIBRARY)


#: While the confirmation page waits, it re-reads the order after 1 s, then at doubling
#: intervals up to ``RECHECK_MAX_SECONDS`` ...
RECHECK_FIRST_SECONDS = 1.0
RECHECK_MAX_SECONDS = 10.0
#: ... for this long (an asynchronous payment may take days: the page is reloaded by then).
RECHECK_FOR_SECONDS = 15 * 60


class CheckoutSuccessState(rx.State):
    """`/checkout/success?session_id=...`: waits, then flips to "Payment confirmed" by push.

    The push is a courtesy that may be lost (the pushing worker stalls, Reflex's cross-worker
    delivery drops it, the socket moves), so while the page waits it also re-reads the order
    (``watch_payment``): the database is the truth, the push only makes it quicker."""

    # waiting | paid | failed | refused (not what the shop sold) | unknown
    status: rx.Field[str] = rx.field("waiting")
    title: rx.Field[str] = rx.field("")
    total_label: rx.Field[str] = rx.field("")
    order_id: rx.Field[int] = rx.field(0)
    # Where the receipt goes (the buyer's address): the confirmation says so.
    receipt_email: rx.Field[str] = rx.field("")
    files: rx.Field[list[FileLink]] = rx.field(default_factory=list)
    # Checked against the session cookie at load; a push then needs one query, not three.
    _buyer_id: int = 0
    # Bumped by each load (a re-check loop of an earlier load stops) and the one being watched
    # (the browser may call watch_payment again: it starts no second loop).
    _watch: int = 0
    _watching: int = 0

    def _session_id(self) -> str:
        return str(self.router.page.params.get("session_id", ""))[:255]

    async def _refresh(self) -> None:
        session_id = self._session_id()
        if not self._buyer_id or not session_id:
            self.status = "unknown"
            return
        entry = await run_service(
            library.order_for_session, buyer_id=self._buyer_id, stripe_session_id=session_id
        )
        if entry is None:
            self.status = "waiting"
            return
        self.title, self.total_label, self.order_id = entry.title, entry.total_label, entry.order_id
        if entry.can_download:
            self.status = "paid"
            self.files = _file_rows(entry, self._buyer_id)
        elif entry.status == OrderStatus.FAILED.value:
            self.status = "failed"
        else:
            self.status = "waiting"

    @rx.event
    async def load(self):
        self.status, self.files, self.title, self.order_id = "waiting", [], "", 0
        session_state = await self.get_state(SessionState)
        user = await session_state.current_user()
        self._buyer_id = user.id if user else 0
        self.receipt_email = user.email if user else ""
        session_id = self._session_id()
        if user is None:
            return rx.redirect(f"{routes.LOGIN}?next={routes.CHECKOUT_SUCCESS}?session_id={session_id}")
        if not session_id.startswith("cs_"):
            self.status = "unknown"
            return None
        # Register for the push first, then look: a payment confirmed in between is not missed.
        await run_service(
            live.subscribe,
            topic=notifier.checkout_topic(session_id),
            client_token=self.router.session.client_token,
            state_name=self.get_full_name(),
        )
        await self._refresh()
        if self.status == "waiting":
            try:
                result = await run_service(
                    checkout.confirm_checkout,
                    stripe_session_id=session_id,
                    buyer_id=user.id,
                )
            except PaymentRefused:
                self.status = "unknown"
                return None
            except PaymentError:
                return self._watch_payment()  # the webhook will still confirm; see watch_payment
            await self._refresh()
            if self.status == "waiting" and result is not None and result.order_id is None:
                if result.status == fulfillment.REJECTED:
                    self.status = "refused"
                elif result.status == fulfillment.IGNORED:
                    self.status = "unknown"
        return self._watch_payment() if self.status == "waiting" else None

    def _watch_payment(self) -> EventCallback[()]:
        self._watch += 1
        return CheckoutSuccessState.watch_payment

    async def _recheck(self, watch: int) -> bool:
        """One re-read of the order for the loop ``watch``; False once that loop should stop (the
        page stopped waiting, or a later load started its own loop)."""
        if watch != self._watch or self.status != "waiting":
            return False
        await self._refresh()
        return self.status == "waiting"

    @rx.event(background=True)
    async def watch_payment(self) -> None:
        """Started by ``load`` while the page waits: re-reads the order until it is no longer
        waiting, so a lost push only delays "Payment confirmed"."""
        async with self:
            if self._watching == self._watch:
                return
            watch = self._watching = self._watch
        delay, deadline = RECHECK_FIRST_SECONDS, time.monotonic() + RECHECK_FOR_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECHECK_MAX_SECONDS)
            async with self:
                if not await self._recheck(watch):
                    return

    async def on_announcement(self, kind: str, data: dict) -> None:
        """Called by the live pusher inside modify_state when this order changes."""
        await self._refresh()


def _empty_library(state: LibraryState, _exc: DomainError) -> None:
    """A logged-out tab (the page guard already sent the visitor to log in): nothing to show."""
    state.entries, state.loaded = [], False


#: The library's own guard: any logged-in user (any role may buy); a refusal empties the page.
_buyer_page = requires(refuse=_empty_library)


class LibraryState(rx.State):
    """`/library`: every purchase, newest first, a page at a time; fresh signed links on each load."""

    entries: rx.Field[list[LibraryRow]] = rx.field(default_factory=list)
    loaded: rx.Field[bool] = rx.field(False)
    page: rx.Field[int] = rx.field(0)
    has_next: rx.Field[bool] = rx.field(False)
    notice: rx.Field[str] = rx.field("")

    async def _load(self, user: UserPublic) -> None:
        result = await run_service(library.library_page, buyer_id=user.id, page=self.page)
        self.has_next = result.has_next
        self.entries = [
            LibraryRow(
                order_id=e.order_id,
                title=e.title,
                status=e.status.replace("_", " "),
                total=e.total_label,
                refunded=e.refunded_label,
                date=e.purchased_at.strftime("%d %b %Y"),
                can_download=e.can_download,
                downloads=(
                    f"{e.downloads_used} of {e.download_limit} downloads used" if e.download_limit else ""
                ),
                files=_file_rows(e, user.id),
            )
            for e in result.entries
        ]
        self.loaded = True

    @rx.event
    @_buyer_page
    async def load(self, user: UserPublic) -> None:
        raw = str(self.router.page.params.get("page", "1"))
        self.page = int(raw) - 1 if raw.isdigit() and int(raw) > 0 else 0
        self.notice = (
            "That download link had expired; here are fresh ones."
            if self.router.page.params.get("expired")
            else ""
        )
        await self._load(user)
        await run_service(
            live.subscribe,
            topic=notifier.buyer_topic(user.id),
            client_token=self.router.session.client_token,
            state_name=self.get_full_name(),
        )

    @rx.event
    @_buyer_page
    async def next_page(self, user: UserPublic) -> None:
        if self.has_next:
            self.page += 1
            await self._load(user)

    @rx.event
    @_buyer_page
    async def previous_page(self, user: UserPublic) -> None:
        if self.page > 0:
            self.page -= 1
            await self._load(user)

    @rx.event
    @logged_in
    @shows_errors()
    async def resend_receipt(self, order_id: int, user: UserPublic):
        try:
            await run_service(receipts.resend_receipt, buyer_id=user.id, order_id=int(order_id))
        except receipts.ReceiptOnItsWay as exc:
            # Right after a purchase the receipt is being sent or just was: not an error.
            return rx.toast.info(str(exc))
        return rx.toast.success(f"Your receipt is on its way to {user.email}.")

    @_buyer_page
    async def on_announcement(self, kind: str, data: dict, user: UserPublic) -> None:
        """Called by the live pusher when one of this buyer's orders changes (guarded like the rest:
        Reflex makes it an event handler the browser could call too)."""
        await self._load(user)
