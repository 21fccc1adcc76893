"""The one key tests give the embedded Stripe: this test run's install key.

It is what the app itself uses (``Settings.effective_stripe_key`` with the
session's DATA_DIR), generated once in DATA_DIR/secrets; tests that start their
own embedded Stripe pass it in ``StripeLocalConfig(secret_key=...)``.
"""

from __future__ import annotations

from pathlib import Path

from quantoxbay.settings import get_settings, install_stripe_local_key


def stripe_local_key(data_dir: Path | None = None) -> str:
    """The embedded Stripe's secret key of this test run's install, or of the app
    a test starts on its own ``data_dir``."""
    return install_stripe_local_key(data_dir or get_settings().data_dir)


def bearer(data_dir: Path | None = None) -> dict[str, str]:
    """The Authorization header carrying :func:`stripe_local_key`."""
    return {"Authorization": f"Bearer {stripe_local_key(data_dir)}"}
