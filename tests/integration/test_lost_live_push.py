"""The confirmation page shows "Payment confirmed" even when the live push never reaches it, and
a push that stalls gives the page's state lock back.

The push (api/live.py) is a courtesy: the worker that fulfils the order may stall before it
delivers, or Reflex may drop the cross-worker delivery. A page that only waited for it stayed on
"Waiting for payment confirmation" (seen in tests/e2e/test_multiworker.py: backend B had found the
page's subscription and entered its push, which never completed). So while it waits, the page
re-reads the order (``CheckoutSuccessState.watch_payment``). Here the payment lands in the database
while no push is delivered at all, at the moments the page cannot see it by itself: after its
own look at load, and while the success page's own Stripe check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import reflex as rx
from sqlalchemy.engine import Engine
from sqlmodel import Session

import quantoxbay.db
from quantoxbay.api import live as live_api
from quantoxbay.db import make_engine, session_scope
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Role
from quantoxbay.services import PaymentError, fulfillment, live
from quantoxbay.services import checkout as checkout_service
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.notifier import Announcement
from quantoxbay.state import checkout as checkout_state
from quantoxbay.state.checkout import CheckoutSuccessState
from quantoxbay.state.session import SessionState
from quantoxbay.storage.local import LocalStorage
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('recheck') / 'recheck.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def sale(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[UserPublic, dict]:
    """A buyer logged in on the page, and a Checkout Session the shop made for them (not paid yet)."""
    monkeypatch.setattr(quantoxbay.db, "get_engine", lambda: sqlite_engine)
    with Session(sqlite_engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product = create_published_product(s, LocalStorage(tmp_path / "files"), seller)
        s.commit()
        assert product.id is not None
        product_id = product.id

    async def current_user(self: SessionState) -> UserPublic:
        return buyer

    monkeypatch.setattr(SessionState, "current_user", current_user)
    cs = checkout_session(sqlite_engine, buyer_id=buyer.id, product_id=product_id)
    monkeypatch.setattr(CheckoutSuccessState, "_session_id", lambda self: cs["id"])
    return buyer, cs


def _page() -> Any:
    root = rx.State(_reflex_internal_init=True)  # type: ignore[call-arg]
    return root.get_substate(CheckoutSuccessState.get_full_name().split(".")[1:])


def _pay(cs: dict) -> None:
    """The webhook's fulfilment on another worker; its push reaches no page (no pusher here)."""
    with session_scope() as s:
        assert fulfillment.fulfill_checkout(session=s, checkout_session=cs).changed


def _stripe(monkeypatch: pytest.MonkeyPatch, *, before_failing: Any = None) -> None:
    """The success page's own look at Stripe fails (after ``before_failing`` runs, if given)."""

    def confirm_checkout(*, session: Session, stripe_session_id: str, buyer_id: int) -> None:
        if before_failing is not None:
            before_failing()
        raise PaymentError("Stripe is unreachable")

    monkeypatch.setattr(checkout_service, "confirm_checkout", confirm_checkout)


class _Locked:
    """Stands in for Reflex's StateProxy around a background task: ``async with`` gives the
    state (in the app it takes the state's lock)."""

    def __init__(self, state: Any) -> None:
        object.__setattr__(self, "_state", state)

    async def __aenter__(self) -> _Locked:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._state, name, value)


async def _watch(page: Any) -> None:
    await CheckoutSuccessState.event_handlers["watch_payment"].fn(_Locked(page))


async def test_a_payment_confirmed_after_the_page_looked_shows_without_a_push(
    sale: tuple[UserPublic, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order becomes paid after load's read, while its Stripe check fails: load used to
    return with the page waiting, for a push that never came."""
    _, cs = sale
    _stripe(monkeypatch, before_failing=lambda: _pay(cs))
    page = _page()
    started = await page.load()
    assert page.status == "waiting"  # what load saw; nothing pushes the change
    assert started is CheckoutSuccessState.watch_payment
    monkeypatch.setattr(checkout_state, "RECHECK_FIRST_SECONDS", 0)
    await _watch(page)
    assert page.status == "paid" and page.files and page.title


async def test_the_page_keeps_waiting_until_the_order_is_paid(
    sale: tuple[UserPublic, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cs = sale
    _stripe(monkeypatch)
    page = _page()
    await page.load()
    watch = page._watch
    assert await page._recheck(watch) is True and page.status == "waiting"
    _pay(cs)
    assert await page._recheck(watch) is False and page.status == "paid"


async def test_a_reload_stops_the_earlier_loop_and_a_repeated_call_starts_none(
    sale: tuple[UserPublic, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    _stripe(monkeypatch)
    page = _page()
    await page.load()
    earlier = page._watch
    await page.load()  # the tab reloaded: its load starts a loop of its own
    assert await page._recheck(earlier) is False
    assert await page._recheck(page._watch) is True
    # The browser may send watch_payment again while a loop watches this load: it returns at once
    # (with the one loop's watch claimed, a second call would otherwise wait for the payment).
    page._watching = page._watch

    async def second_loop(self: CheckoutSuccessState, watch: int) -> bool:
        raise AssertionError("a second loop started")

    monkeypatch.setattr(CheckoutSuccessState, "_recheck", second_loop)
    monkeypatch.setattr(checkout_state, "RECHECK_FIRST_SECONDS", 0)
    await _watch(page)


async def test_a_stalled_push_gives_the_page_state_lock_back(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A push runs inside the page's state lock: one that stalls must not keep the tab's events
    (and the page's own re-check) waiting until Reflex's lock expires."""
    monkeypatch.setattr(quantoxbay.db, "get_engine", lambda: sqlite_engine)
    monkeypatch.setattr(live_api, "PUSH_TIMEOUT_SECONDS", 0.01)
    with session_scope() as s:
        live.subscribe(
            session=s, topic="checkout:cs_stall", client_token="tok-stall", state_name="page.state"
        )
    lock: list[str] = []

    class StalledPage:  # stands in for the page's rx.State; its refresh never returns
        @staticmethod
        def get_full_name() -> str:
            return "page.state"

        async def get_state(self, cls: object) -> StalledPage:
            return self

        async def on_announcement(self, kind: str, data: dict) -> None:
            await asyncio.Event().wait()

    class App:
        @contextlib.asynccontextmanager
        async def modify_state(self, token: object) -> AsyncIterator[StalledPage]:
            lock.append("taken")
            try:
                yield StalledPage()
            finally:
                lock.append("given back")

    pusher = live_api.LivePusher(App(), asyncio.get_running_loop(), [StalledPage])  # type: ignore[list-item]
    # The outer bound only turns a push that never gives up into a failure rather than a hang.
    with caplog.at_level(logging.WARNING):
        async with asyncio.timeout(10):
            pushed = await pusher.push(Announcement(kind="order.paid", topics=("checkout:cs_stall",)))
    assert pushed == 0 and lock == ["taken", "given back"]
    assert "live push to" in caplog.text and "TimeoutError" in caplog.text
