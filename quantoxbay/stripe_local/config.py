"""Configuration of the embedded Stripe."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: The API version the embedded Stripe speaks and stamps on events. It is the
#: version pinned by stripe-python 16.1.0 (``stripe._api_version``).
API_VERSION = "2026-10-28.endive"

#: Stripe's sandbox webhook retries: the first attempt and three retries over a few hours
#: with exponential backoff (30 min, 1 h, 2 h after each failure).
SANDBOX_WEBHOOK_ATTEMPTS = 4
SANDBOX_WEBHOOK_BACKOFF_BASE_SECONDS = 30 * 60.0
SANDBOX_WEBHOOK_BACKOFF_MAX_SECONDS = 2 * 3600.0

#: The embedded Stripe's secret key: this prefix, then at least this many random characters.
SECRET_KEY_PREFIX = "sk_test_"  # noqa: S105  (a prefix, not a key)
SECRET_KEY_MIN_RANDOM = 32

#: Event types delivered to the webhook endpoint by default. Every event is
#: stored (and listed by ``GET /v1/events``) whatever this says; only these are
#: POSTed, like a Stripe endpoint subscribed to what a shop needs. Use
#: ``("*",)`` to deliver every event.
DEFAULT_ENABLED_EVENTS: tuple[str, ...] = (
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.closed",
)

#: Event types delivered to the Connect endpoint (``connect_webhook_url``) by
#: default: the ones that happen on connected accounts and that a marketplace
#: follows. Platform-side Connect events (``transfer.*``,
#: ``application_fee.*``) go to the platform endpoint only when listed in
#: ``webhook_enabled_events``.
DEFAULT_CONNECT_ENABLED_EVENTS: tuple[str, ...] = (
    "account.updated",
    "account.application.deauthorized",
    "payout.created",
    "payout.paid",
    "payout.failed",
    "payout.updated",
    "balance.available",
)


def _matches(patterns: tuple[str, ...], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


@dataclass(frozen=True, kw_only=True)
class StripeLocalConfig:
    """Settings of one embedded Stripe instance.

    Attributes:
        db_path: The SQLite file holding all state (created when missing).
        secret_key: The only API key the instance accepts (``sk_test_`` and at
            least 32 random characters), on ``/v1`` and ``/_local`` alike. The
            hosted checkout page needs no key: it acts on its own session only.
        public_base_url: The URL the app is reachable at from a browser, without
            a trailing slash, e.g. ``http://localhost:3000/stripe-local``.
            ``session.url`` is ``f"{public_base_url}/checkout/{id}"``.
        webhook_url: Where events are POSTed; ``None`` stores events without
            delivering them.
        webhook_secret: The ``whsec_...`` secret events are signed with (required).
        rate_limit_per_second: Requests per second allowed on each API endpoint
            (method + path template); ``0`` turns rate limiting off.
        account_rate_limit_per_second: Requests per second allowed across all
            API endpoints together (Stripe's sandbox: 25); ``None`` (default)
            uses ``rate_limit_per_second``, so raising that one for tests or
            benchmarks raises both; ``0`` turns it off.
        webhook_max_attempts: Delivery attempts per event before giving up.
        webhook_backoff_base_seconds: Delay before the first retry; it doubles
            with each further attempt.
        webhook_backoff_max_seconds: Upper bound of the retry delay.
            The three default to Stripe's sandbox schedule: a failed delivery
            is retried three times over a few hours with exponential backoff
            (here after 30 min, 1 h and 2 h; Stripe does not publish the exact
            intervals). Tests and a developer's own server set a fast schedule
            (e.g. 8 attempts from 2 s, at most 10 min apart).
        webhook_timeout_seconds: Timeout of one delivery attempt.
        webhook_concurrency: Deliveries in flight at once.
        webhook_enabled_events: Event types that are delivered (``"*"`` = all).
        sweep_interval_seconds: How often open sessions past ``expires_at`` are
            expired (and other timed transitions happen).
        poll_interval_seconds: Longest sleep of the background worker.
        connect_webhook_url: Where events that happen on connected accounts
            (they carry ``account``) are POSTed; ``None`` stores them without
            delivering.
        connect_webhook_secret: The Connect endpoint's ``whsec_...`` secret
            (required when ``connect_webhook_url`` is set).
        connect_webhook_enabled_events: Connected-account event types that are
            delivered to the Connect endpoint (``"*"`` = all).
        display_name: The business name shown on the hosted checkout page.
        start_background_worker: Start the delivery/sweeper thread on the app's
            lifespan (or its first request). Turn off to drive it by hand.
    """

    db_path: Path
    secret_key: str = field(repr=False)
    webhook_secret: str
    public_base_url: str = "http://localhost:3000/stripe-local"
    webhook_url: str | None = "http://localhost:3000/api/stripe/webhook"
    rate_limit_per_second: float = 25.0
    account_rate_limit_per_second: float | None = None
    webhook_max_attempts: int = SANDBOX_WEBHOOK_ATTEMPTS
    webhook_backoff_base_seconds: float = SANDBOX_WEBHOOK_BACKOFF_BASE_SECONDS
    webhook_backoff_max_seconds: float = SANDBOX_WEBHOOK_BACKOFF_MAX_SECONDS
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 4
    webhook_enabled_events: tuple[str, ...] = field(default=DEFAULT_ENABLED_EVENTS)
    connect_webhook_url: str | None = None
    connect_webhook_secret: str | None = field(default=None, repr=False)
    connect_webhook_enabled_events: tuple[str, ...] = field(default=DEFAULT_CONNECT_ENABLED_EVENTS)
    sweep_interval_seconds: float = 1.0
    poll_interval_seconds: float = 0.25
    display_name: str = "QuantoxBay"
    start_background_worker: bool = True

    def __post_init__(self) -> None:
        """Normalise the base URL and check the numbers make sense."""
        object.__setattr__(self, "db_path", Path(self.db_path))
        object.__setattr__(self, "public_base_url", self.public_base_url.rstrip("/"))
        if (
            not self.secret_key.startswith(SECRET_KEY_PREFIX)
            or len(self.secret_key) < len(SECRET_KEY_PREFIX) + SECRET_KEY_MIN_RANDOM
        ):
            raise ValueError(
                f"secret_key must be {SECRET_KEY_PREFIX} followed by at least {SECRET_KEY_MIN_RANDOM} characters"
            )
        if not self.webhook_secret:
            raise ValueError("webhook_secret must not be empty")
        if self.connect_webhook_url and not self.connect_webhook_secret:
            raise ValueError("connect_webhook_secret is required when connect_webhook_url is set")
        if self.webhook_max_attempts < 1:
            raise ValueError("webhook_max_attempts must be at least 1")
        if self.webhook_concurrency < 1:
            raise ValueError("webhook_concurrency must be at least 1")
        if self.rate_limit_per_second < 0:
            raise ValueError("rate_limit_per_second must not be negative")
        if self.account_rate_limit_per_second is not None and self.account_rate_limit_per_second < 0:
            raise ValueError("account_rate_limit_per_second must not be negative")

    def delivers(self, event_type: str) -> bool:
        """Tell whether events of ``event_type`` go to the webhook endpoint.

        Args:
            event_type: An event type such as ``checkout.session.completed``.

        Returns:
            True when a webhook URL is set and the type is enabled.
        """
        return bool(self.webhook_url) and _matches(self.webhook_enabled_events, event_type)

    def delivers_connect(self, event_type: str) -> bool:
        """Tell whether connected-account events of ``event_type`` go to the Connect endpoint.

        Args:
            event_type: An event type such as ``account.updated``.

        Returns:
            True when a Connect webhook URL is set and the type is enabled.
        """
        return bool(self.connect_webhook_url) and _matches(self.connect_webhook_enabled_events, event_type)
