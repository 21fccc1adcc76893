"""Webhook endpoints: ``POST/GET /v1/webhook_endpoints``, ``GET/POST/DELETE /v1/webhook_endpoints/{id}``.

Besides the endpoint the configuration names (``webhook_url``, the shop's own),
events go to every registered endpoint that is ``enabled`` and subscribed to
the event's type (``enabled_events``, ``*`` for all), signed with that
endpoint's own ``whsec_...`` secret, which only the create response shows (as
on Stripe). An endpoint created with ``connect=true`` receives the events of
connected accounts instead of the platform's. A delivery names its endpoint
as ``endpoint:{we_id}`` in the queue; the dispatcher looks URL and secret up
when it delivers, so an endpoint deleted or disabled meanwhile gets nothing.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from .db import Record
from .errors import invalid_request
from .ids import new_id
from .params import check_allowed, get_bool, get_list, get_metadata, get_str, update_metadata
from .store import WEBHOOK_ENDPOINT, Store, previous_attributes

MAX_ENDPOINTS = 16  # Stripe's limit per account

CREATE_PARAMS = {"url", "enabled_events", "description", "metadata", "api_version", "connect", "expand"}
UPDATE_PARAMS = {"url", "enabled_events", "description", "metadata", "disabled", "expand"}


def _url(params: dict[str, Any]) -> str:
    url = get_str(params, "url", required=True, max_length=5000) or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_request("Invalid URL: must be an http or https URL.", param="url", code="url_invalid")
    return url


def _events(params: dict[str, Any]) -> list[str]:
    events = [str(e) for e in get_list(params, "enabled_events") if e]
    if not events:
        raise invalid_request("Missing required param: enabled_events.", param="enabled_events")
    if "*" in events and len(events) > 1:
        raise invalid_request("You cannot specify other events together with '*'.", param="enabled_events")
    return events


class WebhookEndpoints:
    """Webhook endpoint operations and the list of endpoints an event goes to.

    Args:
        store: The object store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def view(record: Record) -> dict[str, Any]:
        """Return an endpoint as the API shows it (without its secret)."""
        return dict(record.data)

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/webhook_endpoints``: the answer carries ``secret``, as on Stripe."""
        check_allowed(params, CREATE_PARAMS)
        url = _url(params)
        events = _events(params)
        api_version = get_str(params, "api_version")
        data: dict[str, Any] = {
            "id": new_id("we", 24),
            "object": WEBHOOK_ENDPOINT,
            "api_version": api_version,
            "application": None,
            "created": self.store.now(),
            "description": get_str(params, "description", max_length=5000),
            "enabled_events": events,
            "livemode": False,
            "metadata": get_metadata(params),
            "status": "enabled",
            "url": url,
        }
        secret = f"whsec_{secrets.token_urlsafe(32)}"
        connect = bool(get_bool(params, "connect"))
        with self.store.db.transaction():
            if len(self.store.db.find(WEBHOOK_ENDPOINT, "all")) >= MAX_ENDPOINTS:
                raise invalid_request(
                    f"You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints."
                )
            self.store.insert(
                WEBHOOK_ENDPOINT, data, internal={"secret": secret, "connect": connect}, lookup="all"
            )
        return {**data, "secret": secret}

    def retrieve(self, endpoint_id: str) -> dict[str, Any]:
        """``GET /v1/webhook_endpoints/{id}``."""
        return self.view(self.store.require(WEBHOOK_ENDPOINT, endpoint_id, param="webhook_endpoint"))

    def update(self, endpoint_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/webhook_endpoints/{id}``: ``url``, ``enabled_events``, ``description``,
        ``metadata`` (merged), ``disabled``."""
        check_allowed(params, UPDATE_PARAMS)
        with self.store.db.transaction():
            record = self.store.require(WEBHOOK_ENDPOINT, endpoint_id, param="webhook_endpoint")
            data = record.data
            changes: dict[str, Any] = {}
            if "url" in params:
                changes["url"] = _url(params)
            if "enabled_events" in params:
                changes["enabled_events"] = _events(params)
            if "description" in params:
                changes["description"] = get_str(params, "description", max_length=5000)
            disabled = get_bool(params, "disabled")
            if disabled is not None:
                changes["status"] = "disabled" if disabled else "enabled"
            changes["metadata"] = update_metadata(data["metadata"], params)
            if previous_attributes(data, changes):
                data.update(changes)
                self.store.update(record)
            return self.view(record)

    def delete(self, endpoint_id: str) -> dict[str, Any]:
        """``DELETE /v1/webhook_endpoints/{id}``."""
        with self.store.db.transaction():
            record = self.store.require(WEBHOOK_ENDPOINT, endpoint_id, param="webhook_endpoint")
            self.store.db.delete(WEBHOOK_ENDPOINT, record.id)
        return {"id": record.id, "object": WEBHOOK_ENDPOINT, "deleted": True}

    def list_endpoints(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/webhook_endpoints`` (newest first)."""
        check_allowed(params, {"limit", "starting_after", "ending_before", "expand"})
        records, has_more = self.store.page_of(WEBHOOK_ENDPOINT, params)
        return [self.view(r) for r in records], has_more
