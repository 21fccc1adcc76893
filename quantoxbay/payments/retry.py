"""Retry Stripe calls that hit a rate limit (429), with exponential backoff and jitter.

The SDK's max_network_retries already covers connection errors, 409 and 5xx; it only
retries a 429 when Stripe says so (Stripe-Should-Retry), so rate limits are handled here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import stripe

T = TypeVar("T")


def with_rate_limit_retry(
    call: Callable[[], T], *, attempts: int = 5, base_delay: float = 0.25, max_delay: float = 4.0
) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except stripe.RateLimitError:
            if attempt == attempts:
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1))
            time.sleep(delay * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")  # pragma: no cover
