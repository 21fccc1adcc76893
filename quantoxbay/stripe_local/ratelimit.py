"""Per-endpoint token buckets, like Stripe's per-endpoint rate limits."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """A token bucket per key (``"GET /v1/checkout/sessions/{id}"``).

    Each bucket holds up to ``rate`` tokens (one second of burst) and refills
    at ``rate`` tokens per second. Limits are per process.

    Args:
        rate: Requests per second per key; 0 disables limiting.
    """

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        """Change the rate (tests lower and raise it) and refill every bucket."""
        with self._lock:
            self.rate = float(rate)
            self._buckets.clear()

    def allow(self, key: str) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.rate, now))
            tokens = min(self.rate, tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True
