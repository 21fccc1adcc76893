"""Who may call an event handler, and what a DomainError shows: one decorator each.

``@requires(Role.SELLER)`` (or ``seller_only``, ``admin_only``, ``logged_in``) under ``@rx.event``
looks the user up from the session cookie, on the server, on every call
(``SessionState.require_user``: admins pass every role check); anyone else gets the page's
refusal and the handler's body never runs. A handler that declares a ``user`` parameter gets
that user (hidden from the signature Reflex reads for the browser's arguments).
tests/integration/test_state_authorization.py checks every public handler of the seller and
admin pages carries the guard or is exempt by name, with the reason.

``@shows_errors(...)`` turns a DomainError raised in the handler into the page's message (an error
toast unless the page says otherwise), so handlers need no try/except for the expected refusals.

Both keep the handler's kind: a coroutine stays a coroutine and an async generator (a handler
that yields updates) stays one, which is how Reflex tells them apart; ``functools.wraps`` keeps
the name and the signature Reflex inspects. Background handlers (``@rx.event(background=True)``)
may carry them too (the decorator goes under ``@rx.event``; ``self`` is then the state proxy).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import reflex as rx

from quantoxbay.models import Role
from quantoxbay.services import DomainError
from quantoxbay.state.session import SessionState

#: What a page answers a refused call or a DomainError with: ``(state, error) -> update`` (None: nothing).
Answer = Callable[[Any, DomainError], Any]

#: The attribute a guarded handler carries: the roles it requires (empty: any logged-in user).
GUARD_ROLES = "__guard_roles__"


def error_toast(_state: Any, exc: DomainError) -> Any:
    return rx.toast.error(str(exc))


def _wrap(fn: Callable[..., Any], before: Callable[[Any, dict[str, Any]], Any], answer: Answer) -> Any:
    """``fn`` with ``await before(state, kwargs)`` first; a DomainError from ``before`` becomes
    ``answer(state, error)`` and ``fn`` does not run."""
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                await before(self, kwargs)
            except DomainError as exc:
                if (update := answer(self, exc)) is not None:
                    yield update
                return
            async for update in fn(self, *args, **kwargs):
                yield update

        return generator

    @functools.wraps(fn)
    async def coroutine(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            await before(self, kwargs)
        except DomainError as exc:
            return answer(self, exc)
        result = fn(self, *args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return coroutine


def _without_user(wrapper: Any, fn: Callable[..., Any]) -> None:
    """Hide the injected ``user`` parameter from what Reflex (and the browser) see."""
    signature = inspect.signature(fn)
    wrapper.__signature__ = signature.replace(
        parameters=[p for name, p in signature.parameters.items() if name != "user"]
    )
    wrapper.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != "user"}


def requires(*roles: Role, refuse: Answer = error_toast) -> Callable[[Callable[..., Any]], Any]:
    """Run the handler only for the logged-in user holding one of ``roles`` (any logged-in user
    when none given); anyone else gets ``refuse(state, PermissionDenied)``, with
    accounts.require_role's message."""

    def decorate(fn: Callable[..., Any]) -> Any:
        takes_user = "user" in inspect.signature(fn).parameters

        async def check(state: Any, kwargs: dict[str, Any]) -> None:
            user = await (await state.get_state(SessionState)).require_user(*roles)
            if takes_user:
                kwargs["user"] = user

        wrapper = _wrap(fn, check, refuse)
        if takes_user:
            _without_user(wrapper, fn)
        setattr(wrapper, GUARD_ROLES, roles)
        return wrapper

    return decorate


logged_in = requires()
seller_only = requires(Role.SELLER)
admin_only = requires(Role.ADMIN)


def guard_roles(fn: Any) -> tuple[Role, ...] | None:
    """The roles a handler's guard requires (``()``: logged in), or None when it has no guard."""
    while fn is not None:
        if hasattr(fn, GUARD_ROLES):
            return getattr(fn, GUARD_ROLES)
        fn = getattr(fn, "__wrapped__", None)
    return None


def shows_errors(answer: Answer = error_toast) -> Callable[[Callable[..., Any]], Any]:
    """A DomainError raised by the handler becomes ``answer(state, error)`` (an error toast by
    default); the handler's changes made before the error stay, as with a try/except."""

    def decorate(fn: Callable[..., Any]) -> Any:
        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    async for update in fn(self, *args, **kwargs):
                        yield update
                except DomainError as exc:
                    if (update := answer(self, exc)) is not None:
                        yield update

            return generator

        @functools.wraps(fn)
        async def coroutine(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(self, *args, **kwargs)
                return await result if inspect.isawaitable(result) else result
            except DomainError as exc:
                return answer(self, exc)

        return coroutine

    return decorate
