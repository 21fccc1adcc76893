"""Every seller, admin and library event handler re-checks the user on the server.

How: every seller, admin and library page guards every public handler with the one decorator
(``state.guards.requires``: checked below on each handler, not by reading its source; the
library's is "logged in", any role); a handler without it must be exempt by name, with the
reason. Rather than trusting the decorator alone, this test also enumerates the states' event handlers
(a new handler is picked up automatically; one with an argument the test does not know
fails loudly) and calls each, on a real Reflex state tree, as a user who must not get in:
nobody / a buyer on the seller pages, plus a seller on the admin page, and nobody on the
library. The page's public vars are first primed the way any browser could (``setvar``, or a
tab left open after its session ended: a product being edited, an open refund form, a next
page...), so that every handler gets past its "nothing to do" checks and reaches its guard.
Each must answer with a refusal (an error toast, or the guard's message in the page's own
error line for the forms that show errors there, or for the few handlers listed in
``SILENT`` the page left unloaded), run no service at all (states reach data only through
``run_service``, recorded in every state module) and read no uploaded file. Handlers that
touch no data (form setters, UI toggles) are exempt from answering, only by name in
``UI_ONLY``; they are still called and must run no service. Then as the rightful user each
handler does run, against a migrated SQLite database, with the user's own id. The services
check again (tests/unit/test_admin.py, tests/unit/test_analytics.py).
"""

from __future__ import annotations

import inspect
import io
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import reflex as rx
from reflex.event import resolve_upload_handler_param
from sqlalchemy.engine import Engine

import quantoxbay.db
from quantoxbay.db import make_engine, session_scope
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Role
from quantoxbay.services import PaymentsUnavailable, PermissionDenied, accounts, notifier, wiring
from quantoxbay.services.accounts import UserPublic
from quantoxbay.state import admin as admin_state
from quantoxbay.state import checkout as checkout_state
from quantoxbay.state import dashboard as dashboard_state
from quantoxbay.state import payouts as payouts_state
from quantoxbay.state import promotions as promotions_state
from quantoxbay.state import seller_orders as seller_orders_state
from quantoxbay.state import seller_products as seller_products_state
from quantoxbay.state.guards import guard_roles
from quantoxbay.state.session import SessionState
from tests.factories import create_user

GUARDED: list[type[rx.State]] = [dashboard_state.DashboardState, admin_state.AdminState]
#: The other seller-only pages.
SELLER_ONLY: list[type[rx.State]] = [
    seller_products_state.SellerProductsState,
    seller_products_state.ProductFormState,
    promotions_state.PromotionsState,
    seller_orders_state.SellerOrdersState,
    payouts_state.PayoutsState,
]
#: The signed-in buyer's own library; its guard is the session's user (any role may buy).
LIBRARY: type[rx.State] = checkout_state.LibraryState
#: The pages whose every public handler carries ``state.guards.requires`` with these roles
#: (``()``: any logged-in user).
DECORATED: dict[type[rx.State], tuple[Role, ...]] = {
    dashboard_state.DashboardState: (Role.SELLER,),
    admin_state.AdminState: (Role.ADMIN,),
    seller_orders_state.SellerOrdersState: (Role.SELLER, Role.ADMIN),
    promotions_state.PromotionsState: (Role.SELLER,),
    seller_products_state.SellerProductsState: (Role.SELLER,),
    seller_products_state.ProductFormState: (Role.SELLER,),
    payouts_state.PayoutsState: (Role.SELLER,),
    LIBRARY: (),
}
#: Every module whose ``run_service`` the ``calls`` fixture records.
STATE_MODULES = (
    dashboard_state,
    admin_state,
    seller_products_state,
    promotions_state,
    seller_orders_state,
    checkout_state,
    payouts_state,
)
BUILTIN = {"setvar"}  # Reflex's own: sets declared public vars only; no handler of ours

_P = seller_products_state.ProductFormState
_PROMO = promotions_state.PromotionsState
_ORDERS = seller_orders_state.SellerOrdersState

