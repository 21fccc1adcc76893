"""One Settings object, read from the environment once.

The embedded defaults need no variable at all: SQLite under DATA_DIR, files on
local disk, the embedded Stripe, e-mail written to DATA_DIR/outbox. Secrets that
are not given are generated once and kept under DATA_DIR (never committed).
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """Return the secret kept at ``path``, creating it (mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = make()
    # O_EXCL: two processes starting together agree on one secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


class Settings(BaseSettings):
    """Configuration of one QuantoxBay deployment (see shared/DESIGN.md)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    data_dir: Path = Field(default=Path("./data"))
    database_url: str = ""
    redis_url: str | None = None
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "QuantoxBay <receipts@quantoxbay.local>"
    app_secret: str = ""
    app_port: int = 3000
    public_url: str = ""
    # How long a signed download link stays valid.
    download_link_ttl_seconds: int = 600
    # Largest file a seller may upload (default 2 GiB).
    max_upload_bytes: int = 2 * 1024**3
    # Failed log-ins: a burst of LOGIN_MAX_FAILURES on one account (LOGIN_IP_MAX_FAILURES from one
    # client IP) locks it for LOGIN_LOCKOUT_SECONDS; in the long run at most that many per that
    # many seconds (services/login_throttle.py).
    login_max_failures: int = Field(default=5, ge=1)
    login_ip_max_failures: int = Field(default=20, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)
    # bcrypt work factor: 12 is the floor; tests may not lower it.
    bcrypt_rounds: int = 12
    session_ttl_days: int = 30
    # Embedded Stripe rate limit (Stripe's test-mode value by default).
    stripe_local_rate_limit: int = 25
    # Where the embedded Stripe POSTs its events (default: this server's own webhook route).
    stripe_local_webhook_url: str = ""

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("bcrypt_rounds")
    @classmethod
    def _strong_bcrypt(cls, value: int) -> int:
        if value < 12:
            raise ValueError("bcrypt_rounds must be at least 12")
        return value

    def model_post_init(self, __context: object) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'quantoxbay.db'}"
        if not self.storage_url:
            self.storage_url = f"file://{self.data_dir / 'files'}"
        if not self.public_url:
            self.public_url = f"http://localhost:{self.app_port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.stripe_local_webhook_url:
            self.stripe_local_webhook_url = f"http://127.0.0.1:{self.app_port}/api/stripe/webhook"
        if not self.stripe_api_base and not self.stripe_secret_key:
            self.stripe_api_base = f"{self.public_url}/stripe-local"
        if not self.app_secret:
            self.app_secret = _read_or_create_secret(
                self.data_dir / "secrets" / "app_secret", lambda: secrets.token_urlsafe(48)
            )
        if not self.stripe_webhook_secret:
            self.stripe_webhook_secret = _read_or_create_secret(
                self.data_dir / "secrets" / "stripe_webhook_secret",
                lambda: "whsec_" + secrets.token_hex(24),
            )

    @property
    def uses_embedded_stripe(self) -> bool:
        return not self.stripe_secret_key

    @property
    def effective_stripe_key(self) -> str:
        """The key the SDK sends: the real one, or a test key for the embedded Stripe."""
        return self.stripe_secret_key or "sk_test_quantoxbay_local"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def stripe_local_db_path(self) -> Path:
        return self.data_dir / "stripe_local.db"


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests change the environment between apps)."""
    get_settings.cache_clear()
