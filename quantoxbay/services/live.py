"""Which open pages want a push for a topic. Kept in the database so any worker can push."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from quantoxbay.models import LiveSubscription, utcnow

SUBSCRIPTION_TTL = timedelta(days=1)


def subscribe(*, session: Session, topic: str, client_token: str, state_name: str) -> None:
    """Register a page (idempotent: the unique constraint absorbs repeats)."""
    try:
        with session.begin_nested():
            session.add(LiveSubscription(topic=topic, client_token=client_token, state_name=state_name))
            session.flush()
    except IntegrityError:
        pass


def subscribers(*, session: Session, topics: list[str]) -> list[tuple[str, str]]:
    """(client_token, state_name) pairs registered for any of the topics."""
    rows = session.exec(
        select(LiveSubscription.client_token, LiveSubscription.state_name).where(
            col(LiveSubscription.topic).in_(topics),
            LiveSubscription.created_at > utcnow() - SUBSCRIPTION_TTL,
        )
    ).all()
    return sorted(set(rows))


def prune(*, session: Session) -> int:
    return session.execute(  # type: ignore[attr-defined]
        delete(LiveSubscription).where(col(LiveSubscription.created_at) < utcnow() - SUBSCRIPTION_TTL)
    ).rowcount
