"""The API application: health, auth cookies, Stripe webhook, downloads, and the embedded Stripe."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from quantoxbay import routes
from quantoxbay.api.auth import complete_login, logout
from quantoxbay.api.covers import cover
from quantoxbay.api.downloads import download
from quantoxbay.api.health import health
from quantoxbay.api.page_meta import robots, sitemap
from quantoxbay.api.webhook import stripe_connect_webhook, stripe_webhook
from quantoxbay.settings import Settings, get_settings


def api_routes() -> list[BaseRoute]:
    return [
        Route(routes.API_HEALTH, health, methods=["GET"]),
        Route(routes.API_AUTH_COMPLETE, complete_login, methods=["GET"]),
        # POST only: the handler answers the others with 405 itself, as they would otherwise fall
        # through to the Reflex app mounted behind this one.
        Route(routes.API_AUTH_LOGOUT, logout, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        Route(routes.API_STRIPE_WEBHOOK, stripe_webhook, methods=["POST"]),
        Route(routes.API_STRIPE_CONNECT_WEBHOOK, stripe_connect_webhook, methods=["POST"]),
        Route(routes.API_DOWNLOADS + "/{token}", download, methods=["GET"]),
        Route(routes.API_COVERS + "/{key:path}", cover, methods=["GET", "HEAD"]),
        Route(routes.SITEMAP, sitemap, methods=["GET", "HEAD"]),
        Route(routes.ROBOTS, robots, methods=["GET", "HEAD"]),
    ]


def build_stripe_local(settings: Settings, *, deliver_webhooks: bool = True) -> Starlette:
    """The embedded Stripe, delivering webhooks to this same server (or, without
    ``deliver_webhooks``, keeping them queued for the instance that does)."""
    from quantoxbay.stripe_local import StripeLocalConfig, create_stripe_local_app

    return create_stripe_local_app(
        StripeLocalConfig(
            db_path=settings.stripe_local_db_path,
            secret_key=settings.stripe_local_secret_key,
            public_base_url=f"{settings.public_url}{routes.STRIPE_LOCAL_MOUNT}",
            webhook_url=settings.stripe_local_webhook_url,
            webhook_secret=settings.stripe_webhook_secret,
            connect_webhook_url=settings.stripe_local_connect_webhook_url,
            connect_webhook_secret=settings.stripe_connect_webhook_secret,
            rate_limit_per_second=settings.stripe_local_rate_limit,
            # A developer's server restarts often: retry within seconds rather than on
            # Stripe's sandbox schedule (hours), so a restart loses no order for long.
            webhook_max_attempts=8,
            webhook_backoff_base_seconds=2.0,
            webhook_backoff_max_seconds=600.0,
            start_background_worker=deliver_webhooks,
        )
    )


def build_api(settings: Settings | None = None) -> Starlette:
    """A Starlette app with QuantoxBay's routes; Reflex mounts it in front of its own."""
    settings = settings or get_settings()
    api_routes_list = api_routes()
    api = Starlette(routes=api_routes_list)
    if settings.uses_embedded_stripe:
        stripe_local = build_stripe_local(settings)
        api.router.routes.append(Mount(routes.STRIPE_LOCAL_MOUNT, app=stripe_local))
        api.state.stripe_local = stripe_local.state.stripe_local
    return api
