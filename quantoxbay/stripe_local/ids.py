"""Identifiers in Stripe's style (``cs_test_...``, ``evt_...``)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int = 24) -> str:
    """Return ``length`` random characters from ``[A-Za-z0-9]``."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """Return a fresh id such as ``cs_test_a1B2...``.

    Args:
        prefix: The id's prefix without the trailing underscore
            (``"cs_test"``, ``"evt"``, ``"req"``).
        length: Number of random characters after the prefix.
    """
    return f"{prefix}_{random_token(length)}"


def new_promotion_code() -> str:
    """Return a customer-facing promotion code like ``QX7K2M9P``."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))
