"""What a service function may ask for by name, and the one place that hands it over.

A service names its dependencies as keyword parameters (``session``, ``settings``, ``storage``,
``gateway``); ``call`` opens the transaction, passes the session and whatever else the
function's signature names from ``PROVIDERS``, and commits (``db.session_scope``, which then
publishes the announcements the service queued). An argument the caller passes wins (tests,
a state that already holds one). A new dependency is one line in ``PROVIDERS``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from quantoxbay.db import session_scope
from quantoxbay.payments.gateway import get_gateway
from quantoxbay.settings import get_settings
from quantoxbay.storage import get_storage

T = TypeVar("T")

#: Parameter name -> how to get it (each is cached process-wide by its own module).
PROVIDERS: dict[str, Callable[[], Any]] = {
    "settings": get_settings,
    "storage": get_storage,
    "gateway": get_gateway,
}


@functools.cache
def _wanted(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The provider names among ``fn``'s parameters (the signature of what it wraps, if decorated)."""
    return tuple(name for name in inspect.signature(fn).parameters if name in PROVIDERS)


def dependencies(fn: Callable[..., Any], given: dict[str, Any]) -> dict[str, Any]:
    """What ``fn`` asks for and the caller did not pass."""
    return {name: PROVIDERS[name]() for name in _wanted(fn) if name not in given}


def call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run ``fn`` in a fresh transaction with the session and the dependencies it names."""
    with session_scope() as session:
        return fn(session=session, **dependencies(fn, kwargs), **kwargs)
