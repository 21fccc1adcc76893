"""Object storage and event emission shared by the API areas."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .config import API_VERSION, StripeLocalConfig
from .db import Database, Record
from .errors import resource_missing
from .ids import new_id
from .params import get_int, get_str
from .shapes import conform


@dataclass(frozen=True)
class RequestInfo:
    """The API request behind a change, as events report it.

    Attributes:
        id: The ``req_...`` id, or None for changes made outside the API
            (the hosted page, the expiry sweeper).
        idempotency_key: The request's Idempotency-Key, if any.
    """

    id: str | None = None
    idempotency_key: str | None = None


NO_REQUEST = RequestInfo()

#: Registered webhook endpoints (``/v1/webhook_endpoints``, see :mod:`.webhook_endpoints`).
WEBHOOK_ENDPOINT = "webhook_endpoint"
#: How a queued delivery names a registered endpoint (``deliveries.url``); the
#: dispatcher looks its URL and secret up when it delivers.
DESTINATION_PREFIX = "endpoint:"


def subscribed(enabled_events: list[str], event_type: str) -> bool:
    """Tell whether an endpoint's ``enabled_events`` take ``event_type`` (``*``: all)."""
    return "*" in enabled_events or event_type in enabled_events


class Store:
    """Typed access to stored objects, plus event creation.

    Args:
        db: The database.
        config: The instance's configuration (decides webhook delivery).
        wake_dispatcher: Called after a commit that queued webhook deliveries.
        clock: The instance's time source (a fresh one on ``db`` when omitted).
    """

    def __init__(
        self,
        db: Database,
        config: StripeLocalConfig,
        wake_dispatcher: Callable[[], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.wake_dispatcher = wake_dispatcher
        self.clock = clock or Clock(db)

    def now(self) -> int:
        """Return the instance's current Unix time in whole seconds (test clock included)."""
        return self.clock.now()

    def page_of(
        self,
        type: str,
        params: dict[str, Any],
        *,
        lookups: list[str] | None = None,
        lookup_prefix: str | None = None,
        accept: Callable[[Record], bool] | None = None,
    ) -> tuple[list[Record], bool]:
        """One page of a list endpoint, from its ``limit`` (1-100, default 10), ``starting_after``
        and ``ending_before`` parameters (``Database.page`` for the filters)."""
        return self.db.page(
            type,
            limit=get_int(params, "limit", minimum=1, maximum=100) or 10,
            starting_after=get_str(params, "starting_after"),
            ending_before=get_str(params, "ending_before"),
            lookups=lookups,
            lookup_prefix=lookup_prefix,
            accept=accept,
        )

    def get(self, type: str, object_id: str) -> Record | None:
        """Return the object, or None."""
        return self.db.get(type, object_id)

    def require(self, type: str, object_id: str | None, *, param: str = "id") -> Record:
        """Return the object or raise Stripe's ``resource_missing`` 404."""
        record = self.db.get(type, object_id) if object_id else None
        if record is None:
            raise resource_missing(type, object_id or "", param=param)
        return record

    def insert(
        self,
        type: str,
        data: dict[str, Any],
        *,
        internal: dict[str, Any] | None = None,
        lookup: str | None = None,
    ) -> Record:
        """Store a new object; ``data`` must hold ``id`` and ``created``."""
        record = Record(
            id=data["id"],
            type=type,
            data=conform(type, data),
            internal=internal or {},
            lookup=lookup,
            created=int(data.get("created") or self.now()),
        )
        return self.db.insert(record)

    def update(self, record: Record) -> Record:
        """Write back a changed object."""
        return self.db.update(record)

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        request: RequestInfo,
        *,
        account: str | None = None,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store an event for ``obj`` and queue its webhook delivery.

        Must run inside a transaction so the event commits with the change it
        reports.

        Args:
            event_type: E.g. ``checkout.session.completed``.
            obj: The object as the API returns it (it is copied).
            request: The request behind the change.
            account: For an event that happens on a connected account, its
                ``acct_...`` id: the event carries ``account`` and goes to the
                Connect endpoint (``connect_webhook_url``) instead of the
                platform's.
            previous: For an ``*.updated`` event, the changed fields' former
                values (``data.previous_attributes``).

        Returns:
            The event object.
        """
        if account:
            url = self.config.connect_webhook_url if self.config.delivers_connect(event_type) else None
        else:
            url = self.config.webhook_url if self.config.delivers(event_type) else None
        destinations = [url] if url is not None else []
        for endpoint in self.db.find(WEBHOOK_ENDPOINT, "all"):
            if (
                endpoint.data["status"] == "enabled"
                and bool(endpoint.internal.get("connect")) == bool(account)
                and subscribed(endpoint.data["enabled_events"], event_type)
            ):
                destinations.append(DESTINATION_PREFIX + endpoint.id)
        delivered = bool(destinations)
        created = self.now()
        event: dict[str, Any] = {
            "id": new_id("evt", 24),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": len(destinations),
            "request": {"id": request.id, "idempotency_key": request.idempotency_key},
            "type": event_type,
        }
        if previous is not None:
            event["data"]["previous_attributes"] = copy.deepcopy(previous)
        if account:
            event["account"] = account
        self.insert("event", event, lookup=event_type)
        if delivered:
            # Delivery timing is wall-clock time: retries are about the real network.
            self.db.connection().executemany(
                "INSERT INTO deliveries (event_id, url, status, next_attempt_at, created_at)"
                " VALUES (?, ?, 'pending', ?, ?)",
                [(event["id"], destination, time.time(), time.time()) for destination in destinations],
            )
            if self.wake_dispatcher is not None:
                self.db.after_commit(self.wake_dispatcher)
        return event


def previous_attributes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The former values of the fields ``changes`` alters (``data.previous_attributes``).

    For a hash such as ``metadata`` Stripe names the keys that changed only: removed
    or changed keys with their old value, added keys as null.
    """
    previous: dict[str, Any] = {}
    for name, new in changes.items():
        old = current.get(name)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and name == "metadata":
            previous[name] = {k: old.get(k) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
        else:
            previous[name] = copy.deepcopy(old)
    return previous


def changes_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``data.previous_attributes`` of an object changed from ``before`` to ``after``: the
    former value of every top-level field that differs (``metadata`` key by key)."""
    return previous_attributes(before, {k: v for k, v in after.items() if before.get(k) != v})
