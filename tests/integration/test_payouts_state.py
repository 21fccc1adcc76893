"""`/seller/payouts` handlers on a real Reflex state tree, against a migrated SQLite database and a
fake Stripe: the page as a seller without an account, "Set up payouts", coming back from Stripe's
form (``?onboarding=return`` / ``refresh``), "Open Stripe dashboard" and a live push."""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import reflex as rx
from reflex.istate.data import RouterData
from sqlalchemy.engine import Engine
from sqlmodel import select

import quantoxbay.db
from quantoxbay.db import make_engine, session_scope
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Role, SellerAccount
from quantoxbay.services import connect, payouts, wiring
from quantoxbay.services.accounts import UserPublic
from quantoxbay.state.payouts import PayoutsState
from quantoxbay.state.session import SessionState
from tests.factories import create_user


class FakeStripe:
    """The Connect calls the page makes; the account is done once ``complete`` is set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.complete = False
        self.links = 0
        self.account_id = f"acct_{uuid.uuid4().hex[:16]}"  # the database is shared by the module

    def _account(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "details_submitted": self.complete,
            "charges_enabled": self.complete,
            "payouts_enabled": self.complete,
            "requirements": {"currently_due": [] if self.complete else ["external_account"]},
        }

    def create_account(self, *, user_id: int, email: str, country: str) -> dict[str, Any]:
        self.calls.append("create_account")
        return self._account()

    def retrieve_account(self, account: str) -> dict[str, Any]:
        self.calls.append("retrieve_account")
        return self._account()

    def create_onboarding_link(self, *, account: str, refresh_url: str, return_url: str) -> SimpleNamespace:
        self.calls.append("create_onboarding_link")
        self.links += 1
        assert return_url.endswith("/seller/payouts?onboarding=return")
        assert refresh_url.endswith("/seller/payouts?onboarding=refresh")
        return SimpleNamespace(url=f"https://connect.stripe.test/setup/{self.links}")

    def create_login_link(self, account: str) -> SimpleNamespace:
        self.calls.append("create_login_link")
        return SimpleNamespace(url="https://connect.stripe.test/express/login")

    def retrieve_balance(self, account: str) -> dict[str, Any]:
        self.calls.append("retrieve_balance")
        return {
            "available": [{"amount": 2500, "currency": "usd"}],
            "pending": [{"amount": 700, "currency": "usd"}],
        }

    def list_payouts(self, account: str, *, limit: int = 20) -> list[dict[str, Any]]:
        self.calls.append("list_payouts")
        return []


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('payouts') / 'payouts.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def stripe_fake(monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine) -> FakeStripe:
    fake = FakeStripe()
    monkeypatch.setattr(quantoxbay.db, "get_engine", lambda: sqlite_engine)
    monkeypatch.setitem(wiring.PROVIDERS, "gateway", lambda: fake)
    return fake


@pytest.fixture
def seller(monkeypatch: pytest.MonkeyPatch, stripe_fake: FakeStripe) -> UserPublic:
    with session_scope() as session:
        user = create_user(session, Role.SELLER)

    async def current_user(self):  # type: ignore[no-untyped-def]
        return user

    monkeypatch.setattr(SessionState, "current_user", current_user)
    return user


def _state(onboarding: str = "") -> PayoutsState:
    root = rx.State(_reflex_internal_init=True)  # type: ignore[call-arg]
    state = root.get_substate(PayoutsState.get_full_name().split(".")[1:])
    state.router = RouterData.from_router_data({"query": {"onboarding": onboarding} if onboarding else {}})
    return state  # type: ignore[return-value]


async def _run(state: PayoutsState, name: str, **kwargs: Any) -> list[Any]:
    result = PayoutsState.event_handlers[name].fn(state, **kwargs)
    if inspect.isasyncgen(result):
        return [update async for update in result]
    return [await result]


def _navigates_to(updates: list[Any], url: str) -> bool:
    return any(f"window.location.assign({json.dumps(url)})" in repr(u) for u in updates)


async def test_a_seller_without_an_account_sees_not_set_up_and_the_publish_note(
    seller: UserPublic, stripe_fake: FakeStripe
) -> None:
    state = _state()
    await _run(state, "load")
    assert state.loaded and state.status_label == connect.NOT_SET_UP
    assert state.publish_note == payouts.PUBLISH_NOTE
    assert not state.can_open_dashboard and not state.has_account
    assert [(b["available"], b["pending"]) for b in state.balances] == [("$0.00", "$0.00")]
    assert stripe_fake.calls == []  # nothing to ask Stripe yet


async def test_set_up_payouts_makes_the_account_once_and_sends_the_seller_to_stripe(
    seller: UserPublic, stripe_fake: FakeStripe
) -> None:
    state = _state()
    updates = await _run(state, "set_up_payouts")
    assert _navigates_to(updates, "https://connect.stripe.test/setup/1") and not state.busy
    await _run(state, "set_up_payouts")  # a second click: the same account, a new link
    assert stripe_fake.calls == ["create_account", "create_onboarding_link", "create_onboarding_link"]
    with session_scope() as session:
        rows = session.exec(select(SellerAccount).where(SellerAccount.user_id == seller.id)).all()
    assert [r.stripe_account_id for r in rows] == [stripe_fake.account_id]


async def test_coming_back_from_stripe_reads_the_account_again(
    seller: UserPublic, stripe_fake: FakeStripe
) -> None:
    await _run(_state(), "set_up_payouts")
    state = _state()
    await _run(state, "load")
    assert state.status_label == connect.ACTION_REQUIRED and state.needs == ["External account"]
    stripe_fake.complete = True  # the seller finished the form
    state = _state(onboarding="return")
    updates = await _run(state, "load")
    assert "retrieve_account" in stripe_fake.calls and "Payouts are set up." in repr(updates)
    assert state.status_label == connect.PAYOUTS_ENABLED and state.publish_note == ""
    assert [(b["available"], b["pending"]) for b in state.balances] == [("$25.00", "$7.00")]
    assert state.can_open_dashboard
    updates = await _run(state, "open_dashboard")
    assert _navigates_to(updates, "https://connect.stripe.test/express/login")


async def test_an_expired_link_sends_the_seller_to_a_fresh_one(
    seller: UserPublic, stripe_fake: FakeStripe
) -> None:
    await _run(_state(), "set_up_payouts")
    state = _state(onboarding="refresh")
    updates = await _run(state, "load")
    assert state.loaded and _navigates_to(updates, "https://connect.stripe.test/setup/2")


async def test_the_dashboard_needs_a_submitted_form(seller: UserPublic, stripe_fake: FakeStripe) -> None:
    updates = await _run(_state(), "open_dashboard")
    assert (
        "Finish setting up payouts first." in repr(updates) and "create_login_link" not in stripe_fake.calls
    )


async def test_a_push_re_reads_the_page(seller: UserPublic, stripe_fake: FakeStripe) -> None:
    state = _state()
    await _run(state, "load")
    await _run(_state(), "set_up_payouts")
    await _run(state, "on_announcement", kind="payouts.account", data={"status": "Action required"})
    assert state.status_label == connect.ACTION_REQUIRED
