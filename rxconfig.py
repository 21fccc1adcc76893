"""Reflex configuration, built from QuantoxBay's settings (one source of truth)."""

import reflex as rx
from reflex.constants import StateManagerMode

from quantoxbay.settings import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="quantoxbay",
    db_url=_settings.database_url,
    redis_url=_settings.redis_url,
    # In-process state by default; Redis (shared by several workers) when REDIS_URL is set.
    state_manager_mode=StateManagerMode.REDIS if _settings.redis_url else StateManagerMode.MEMORY,
    api_url=_settings.public_url,
    deploy_url=_settings.public_url,
    # Pages, websocket and uploads are served from PUBLIC_URL only (api/security.py refuses the rest).
    cors_allowed_origins=[_settings.public_origin],
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="violet", gray_color="slate", radius="large", scaling="100%")
        ),
    ],
)
