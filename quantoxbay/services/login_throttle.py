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

from sqlalchemy import case, delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

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
            LoginThrottle.key_hash.in_(keys),  # type: ignore[attr-defined]
            LoginThrottle.blocked_until > now,
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
    drained_at = LoginThrottle.drained_at
    session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key_hash == key)  # type: ignore[arg-type]
        .values(drained_at=case((drained_at > now, drained_at), else_=now) + limit.cost)
    )
    # Full at max_failures; half a failure of slack so a burst that drained a little still counts.
    full_from = now + limit.lockout_seconds - limit.cost / 2
    locked = session.execute(
        update(LoginThrottle)
        .where(
            LoginThrottle.key_hash == key,  # type: ignore[arg-type]
            LoginThrottle.drained_at >= full_from,
            LoginThrottle.blocked_until <= now,
        )
        .values(blocked_until=now + limit.lockout_seconds)
    ).rowcount  # type: ignore[attr-defined]
    return bool(locked)


def clear(*, session: Session, key: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key_hash == key))  # type: ignore[arg-type]


def prune(*, session: Session, now: float, max_lockout_seconds: float) -> int:
    """Forget buckets that are empty and whose lock is over (a lock ends at most
    ``max_lockout_seconds`` after its bucket was last filled)."""
    return session.execute(
        delete(LoginThrottle).where(LoginThrottle.drained_at < now - max_lockout_seconds)  # type: ignore[arg-type]
    ).rowcount  # type: ignore[attr-defined]


def count(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(LoginThrottle)).one()
