"""What ``run_service`` hands a service that asks for it by parameter name (``gateway``, ``storage``),
so that states never build a Stripe client or a storage themselves (they may not import either)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from quantoxbay.payments.gateway import get_gateway
from quantoxbay.storage import get_storage

PROVIDERS: dict[str, Callable[[], object]] = {"gateway": get_gateway, "storage": get_storage}


@functools.cache
def _wanted(fn: Callable[..., Any]) -> tuple[str, ...]:
    parameters = inspect.signature(fn).parameters
    return tuple(name for name in PROVIDERS if name in parameters)


def provide(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` plus the dependencies ``fn`` takes and the caller did not pass."""
    return {**{name: PROVIDERS[name]() for name in _wanted(fn) if name not in kwargs}, **kwargs}
