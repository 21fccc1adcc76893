"""Services announce what happened; the API layer turns announcements into live page pushes.

Services stay free of Reflex: they call ``announce`` after their transaction
commits, and whoever subscribed (the app registers a pusher at start-up) is told.
The database is the truth; a push is a courtesy that may be lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    """Something pages may care about: ``topics`` name who ("checkout:cs_...", "seller:7")."""

    kind: str  # "order.paid", "order.failed", "order.refunded", ...
    topics: tuple[str, ...]
    data: dict = field(default_factory=dict)


Listener = Callable[[Announcement], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def announce(announcement: Announcement) -> None:
    """Tell every listener; a failing listener never breaks the caller."""
    for listener in list(_listeners):
        try:
            listener(announcement)
        except Exception:
            logger.exception("listener %r failed for %s", listener, announcement.kind)


def checkout_topic(stripe_session_id: str) -> str:
    return f"checkout:{stripe_session_id}"


def seller_topic(seller_id: int) -> str:
    return f"seller:{seller_id}"


def buyer_topic(buyer_id: int) -> str:
    return f"buyer:{buyer_id}"