#: Handlers that touch no data: they only change what the page shows, from what the browser
#: already has. Exempt from answering with a refusal, NOT from the sweep: they are still
#: called as the wrong user and must run no service and read no upload, and a look at their code
#: (and the state's private helpers they call) makes sure they do not reach ``run_service`` or storage. Each entry was read and decided
#: on; a new handler is not exempt until someone adds it here with the reason.
UI_ONLY: dict[type[rx.State], dict[str, str]] = {
    _P: {
        **{
            name: "form field setter: stores what the seller typed; save/publish re-check the seller"
            for name in (
                "set_title",
                "set_description",
                "set_price",
                "set_currency",
                "set_category",
                "set_tags",
                "set_pay_what_you_want",
                "set_replace_file_id",
            )
        },
        "on_upload_progress": "the browser's upload progress callback: moves the progress bar",
        "start_upload": "shows the progress bar from 0",
        "clear_messages": "hides the form's notice and error",
    },
    _PROMO: {
        name: "form field setter (bounded): create_code/schedule_sale re-check the seller"
        for name in (
            "set_code",
            "set_kind",
            "set_amount",
            "set_scope",
            "set_max_redemptions",
            "set_expires",
            "set_once_per_buyer",
            "set_sale_product",
            "set_sale_price",
            "set_sale_starts",
            "set_sale_ends",
        )
    },
    _ORDERS: {
        "start_refund": "opens the refund form from the rows already on the page; confirm_refund is guarded",
        "cancel_refund": "closes the refund form",
        "set_refund_amount": "refund form field setter; confirm_refund re-checks the seller",
        "set_refund_reason": "refund form field setter; confirm_refund re-checks the seller",
    },
}

#: Handlers that reach the guard but answer a refusal by leaving the page unloaded (and, for the
#: library, empty) instead of with a toast. The sweep primes ``loaded = True`` and checks it is
#: cleared. Each entry was read and decided on.
SILENT: dict[type[rx.State], dict[str, str]] = {
    _PROMO: {
        "set_tz_offset": "the browser's callback after load, which already answered with the error toast",
    },
    LIBRARY: {
        "load": "on_load after SessionState.guard_logged_in, which already sends a logged-out "
        "visitor to the login page; the library is emptied",
        "next_page": "the pager of a page a logged-out visitor cannot see; the library is emptied",
        "previous_page": "the pager of a page a logged-out visitor cannot see; the library is emptied",
        "on_announcement": "called by the live pusher when an order changes; a logged-out tab's "
        "library is emptied",
    },
}

#: The pages that show a refusal in their own error line(s) rather than as a toast.
MESSAGE_FIELDS: dict[type[rx.State], tuple[str, ...]] = {
    _P: ("error",),
    _PROMO: ("error", "sale_error"),
}


