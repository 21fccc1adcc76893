"""Assembly of the embedded Stripe's Starlette app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from .api import api_routes
from .checkout_page import page_routes
from .config import StripeLocalConfig
from .connect_page import connect_page_routes
from .runtime import StripeLocal


def create_stripe_local_app(config: StripeLocalConfig) -> Starlette:
    """Build the embedded Stripe as a Starlette app.

    The app serves the API under ``/v1``, the hosted checkout under
    ``/checkout/{id}`` and test helpers under ``/_local``. Its
    :class:`~.runtime.StripeLocal` is ``app.state.stripe_local``.

    The background worker (webhook delivery, expiry sweep) starts on the app's
    lifespan, and also on the first request: Starlette does not run the
    lifespan of a mounted sub-app, so an app mounted at ``/stripe-local``
    should call ``app.state.stripe_local.start()`` from the host's lifespan to
    resume pending deliveries before any request arrives.

    Args:
        config: The instance's settings.

    Returns:
        The Starlette app.
    """
    runtime = StripeLocal(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        runtime.ensure_started()
        try:
            yield
        finally:
            runtime.dispatcher.stop()

    app = Starlette(
        routes=[*api_routes(runtime), *page_routes(runtime), *connect_page_routes(runtime)], lifespan=lifespan
    )
    app.state.stripe_local = runtime
    return app
