"""Webhook delivery: a persisted queue worked by a background thread.

Every event meant for the endpoint gets a row in ``deliveries`` in the same
transaction as the event. The worker claims due rows with a lease (so several
processes sharing the file never deliver one row twice at once), POSTs the
event signed the way ``stripe.WebhookSignature`` checks it, and on a non-2xx
answer, a timeout or a connection error schedules a retry with exponential
backoff until ``webhook_max_attempts``. Pending rows survive a restart.

Deliveries run on a pool of ``webhook_concurrency`` threads without the
worker waiting for them, and one destination (the configured endpoint, or a
registered one, ``endpoint:{we_id}``) holds at most ``concurrency - 1`` of
them at once: a slow receiver never holds back another's deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from .config import StripeLocalConfig
from .db import Database
from .store import DESTINATION_PREFIX, WEBHOOK_ENDPOINT

log = logging.getLogger(__name__)


def sign_payload(payload: str, secret: str, timestamp: int) -> str:
    """Return a ``Stripe-Signature`` header value for ``payload``.

    The scheme is stripe-python's ``WebhookSignature``: HMAC-SHA256, keyed
    with the secret as UTF-8, over ``f"{timestamp}.{payload}"``, hex-encoded.

    Args:
        payload: The exact request body.
        secret: The endpoint's ``whsec_...`` secret.
        timestamp: Unix time of this attempt.
    """
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class Attempt:
    """One claimed delivery."""

    id: int
    event_id: str
    url: str
    attempts: int


class WebhookDispatcher:
    """Delivers queued events and runs periodic jobs on one background thread.

    Args:
        db: The database holding the queue.
        config: Webhook URL, secret, retry and timing settings.
        periodic: Called on each sweep tick (expiry sweep and other timed work).
    """

    def __init__(
        self,
        db: Database,
        config: StripeLocalConfig,
        periodic: Callable[[], object] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.periodic = periodic
        self.worker_id = uuid.uuid4().hex
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._next_sweep = 0.0
        # Deliveries running on the pool, per destination (``deliveries.url``).
        self._in_flight: dict[str, int] = {}
        self._flight_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background thread (no-op when running)."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="stripe-local-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, wait for it, and release this worker's leases."""
        with self._lock:
            thread = self._thread
            self._stop.set()
            self._wake.set()
            if thread is not None:
                thread.join(timeout)
            self._thread = None
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._client is not None:
                self._client.close()
                self._client = None
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET locked_until = 0, locked_by = NULL"
                " WHERE status = 'pending' AND locked_by = ?",
                (self.worker_id,),
            )

    def wake(self) -> None:
        """Make the worker look at the queue now."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                if self.periodic is not None and time.monotonic() >= self._next_sweep:
                    self._next_sweep = time.monotonic() + self.config.sweep_interval_seconds
                    self.periodic()
                busy = self.deliver_due(wait=False) > 0
            except Exception:  # the worker must survive any one failure
                log.exception("stripe_local background worker failed; continuing")
            if busy:
                continue
            self._wake.wait(self._idle_timeout())
            self._wake.clear()

    def _idle_timeout(self) -> float:
        wait = self.config.poll_interval_seconds
        row = (
            self.db.connection()
            .execute(
                "SELECT MIN(MAX(next_attempt_at, locked_until)) AS t FROM deliveries WHERE status = 'pending'"
            )
            .fetchone()
        )
        if row and row["t"] is not None:
            wait = min(wait, max(0.0, row["t"] - time.time()))
        if self.periodic is not None:
            wait = min(wait, max(0.0, self._next_sweep - time.monotonic()))
        return max(wait, 0.005)

    # -- delivery --------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            # TCP_NODELAY: headers and body go out in two writes; with Nagle's
            # algorithm the body waits for the receiver's delayed ACK (~40 ms).
            transport = httpx.HTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                limits=httpx.Limits(max_connections=self.config.webhook_concurrency * 2),
            )
            self._client = httpx.Client(
                transport=transport,
                timeout=self.config.webhook_timeout_seconds,
                follow_redirects=False,
            )
        return self._client

    def _claim(self, limit: int, busy: dict[str, int] | None = None) -> list[Attempt]:
        """Lease up to ``limit`` due deliveries, leaving out destinations at their cap."""
        now = time.time()
        lease = now + self.config.webhook_timeout_seconds + 5.0
        cap = max(1, self.config.webhook_concurrency - 1)
        taken = dict(busy or {})
        claimed: list[Attempt] = []
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, event_id, url, attempts FROM deliveries"
                " WHERE status = 'pending' AND next_attempt_at <= ? AND locked_until <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?",
                (now, now, limit * 4),
            ).fetchall()
            for row in rows:
                if len(claimed) >= limit:
                    break
                if busy is not None and taken.get(row["url"], 0) >= cap:
                    continue
                taken[row["url"]] = taken.get(row["url"], 0) + 1
                conn.execute(
                    "UPDATE deliveries SET locked_until = ?, locked_by = ? WHERE id = ?",
                    (lease, self.worker_id, row["id"]),
                )
                claimed.append(Attempt(row["id"], row["event_id"], row["url"], row["attempts"]))
        return claimed

    def deliver_due(self, *, wait: bool = True) -> int:
        """Claim and deliver the deliveries that are due now.

        Args:
            wait: Wait for the attempts (the caller's thread, or the pool); the
                background worker passes False and hands them to the pool.

        Returns:
            How many attempts were started.
        """
        if wait:
            batch = self._claim(self.config.webhook_concurrency * 8)
            for attempt in batch:
                self._attempt(attempt)
            return len(batch)
        with self._flight_lock:
            running = sum(self._in_flight.values())
            free = self.config.webhook_concurrency - running
            if free <= 0:
                return 0
            batch = self._claim(free, busy=dict(self._in_flight))
            for attempt in batch:
                self._in_flight[attempt.url] = self._in_flight.get(attempt.url, 0) + 1
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.config.webhook_concurrency, thread_name_prefix="stripe-local-delivery"
            )
        for attempt in batch:
            self._pool.submit(self._attempt_in_pool, attempt)
        return len(batch)

    def _attempt_in_pool(self, attempt: Attempt) -> None:
        try:
            self._attempt(attempt)
        except Exception:  # a failed attempt must not leak its slot
            log.exception("stripe_local webhook attempt %s failed", attempt.id)
        finally:
            with self._flight_lock:
                left = self._in_flight.get(attempt.url, 1) - 1
                if left > 0:
                    self._in_flight[attempt.url] = left
                else:
                    self._in_flight.pop(attempt.url, None)
            self._wake.set()

    def _attempt(self, attempt: Attempt) -> None:
        row = (
            self.db.connection()
            .execute("SELECT data FROM objects WHERE id = ? AND type = 'event'", (attempt.event_id,))
            .fetchone()
        )
        if row is None:
            self._finish(attempt, "failed", None, "event not found")
            return
        event = json.loads(row["data"])
        event["pending_webhooks"] = max(1, event.get("pending_webhooks") or 1)
        body = json.dumps(event, indent=2)
        if attempt.url.startswith(DESTINATION_PREFIX):
            registered = self.db.get(WEBHOOK_ENDPOINT, attempt.url.removeprefix(DESTINATION_PREFIX))
            if registered is None or registered.data["status"] != "enabled":
                self._finish(attempt, "failed", None, "webhook endpoint deleted or disabled")
                return
            self._post(attempt, body, registered.data["url"], registered.internal["secret"])
            return
        # Events on connected accounts go to the Connect endpoint, signed with its own secret.
        connect = bool(event.get("account"))
        secret = (self.config.connect_webhook_secret if connect else None) or self.config.webhook_secret
        # The endpoint is today's configuration: a restart with another URL redirects
        # the deliveries still queued.
        url = (self.config.connect_webhook_url if connect else self.config.webhook_url) or attempt.url
        self._post(attempt, body, url, secret)

    def _post(self, attempt: Attempt, body: str, url: str, secret: str) -> None:
        """POST one signed attempt and record its outcome."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign_payload(body, secret, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
        }
        status: int | None = None
        error: str | None = None
        try:
            response = self._http().post(url, content=body.encode("utf-8"), headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # any failure is a failed attempt
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self._finish(attempt, "delivered", status, None)
        else:
            log.info("webhook %s to %s failed: %s", attempt.event_id, url, error)
            self._finish(attempt, "retry", status, error)

    def backoff(self, attempts: int) -> float:
        """Delay before the next attempt after ``attempts`` failures."""
        delay = self.config.webhook_backoff_base_seconds * (2 ** max(0, attempts - 1))
        return min(delay, self.config.webhook_backoff_max_seconds)

    def _finish(self, attempt: Attempt, outcome: str, status: int | None, error: str | None) -> None:
        attempts = attempt.attempts + 1
        now = time.time()
        with self.db.transaction() as conn:
            if outcome == "delivered":
                conn.execute(
                    "UPDATE deliveries SET status = 'delivered', attempts = ?, locked_until = 0,"
                    " locked_by = NULL, last_response_status = ?, last_error = NULL,"
                    " finished_at = ? WHERE id = ?",
                    (attempts, status, now, attempt.id),
                )
                self._decrement_pending(attempt.event_id)
                return
            final = outcome == "failed" or attempts >= self.config.webhook_max_attempts
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
                " locked_until = 0, locked_by = NULL, last_response_status = ?, last_error = ?,"
                " finished_at = ? WHERE id = ?",
                (
                    "failed" if final else "pending",
                    attempts,
                    now if final else now + self.backoff(attempts),
                    status,
                    error,
                    now if final else None,
                    attempt.id,
                ),
            )

    def _decrement_pending(self, event_id: str) -> None:
        record = self.db.get("event", event_id)
        if record is not None:
            record.data["pending_webhooks"] = max(0, record.data["pending_webhooks"] - 1)
            self.db.update(record)

    # -- inspection ------------------------------------------------------

    def pending_count(self) -> int:
        """Return how many deliveries still wait (due or backing off)."""
        row = (
            self.db.connection()
            .execute("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'pending'")
            .fetchone()
        )
        return int(row["n"])

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is pending (delivered or given up).

        When the background thread is not running, due deliveries are made on
        the calling thread.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            True when the queue emptied in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.pending_count() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            if self.running:
                self.wake()
                time.sleep(0.01)
            elif self.deliver_due() == 0:
                time.sleep(0.01)

    def deliveries(self, event_id: str | None = None) -> list[dict[str, object]]:
        """Return delivery rows (for tests and the admin), oldest first."""
        sql = "SELECT * FROM deliveries"
        args: tuple[object, ...] = ()
        if event_id:
            sql += " WHERE event_id = ?"
            args = (event_id,)
        rows = self.db.connection().execute(sql + " ORDER BY id", args).fetchall()
        return [dict(r) for r in rows]
