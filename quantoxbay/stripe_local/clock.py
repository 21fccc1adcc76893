"""The embedded Stripe's one time source, with a test-clock offset.

Everything timed in the embedded Stripe (``created`` stamps, session expiry,
refund transitions, fund availability, payouts) reads :meth:`Clock.now` or
:meth:`Clock.time`, so ``POST /_local/clock/advance`` moves all of it at
once. The offset is kept in the database (``meta.clock_offset``), so it
survives a restart. Webhook retry timing and idempotency key ages stay on the
wall clock: they are about the real network, not about simulated days.
"""

from __future__ import annotations

import time

from .db import Database

OFFSET_KEY = "clock_offset"


class Clock:
    """Wall-clock time plus an offset that only grows.

    Args:
        db: The database holding the offset.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._offset = float(self.db.meta_get_or_create(OFFSET_KEY, lambda: "0"))

    @property
    def offset(self) -> float:
        """Seconds the instance's time runs ahead of the wall clock."""
        return self._offset

    def time(self) -> float:
        """Return the instance's current Unix time (fractional seconds)."""
        return time.time() + self._offset

    def now(self) -> int:
        """Return the instance's current Unix time in whole seconds."""
        return int(self.time())

    def advance(self, seconds: float) -> float:
        """Move the instance's time forward by ``seconds`` (> 0) and persist it.

        Returns:
            The new offset.
        """
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        with self.db.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (OFFSET_KEY,)).fetchone()
            offset = float(row["value"]) if row else 0.0
            offset += seconds
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (OFFSET_KEY, repr(offset)))
        self._offset = offset
        return offset
