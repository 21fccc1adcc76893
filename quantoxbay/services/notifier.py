"""Services announce what happened; the API layer turns announcements into live page pushes.

Services stay free of Reflex: they put what they announce on their DB session (``queue``), and
``db.session_scope`` publishes it once the transaction has committed (a rollback drops it), to
whoever subscribed (the app registers a live pusher and the mail worker at start-up). So nobody
is told of a change that did not happen, and no caller has to remember to announce.
The database is the truth; a push is a courtesy that may be lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from quantoxbay.db import after_commit, pending_after_commit

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
    """Tell every listener now; a failing listener never breaks the caller."""
    publish([announcement])


def publish(announcements: Sequence[Announcement]) -> None:
    """Tell every listener about each announcement, in order. A listener with an ``announce_many``
    method gets the whole list in one call (the live pusher wakes the event loop once for it)."""
    if not announcements:
        return
    for listener in list(_listeners):
        many = getattr(listener, "announce_many", None)
        try:
            if many is not None:
                many(list(announcements))
                continue
            for announcement in announcements:
                listener(announcement)
        except Exception:
            logger.exception("listener %r failed for %s", listener, [a.kind for a in announcements])


_QUEUED = "quantoxbay.announcements"


class _Pending(list[Announcement]):
    """A transaction's announcements, published together after its commit."""

    def __call__(self) -> None:
        publish(self)


def queue(session: Session, *announcements: Announcement) -> None:
    """Announce once ``session``'s transaction commits (``db.session_scope``, and the webhook's
    group commit for its batch, publish all of a transaction's announcements in one ``publish``);
    dropped when it rolls back."""
    if announcements:
        after_commit(session, _QUEUED, _Pending).extend(announcements)


def queued(session: Session) -> list[Announcement]:
    """What ``session`` will announce when it commits (nothing is taken)."""
    return list(pending_after_commit(session, _QUEUED) or [])


def checkout_topic(stripe_session_id: str) -> str:
    return f"checkout:{stripe_session_id}"


def seller_topic(seller_id: int) -> str:
    return f"seller:{seller_id}"


def buyer_topic(buyer_id: int) -> str:
    return f"buyer:{buyer_id}"
