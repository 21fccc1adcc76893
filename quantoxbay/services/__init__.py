"""The domain: plain Python, no Reflex import. Functions take keyword-only ``session=``."""


class DomainError(Exception):
    """A rule was broken; ``str(error)`` is a message fit to show the user."""


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the asker)."""


class PermissionDenied(DomainError):
    """The current user may not do this."""
