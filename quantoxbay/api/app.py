"""The API application: health, auth cookie routes (and later webhooks, downloads, embedded Stripe)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from quantoxbay import routes
from quantoxbay.api.auth import complete_login, logout
from quantoxbay.api.health import health


def api_routes() -> list[BaseRoute]:
    return [
        Route(routes.API_HEALTH, health, methods=["GET"]),
        Route(routes.API_AUTH_COMPLETE, complete_login, methods=["GET"]),
        Route(routes.API_AUTH_LOGOUT, logout, methods=["GET", "POST"]),
    ]


def build_api() -> Starlette:
    """A Starlette app with QuantoxBay's routes; Reflex mounts it in front of its own."""
    return Starlette(routes=api_routes())
