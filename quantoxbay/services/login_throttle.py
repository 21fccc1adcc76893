"""Failed log-in throttle: one leaky bucket per key (an account's e-mail, a client IP).

Each failure pours ``lockout_seconds / max_failures`` seconds into the key's bucket, which
drains in real time. A key whose bucket holds ``max_failures`` failures (a quick burst) is
refused for ``lockout_seconds``; failures spread out slower than the drain never add up. In the
long run a key gets at most ``max_failures`` failures per ``lockout_seconds``, bursts included.

The buckets live in the database (``login_throttle``) so that every worker agrees, and each
change is one UPDATE, so concurrent failures all count.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from quantoxbay.models import LoginThrottle
from quantoxbay.settings import get_settings


@dataclass(frozen=True)
class Limit:
    """``max_failures`` in a burst lock a key for ``lockout_seconds``."""

    max_failures: int
    lockout_seconds: float

    @property
    def cost(self) -> float:
        """Seconds of drain one failure adds: a full bucket empties in ``lockout_seconds``."""
        return self.lockout_seconds / self.max_failures


def key_for(kind: str, value: str) -> str:
    """A keyed hash: the table stores no e-mail or IP, and keys cannot be precomputed."""
    secret = get_settings().app_secret.encode()
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def is_blocked(*, session: Session, keys: Sequence[str], now: float) -> bool:
    """True when any of ``keys`` is locked at ``now`` (epoch seconds)."""
    if not keys:
        return False
    found = session.exec(
        select(LoginThrottle.key_hash).where(
            col(LoginThrottle.key_hash).in_(keys),
            col(LoginThrottle.blocked_until) > now,
        )
    ).first()
    return found is not None


def record_failure(*, session: Session, key: str, limit: Limit, now: float) -> bool:
    """Count one failure for ``key``; True when this failure locked it."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(LoginThrottle)
        .values(key_hash=key, drained_at=now, blocked_until=0.0)
        .on_conflict_do_nothing(index_elements=["key_hash"])
    )
    # Drain to ``now`` and pour in one failure, in the same statement.
    drained_at = col(LoginThrottle.drained_at)
    session.execute(
        update(LoginThrottle)
        .where(col(LoginThrottle.key_hash) == key)
        .values(drained_at=case((drained_at > now, drained_at), else_=now) + limit.cost)
    )
    # Full at max_failures; half a failure of slack so a burst that drained a little still counts.
    full_from = now + limit.lockout_seconds - limit.cost / 2
    locked = session.execute(
        update(LoginThrottle)
        .where(
            col(LoginThrottle.key_hash) == key,
            col(LoginThrottle.drained_at) >= full_from,
            col(LoginThrottle.blocked_until) <= now,
        )
        .values(blocked_until=now + limit.lockout_seconds)
    ).rowcount  # type: ignore[attr-defined]
    return bool(locked)


def clear(*, session: Session, key: str) -> None:
    session.execute(delete(LoginThrottle).where(col(LoginThrottle.key_hash) == key))


def prune(*, session: Session, now: float, max_lockout_seconds: float, batch: int = 200) -> int:
    """Forget buckets that are empty and whose lock is over (a lock ends at most
    ``max_lockout_seconds`` after its bucket was last filled).

    Rows another log-in is updating right now are skipped (PostgreSQL; SQLite has one writer),
    so two failures pruning each other's buckets cannot deadlock."""
    stale = (
        select(LoginThrottle.key_hash)
        .where(col(LoginThrottle.drained_at) < now - max_lockout_seconds)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return session.execute(
        delete(LoginThrottle).where(col(LoginThrottle.key_hash).in_(stale.scalar_subquery()))
    ).rowcount  # type: ignore[attr-defined]
