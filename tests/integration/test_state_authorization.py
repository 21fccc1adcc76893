"""Every seller-dashboard and admin event handler re-checks the role on the server.

How: each page's state has ONE guard (``state.dashboard._seller``, ``state.admin._admin``)
that every handler calls first. Rather than trusting that by reading code, this test
enumerates the states' event handlers (a new handler is picked up automatically; one with
an argument the test does not know fails loudly) and calls each, on a real Reflex state
tree, as nobody / a buyer / a seller (for the admin page): each must answer with an error
and run no service at all (states reach data only through ``run_service``). Then as the
rightful user each handler does run, against a migrated SQLite database, with the user's own
id. The services check again (tests/unit/test_admin.py, tests/unit/test_analytics.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reflex as rx
from sqlalchemy.engine import Engine

import quantoxbay.db
from quantoxbay.db import make_engine, session_scope
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Role
from quantoxbay.services import accounts
from quantoxbay.services.accounts import UserPublic
from quantoxbay.state import admin as admin_state
from quantoxbay.state import dashboard as dashboard_state
from quantoxbay.state.session import SessionState

GUARDED = [dashboard_state.DashboardState, admin_state.AdminState]
BUILTIN = {"setvar"}  # Reflex's own: sets declared public vars only; no handler of ours

#: A sample value for every parameter name our handlers use.
ARGS: dict[str, Any] = {
    "form_data": {"q": "", "product_id": "999999", "reason": "spam", "order_id": "999999", "amount": ""},
    "user_id": 999999,
    "role": "buyer",
    "disabled": True,
    "order_id": 999999,
    "event_row_id": 999999,
    "period": "7d",
    "tz": "Europe/Paris",
    "kind": "order.paid",
    "data": {"order_id": 999999},
}


def _handlers(cls: type[rx.State]) -> list[str]:
    return sorted(name for name in cls.event_handlers if name not in BUILTIN)


def _kwargs(cls: type[rx.State], name: str) -> dict[str, Any]:
    params = list(inspect.signature(cls.event_handlers[name].fn).parameters)[1:]
    missing = [p for p in params if p not in ARGS]
    assert not missing, f"{cls.__name__}.{name} takes {missing}: add a sample to ARGS"
    return {p: ARGS[p] for p in params}


def _user(role: Role, user_id: int = 424242) -> UserPublic:
    return UserPublic(
        id=user_id, email=f"{role.value}@example.com", role=role.value, display_name="x", handle=None
    )


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('authz') / 'authz.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine) -> list[tuple[str, dict]]:
    """Record every service call the states make (and run it on the test database)."""
    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(quantoxbay.db, "get_engine", lambda: sqlite_engine)
    for module in (dashboard_state, admin_state):
        real = module.run_service

        async def recording(fn, /, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            seen.append((fn.__name__, kwargs))
            return await _real(fn, **kwargs)

        monkeypatch.setattr(module, "run_service", recording)
    return seen


def _as(monkeypatch: pytest.MonkeyPatch, user: UserPublic | None) -> None:
    async def current_user(self):  # type: ignore[no-untyped-def]
        return user

    monkeypatch.setattr(SessionState, "current_user", current_user)


def _state(cls: type[rx.State]) -> rx.State:
    root = rx.State(_reflex_internal_init=True)  # type: ignore[call-arg]
    return root.get_substate(cls.get_full_name().split(".")[1:])


def _is_error_toast(result: Any) -> bool:
    return "error" in repr(result).lower()


def test_the_guarded_states_have_handlers() -> None:
    assert "export_csv" in _handlers(dashboard_state.DashboardState)
    assert {"change_role", "set_disabled", "unpublish", "refund", "resend_event"} <= set(
        _handlers(admin_state.AdminState)
    )


@pytest.mark.parametrize(
    ("cls", "who"),
    [(c, w) for c in GUARDED for w in ("nobody", "buyer")] + [(admin_state.AdminState, "seller")],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
async def test_every_handler_refuses_the_wrong_user(
    monkeypatch: pytest.MonkeyPatch, calls: list, cls: type[rx.State], who: str
) -> None:
    _as(monkeypatch, None if who == "nobody" else _user(Role(who)))
    for name in _handlers(cls):
        state = _state(cls)
        result = await cls.event_handlers[name].fn(state, **_kwargs(cls, name))
        assert _is_error_toast(result), f"{cls.__name__}.{name} did not refuse {who}: {result!r}"
        assert calls == [], f"{cls.__name__}.{name} ran {calls} for {who}"


async def test_a_pushed_announcement_is_refused_after_the_session_ends(
    monkeypatch: pytest.MonkeyPatch, calls: list
) -> None:
    _as(monkeypatch, None)
    state = _state(dashboard_state.DashboardState)
    state.loaded = True  # type: ignore[attr-defined]
    await state.on_announcement("order.paid", {"order_id": 1})  # type: ignore[attr-defined]
    assert calls == [] and state.loaded is False  # type: ignore[attr-defined]


def _make_user(role: Role) -> UserPublic:
    with session_scope() as session:
        return accounts.create_user(
            session=session,
            email=f"{role.value}-{id(object())}@example.com",
            password="long-enough-1",
            role=role,
        )


async def test_the_seller_runs_every_dashboard_handler_on_their_own_data(
    monkeypatch: pytest.MonkeyPatch, calls: list
) -> None:
    seller = _make_user(Role.SELLER)
    calls.clear()
    _as(monkeypatch, seller)
    cls = dashboard_state.DashboardState
    for name in _handlers(cls):
        state = _state(cls)
        result = await cls.event_handlers[name].fn(state, **_kwargs(cls, name))
        assert not _is_error_toast(result), f"{name}: {result!r}"
    ids = {kw.get("seller_id") for fn, kw in calls if "seller_id" in kw}
    assert ids == {seller.id}
    assert {"seller_dashboard", "orders_csv"} <= {fn for fn, _ in calls}


async def test_the_admin_runs_every_admin_handler_as_themself(
    monkeypatch: pytest.MonkeyPatch, calls: list
) -> None:
    admin = _make_user(Role.ADMIN)
    calls.clear()
    _as(monkeypatch, admin)
    cls = admin_state.AdminState
    for name in _handlers(cls):
        state = _state(cls)
        await cls.event_handlers[name].fn(state, **_kwargs(cls, name))  # unknown ids: "does not exist" toasts
    actors = {kw["actor"].id for _fn, kw in calls if "actor" in kw}
    assert actors == {admin.id}
    assert {"set_role", "set_disabled", "unpublish_product", "refund_order", "resend_webhook_event"} <= {
        fn for fn, _ in calls
    }


def test_guards_are_the_single_entry(tmp_path: Path) -> None:
    """Belt and braces: each handler's code calls its page's guard."""
    for cls, guard in (
        (dashboard_state.DashboardState, "_seller(self)"),
        (admin_state.AdminState, "_admin(self)"),
    ):
        for name in _handlers(cls):
            assert guard in inspect.getsource(cls.event_handlers[name].fn), f"{cls.__name__}.{name}"