class _WatchedUpload(rx.UploadFile):
    """A small uploaded file that notes every read: the guard must refuse before any."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            UPLOAD_READS.append(name)
        return super().__getattribute__(name)


UPLOAD_READS: list[str] = []

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
    "value": "1",  # form setters; set_tz_offset (int | str)
    "progress": {"progress": 0.5},
    "files": [_WatchedUpload(file=io.BytesIO(b"%PDF-1.4 tiny"), path=Path("guide.pdf"), size=13)],
    "file_id": 999999,
    "promotion_id": 999999,
    "product_id": 999999,
}

#: What a browser can put in a page's public vars before calling a handler (``setvar``, or a
#: tab left open after its session ended), so that each handler reaches its guard.
PRIMED: dict[type[rx.State], dict[str, Any]] = {
    seller_products_state.SellerProductsState: {"loaded": True, "products": [{"id": 999999}]},
    _P: {"editing_id": 999999, "replace_file_id": "999999", "title": "A guide", "price": "5.00"},
    _PROMO: {
        "loaded": True,
        "code": "SPRING-10",
        "kind": promotions_state.PERCENT,
        "amount": "10",
        "sale_product": "999999",
        "sale_price": "4.00",
    },
    _ORDERS: {
        "loaded": True,
        "has_next": True,
        "page": 1,
        "orders": [{"order_id": 999999, "title": "A guide", "refundable_cents": 500}],
        "refund_order_id": 999999,
        "refund_amount": "5.00",
    },
    LIBRARY: {"loaded": True, "has_next": True, "page": 1, "entries": [{"order_id": 999999}]},
    payouts_state.PayoutsState: {"loaded": True},
}


class _StripeDown:
    """A gateway whose every call fails as an unreachable Stripe would (no network in this test)."""

    def __getattr__(self, name: str) -> Any:
        def call(*_args: Any, **_kwargs: Any) -> Any:
            raise PaymentsUnavailable("Payments are unavailable right now.")

        return call


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
    for module in STATE_MODULES:
        real = module.run_service

        async def recording(fn, /, _real=real, **kwargs):
            seen.append((fn.__name__, kwargs))
            return await _real(fn, **kwargs)

        monkeypatch.setattr(module, "run_service", recording)
    return seen


def _as(monkeypatch: pytest.MonkeyPatch, user: UserPublic | None) -> None:
    async def current_user(self):
        return user

    monkeypatch.setattr(SessionState, "current_user", current_user)


def _state(cls: type[rx.State]) -> rx.State:
    root = rx.State(_reflex_internal_init=True)  # type: ignore[call-arg]
    state = root.get_substate(cls.get_full_name().split(".")[1:])
    for var, value in PRIMED.get(cls, {}).items():
        setattr(state, var, value)
    return state


async def _run(cls: type[rx.State], name: str, state: rx.State) -> Any:
    """Call a handler as Reflex would; a handler that yields gives the list of what it yielded."""
    handler = cls.event_handlers[name]
    # A background task runs outside the state lock (``async with self``): it needs its own harness.
    assert not handler.is_background, f"{cls.__name__}.{name} is a background task: sweep it explicitly"
    result = handler.fn(state, **_kwargs(cls, name))
    if inspect.isasyncgen(result):
        return [update async for update in result]
    return await result if inspect.isawaitable(result) else result


def _is_error_toast(result: Any) -> bool:
    return "error" in repr(result).lower()


def _denial(user: UserPublic | None, *roles: Role) -> str:
    """What the guard tells this user (accounts.require_role's PermissionDenied message)."""
    with pytest.raises(PermissionDenied) as refused:
        accounts.require_role(user, *roles)
    return str(refused.value)


def _refused(cls: type[rx.State], name: str, state: rx.State, result: Any, message: str) -> bool:
    if _is_error_toast(result):
        return True
    if name in SILENT.get(cls, {}):
        return state.loaded is False  # type: ignore[attr-defined]
    return any(message in getattr(state, field) for field in MESSAGE_FIELDS.get(cls, ()))


def test_the_guarded_states_have_handlers() -> None:
    assert "export_csv" in _handlers(dashboard_state.DashboardState)
    assert {"change_role", "set_disabled", "unpublish", "refund", "resend_event"} <= set(
        _handlers(admin_state.AdminState)
    )
    assert {"publish", "delete", "receive_files", "replace_file", "remove_file", "notify_buyers"} <= set(
        _handlers(_P)
    )
    assert {"create_code", "deactivate", "schedule_sale", "end_sale"} <= set(_handlers(_PROMO))
    assert {"confirm_refund", "reset_limit", "reissue"} <= set(_handlers(_ORDERS))
    assert {"load", "resend_receipt"} <= set(_handlers(LIBRARY))
    assert {"load", "set_up_payouts", "open_dashboard", "on_announcement"} <= set(
        _handlers(payouts_state.PayoutsState)
    )


def test_the_allow_lists_name_real_handlers_and_every_state_module_is_recorded() -> None:
    """A stale exemption (renamed handler) or a state whose run_service is not recorded fails."""
    for listed in (UI_ONLY, SILENT):
        for cls, names in listed.items():
            assert set(names) <= set(_handlers(cls)), f"{cls.__name__}: {set(names) - set(_handlers(cls))}"
    for cls in [*GUARDED, *SELLER_ONLY, LIBRARY]:
        module = inspect.getmodule(cls)
        assert module in STATE_MODULES and hasattr(module, "run_service"), cls.__name__


SWEEP = (
    [(c, w) for c in GUARDED for w in ("nobody", "buyer")]
    + [(admin_state.AdminState, "seller")]
    + [(c, w) for c in SELLER_ONLY for w in ("nobody", "buyer")]
    + [(LIBRARY, "nobody")]
)


@pytest.mark.parametrize(("cls", "who"), SWEEP, ids=lambda v: v if isinstance(v, str) else v.__name__)
async def test_every_handler_refuses_the_wrong_user(
    monkeypatch: pytest.MonkeyPatch, calls: list, cls: type[rx.State], who: str
) -> None:
    user = None if who == "nobody" else _user(Role(who))
    message = _denial(user, Role.SELLER if cls in SELLER_ONLY else Role.ADMIN)
    _as(monkeypatch, user)
    for name in _handlers(cls):
        state = _state(cls)
        UPLOAD_READS.clear()
        result = await _run(cls, name, state)
        assert calls == [], f"{cls.__name__}.{name} ran {calls} for {who}"
        assert UPLOAD_READS == [], f"{cls.__name__}.{name} read the upload's {UPLOAD_READS} for {who}"
        if name not in UI_ONLY.get(cls, {}):
            assert _refused(cls, name, state, result, message), (
                f"{cls.__name__}.{name} did not refuse {who}: {result!r}"
            )


async def test_a_pushed_announcement_is_refused_after_the_session_ends(
    monkeypatch: pytest.MonkeyPatch, calls: list
) -> None:
    _as(monkeypatch, None)
    state = _state(dashboard_state.DashboardState)
    state.loaded = True
    await state.on_announcement("order.paid", {"order_id": 1})  # type: ignore[attr-defined]
    assert calls == [] and state.loaded is False  # type: ignore[attr-defined]


def _make_user(role: Role) -> UserPublic:
    with session_scope() as session:
        return create_user(session, role, email=f"{role.value}-{id(object())}@example.com")


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


async def test_the_seller_runs_every_seller_page_handler_on_their_own_data(
    monkeypatch: pytest.MonkeyPatch, calls: list
) -> None:
    """The same primed pages, as a seller: every handler gets past its guard and each service
    call carries this seller's id (unknown ids: the services answer "does not exist")."""
    seller = _make_user(Role.SELLER)
    calls.clear()
    _as(monkeypatch, seller)
    monkeypatch.setitem(wiring.PROVIDERS, "gateway", lambda: _StripeDown())
    denials = {_denial(None), _denial(_user(Role.BUYER), Role.SELLER)}
    for cls in SELLER_ONLY:
        for name in _handlers(cls):
            if name in UI_ONLY.get(cls, {}):
                continue
            state = _state(cls)
            result = await _run(cls, name, state)
            shown = [repr(result), *(getattr(state, f) for f in MESSAGE_FIELDS.get(cls, ()))]
            assert not [d for d in denials if any(d in s for s in shown)], f"{cls.__name__}.{name}: {shown}"
    own: list[Callable[[dict], bool]] = [
        lambda kw: kw.get("seller_id") == seller.id,
        lambda kw: getattr(kw.get("actor"), "id", None) == seller.id,
        lambda kw: kw.get("topic") == notifier.seller_topic(seller.id),
    ]
    assert [(fn, kw) for fn, kw in calls if not any(is_own(kw) for is_own in own)] == []
    assert {
        "list_seller_products",
        "update_product",
        "add_product_file",
        "replace_product_file",
        "remove_product_file",
        "publish_product",
        "unpublish_product",
        "delete_product",
        "notify_file_update",
        "list_promotions",
        "create_promotion",
        "deactivate_promotion",
        "schedule_sale",
        "end_sale",
        "list_seller_orders",
        "refund_order",
        "reset_download_limit",
        "reissue_access",
        "seller_payouts",
        "start_onboarding",
        "dashboard_link",
    } <= {fn for fn, _ in calls}


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


def _reach(cls: type[rx.State], fn: Callable) -> str:
    """The source of a handler and of the state's private helpers it calls (``self._x(``), transitively."""
    sources, todo, seen = [], [fn], set()
    while todo:
        source = textwrap.dedent(inspect.getsource(todo.pop()))
        sources.append(source)
        for helper in re.findall(r"self\.(_\w+)\(", source):
            if helper not in seen and inspect.isfunction(getattr(cls, helper, None)):
                seen.add(helper)
                todo.append(getattr(cls, helper))
    return "\n".join(sources)


def test_every_handler_of_the_decorated_pages_carries_the_guard() -> None:
    """Each public handler of these pages carries the guard decorator with the page's roles, or is
    exempt by name (UI_ONLY, with its reason); the exempt ones carry none and reach no service."""
    for cls, roles in DECORATED.items():
        assert [name for name in _handlers(cls) if guard_roles(cls.event_handlers[name].fn) is not None]
        for name in _handlers(cls):
            fn = cls.event_handlers[name].fn
            if name in UI_ONLY.get(cls, {}):
                assert guard_roles(fn) is None, f"{cls.__name__}.{name} is guarded: drop its exemption"
                continue
            assert guard_roles(fn) == roles, f"{cls.__name__}.{name} lacks @requires{roles}"


def test_the_guard_hides_the_user_it_hands_in() -> None:
    """Reflex reads a handler's parameters for the browser's arguments: ``user`` is not one."""
    cls = seller_orders_state.SellerOrdersState
    assert list(inspect.signature(cls.event_handlers["reissue"].fn).parameters) == ["self", "order_id"]
    assert "user" not in cls.event_handlers["reissue"]._get_type_hints()
    assert inspect.isasyncgenfunction(cls.event_handlers["confirm_refund"].fn)  # still yields updates


@pytest.mark.parametrize(
    "name", ["publish_files", "publish_cover", "receive_files", "receive_cover", "replace_file"]
)
def test_a_guarded_upload_handler_still_takes_the_upload(name: str) -> None:
    """Reflex finds an upload handler's ``list[rx.UploadFile]`` parameter in its type hints and
    passes the files by that name: the guard keeps it and hides only ``user``."""
    handler = _P.event_handlers[name]
    assert guard_roles(handler.fn) == (Role.SELLER,)
    assert list(inspect.signature(handler.fn).parameters) == ["self", "files"]
    assert resolve_upload_handler_param(handler) == ("files", list[rx.UploadFile])
    assert "user" not in handler._get_type_hints()


async def test_a_refused_edit_page_goes_back_to_the_list_with_a_cleared_form(
    monkeypatch: pytest.MonkeyPatch, calls: list
) -> None:
    _as(monkeypatch, _user(Role.BUYER))
    state = _state(_P)
    state.loaded = True
    answer = await _P.event_handlers["load_edit"].fn(state)
    assert "That product is not one of yours." in repr(answer) and "/seller/products" in repr(answer)
    assert (state.editing_id, state.title, state.loaded) == (0, "", False)  # type: ignore[attr-defined]
    assert calls == []


def test_the_exempt_handlers_reach_no_service() -> None:
    """Belt and braces for the unguarded (UI_ONLY) handlers: not even a branch the sweep does not
    take reaches a service or storage."""
    for page in DECORATED:
        for name in UI_ONLY.get(page, {}):
            code = _reach(page, page.event_handlers[name].fn)
            assert "run_service" not in code and "get_storage" not in code, f"{page.__name__}.{name}"


async def test_a_domain_error_in_a_guarded_handler_becomes_the_page_message(
    monkeypatch: pytest.MonkeyPatch, calls: list
) -> None:
    """``shows_errors`` under the guard: the admin gets the service's refusal as an error toast; a
    seller gets the guard's message and the handler never runs."""
    cls = admin_state.AdminState
    _as(monkeypatch, _make_user(Role.ADMIN))
    answer = await cls.event_handlers["open_order"].fn(_state(cls), order_id="not-a-number")
    assert _is_error_toast(answer) and "This order does not exist." in repr(answer)
    _as(monkeypatch, _user(Role.SELLER))
    calls.clear()
    answer = await cls.event_handlers["open_order"].fn(_state(cls), order_id=999999)
    assert _denial(_user(Role.SELLER), Role.ADMIN) in repr(answer) and calls == []
