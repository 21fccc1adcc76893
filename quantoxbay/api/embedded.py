"""The embedded Stripe for command-line work (seeding, onboarding a seller) while no app serves it.

The embedded Stripe keeps its state in DATA_DIR (its own SQLite file), so an instance started here
for a moment and the app's own later (or at the same time: the file is shared safely) see the same
accounts. Its webhook deliveries stay queued for the app's instance to make.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from quantoxbay.api.app import build_stripe_local
from quantoxbay.settings import Settings

STARTUP_TIMEOUT_SECONDS = 15.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_embedded_stripe(settings: Settings) -> Iterator[Settings]:
    """Serve the install's embedded Stripe on a loopback port for the duration; yields settings
    whose ``stripe_api_base`` points at it."""
    if not settings.uses_embedded_stripe:
        raise RuntimeError("the embedded Stripe runs only without STRIPE_SECRET_KEY")
    port = _free_port()
    app = build_stripe_local(settings, deliver_webhooks=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="embedded-stripe", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the embedded Stripe did not start")
        time.sleep(0.05)
    try:
        yield settings.model_copy(update={"stripe_api_base": f"http://127.0.0.1:{port}"})
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def complete_test_onboarding(settings: Settings, stripe_account_id: str) -> None:
    """Fill in the embedded Stripe's onboarding form for an account with its standard test data
    (what a seller does in the browser), so a demo or test seller can take charges."""
    response = httpx.post(
        f"{settings.stripe_api_base}/_local/accounts/{stripe_account_id}/onboard",
        headers={"Authorization": f"Bearer {settings.effective_stripe_key}"},
        timeout=30,
    )
    response.raise_for_status()
