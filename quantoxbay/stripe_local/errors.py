"""Stripe-shaped errors.

Raising :class:`StripeLocalError` anywhere below the API layer turns into the
JSON body and HTTP status Stripe would send, so that stripe-python raises the
matching exception (``InvalidRequestError``, ``CardError``, ``RateLimitError``,
``AuthenticationError``, ``IdempotencyError``).
"""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes"


class StripeLocalError(Exception):
    """An error answered to an API client in Stripe's format.

    Attributes:
        status: The HTTP status code.
        type: Stripe's error type (``invalid_request_error``, ``card_error``, ...).
        message: A human-readable message.
        code: Stripe's error code, if any.
        param: The request parameter at fault, if any.
        decline_code: For card errors, the issuer's decline code.
        extra: More fields for the error body (e.g. ``payment_intent``).
        extra_headers: More response headers (``Stripe-Rate-Limited-Reason``).
    """

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.extra_headers = extra_headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """Return the JSON body Stripe sends for this error."""
        # Stripe leaves out the fields that have no value rather than sending null.
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"{DOC_BASE}/{self.code.replace('_', '-')}"
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if self.param:
            error["param"] = self.param
        if request_id:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        error.update(self.extra)
        return {"error": error}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeLocalError:
    """Build a 400 ``invalid_request_error`` (SDK: ``InvalidRequestError``)."""
    return StripeLocalError(status, "invalid_request_error", message, code=code, param=param)


def missing_param(param: str) -> StripeLocalError:
    """Build Stripe's "Missing required param" error."""
    return invalid_request(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeLocalError:
    """Build Stripe's "Received unknown parameter" error."""
    return invalid_request(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def resource_missing(object_name: str, object_id: str, *, param: str = "id") -> StripeLocalError:
    """Build the 404 Stripe answers for an unknown id (SDK: ``InvalidRequestError``)."""
    return invalid_request(
        f"No such {object_name}: '{object_id}'", param=param, code="resource_missing", status=404
    )


def authentication_error(message: str) -> StripeLocalError:
    """Build a 401 (SDK: ``AuthenticationError``).

    Stripe's body for a bad key carries ``type: invalid_request_error``; the
    status is what makes the SDK raise ``AuthenticationError``.
    """
    return StripeLocalError(401, "invalid_request_error", message)


def rate_limit_error(reason: str = "endpoint-rate") -> StripeLocalError:
    """Build Stripe's 429 (SDK: ``RateLimitError``); ``reason`` is its
    ``Stripe-Rate-Limited-Reason`` header (``global-rate`` or ``endpoint-rate``)."""
    return StripeLocalError(
        429,
        "invalid_request_error",
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        extra_headers={"Stripe-Rate-Limited-Reason": reason},
    )


def idempotency_error(message: str, *, status: int = 400) -> StripeLocalError:
    """Build an ``idempotency_error`` (SDK: ``IdempotencyError`` on 400)."""
    return StripeLocalError(status, "idempotency_error", message)


def api_error(message: str = "An unknown error occurred.") -> StripeLocalError:
    """Build a 500 ``api_error`` (SDK: ``APIError``)."""
    return StripeLocalError(500, "api_error", message)
