"""The embedded Stripe's runtime: storage, services and the background worker."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

from .accounts import Accounts
from .checkout import Checkout
from .clock import Clock
from .config import StripeLocalConfig
from .customers import Customers
from .db import Database
from .discounts import Discounts
from .payments import Payments
from .prices import Prices
from .products import Products
from .ratelimit import RateLimiter
from .store import Store
from .transfers import Transfers
from .webhook_endpoints import WebhookEndpoints
from .webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class StripeLocal:
    """One embedded Stripe instance; ``app.state.stripe_local`` holds it.

    Tests and benchmarks use :meth:`flush_webhooks`, :meth:`sweep_now`,
    :meth:`set_rate_limit` and :attr:`dispatcher`.

    Args:
        config: The instance's settings.
    """

    def __init__(self, config: StripeLocalConfig) -> None:
        self.config = config
        self.db = Database(config.db_path)
        self.clock = Clock(self.db)
        self.dispatcher = WebhookDispatcher(self.db, config, periodic=self.sweep_now)
        self.store = Store(self.db, config, wake_dispatcher=self.dispatcher.wake, clock=self.clock)
        self.discounts = Discounts(self.store)
        self.accounts = Accounts(self.store)
        self.transfers = Transfers(self.store, self.accounts)
        self.customers = Customers(self.store)
        self.payments = Payments(self.store, self.transfers, self.customers)
        self.products = Products(self.store)
        self.prices = Prices(self.store, self.products)
        self.webhook_endpoints = WebhookEndpoints(self.store)
        self.checkout = Checkout(
            self.store, config, self.discounts, self.payments, self.products, self.prices
        )
        self.rate_limiter = RateLimiter(config.rate_limit_per_second)
        account_rate = config.account_rate_limit_per_second
        self.account_rate_limiter = RateLimiter(
            config.rate_limit_per_second if account_rate is None else account_rate
        )
        self._form_secret = self.db.meta_get_or_create("form_secret", lambda: secrets.token_hex(32)).encode()
        self._last_idempotency_purge = 0.0

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Start the webhook/sweeper thread (idempotent)."""
        if not self.dispatcher.running:
            self.dispatcher.start()

    def ensure_started(self) -> None:
        """Start the worker when ``config.start_background_worker`` allows it."""
        if self.config.start_background_worker and not self.dispatcher.running:
            self.start()

    def stop(self) -> None:
        """Stop the worker and close the database connections."""
        self.dispatcher.stop()
        self.db.close()

    # -- test and operations hooks --------------------------------------

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook is delivered or given up.

        Returns:
            True when the queue emptied within ``timeout`` seconds.
        """
        return self.dispatcher.flush(timeout)

    def sweep_now(self) -> int:
        """Run the timed jobs now: expire overdue sessions, advance test refunds,
        purge idempotency keys older than 24 h.

        Returns:
            How many sessions were expired.
        """
        expired = self.checkout.sweep_expired()
        self.payments.advance_refunds()
        self.transfers.run_due()
        if time.monotonic() - self._last_idempotency_purge > 60:
            self._last_idempotency_purge = time.monotonic()
            with self.db.transaction() as conn:
                conn.execute(
                    "DELETE FROM idempotency WHERE created_at < ?",
                    (time.time() - IDEMPOTENCY_TTL_SECONDS,),
                )
        return expired

    def advance_clock(self, seconds: float) -> dict[str, float | int]:
        """Move the instance's time forward (a test clock) and run everything now due:
        session expiry, refund transitions, fund availability, payouts and their arrival.

        Returns:
            ``{"offset": seconds ahead of the wall clock, "now": the instance's time,
            "expired": sessions expired}``.
        """
        offset = self.clock.advance(seconds)
        expired = self.sweep_now()
        # Payouts created by this sweep may already be due to arrive.
        self.transfers.run_due()
        return {"offset": offset, "now": self.clock.now(), "expired": expired}

    def set_rate_limit(self, per_second: float, account_per_second: float | None = None) -> None:
        """Change the per-endpoint rate limit at run time (0 disables it), and the account-wide
        one: to ``account_per_second``, or with the per-endpoint one when the config ties them."""
        self.rate_limiter.set_rate(per_second)
        if account_per_second is not None:
            self.account_rate_limiter.set_rate(account_per_second)
        elif self.config.account_rate_limit_per_second is None:
            self.account_rate_limiter.set_rate(per_second)

    # -- hosted page form tokens ----------------------------------------

    def form_token(self, session_id: str) -> str:
        """Return a hosted page's form token for ``session_id`` (a checkout session
        or an Account Link token)."""
        return hmac.new(self._form_secret, session_id.encode(), hashlib.sha256).hexdigest()[:32]

    def check_form_token(self, session_id: str, token: str | None) -> bool:
        """Tell whether ``token`` was issued for ``session_id``."""
        return bool(token) and hmac.compare_digest(self.form_token(session_id), str(token))
