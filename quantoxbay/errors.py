"""The errors a user may be shown, below every layer so that services, the Stripe gateway and
states all import them from here (services re-export the domain ones)."""


class DomainError(Exception):
    """A rule was broken; ``str(error)`` is a message fit to show the user."""


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the asker)."""


class PermissionDenied(DomainError):
    """The current user may not do this."""


class PaymentError(DomainError):
    """A Stripe call failed; raised by ``quantoxbay.payments.gateway`` in place of the SDK's errors."""


class PaymentRefused(PaymentError):
    """Stripe refused the request (invalid parameters, a state that forbids it): retrying won't help.

    ``detail`` is what Stripe said (its message for people when it has one), ``code`` its error
    code (e.g. ``resource_already_exists``).
    """

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(f"Stripe refused the request: {detail}")
        self.detail = detail
        self.code = code


class PaymentsUnavailable(PaymentError):
    """Stripe could not be reached, or kept answering 429/5xx: nothing was done; try later."""
