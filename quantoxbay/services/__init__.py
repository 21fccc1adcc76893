"""The domain: plain Python, no Reflex import. Functions take keyword-only ``session=``."""

from quantoxbay.errors import (
    DomainError,
    NotFound,
    PaymentError,
    PaymentRefused,
    PaymentsUnavailable,
    PermissionDenied,
)

__all__ = [
    "DomainError",
    "NotFound",
    "PaymentError",
    "PaymentRefused",
    "PaymentsUnavailable",
    "PermissionDenied",
]
