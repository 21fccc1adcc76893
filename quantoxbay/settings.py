"""One Settings object, read from the environment once.

The embedded defaults need no variable at all: SQLite under DATA_DIR, files on
local disk, the embedded Stripe, e-mail written to DATA_DIR/outbox. Secrets that
are not given are generated once and kept under DATA_DIR (never committed), except
where a generated one would break production: a real Stripe key needs the webhook
endpoint's own signing secret, and several workers (REDIS_URL) need one APP_SECRET.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quantoxbay.private_files import private_dir

STRIPE_LOCAL_KEY_PREFIX = "sk_test_"
#: Random characters after ``sk_test_`` the embedded Stripe's key needs at least.
STRIPE_LOCAL_KEY_MIN_RANDOM = 32


def _read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """Return the secret kept at ``path``, creating it (mode 0600) on first use."""
    private_dir(path.parent)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = make()
    # Written in full to a private temporary file, then linked into place: link() fails when
    # the name exists, so two processes starting together agree on one secret, and no reader
    # ever sees a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return value


def new_stripe_local_key() -> str:
    """A fresh secret key for the embedded Stripe: ``sk_test_`` and 48 random hex digits."""
    return STRIPE_LOCAL_KEY_PREFIX + secrets.token_hex(24)


def install_stripe_local_key(data_dir: Path) -> str:
    """The embedded Stripe's key of the install at ``data_dir`` (generated once, kept in
    ``data_dir/secrets``). ``STRIPE_LOCAL_SECRET_KEY``, when set, is used instead of it."""
    return _read_or_create_secret(data_dir / "secrets" / "stripe_local_secret_key", new_stripe_local_key)


def is_loopback_host(host: str) -> bool:
    """Tell whether a listener bound to ``host`` is reachable from this machine only."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # Another host name may resolve to anything: treat it as reachable from the network.
        return False


class Settings(BaseSettings):
    """Configuration of one QuantoxBay deployment (see shared/DESIGN.md)."""

    # hide_input_in_errors: a refused configuration is reported without echoing its secrets.
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(default=Path("./data"))
    database_url: str = ""
    redis_url: str | None = None
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str = ""
    # Signs events from connected accounts (Stripe's Connect endpoint has its own secret).
    stripe_connect_webhook_secret: str = ""
    stripe_api_base: str = ""
    # The only key the embedded Stripe accepts (generated once per install when unset).
    stripe_local_secret_key: str = ""
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "QuantoxBay <receipts@quantoxbay.local>"
    app_secret: str = ""
    app_port: int = 3000
    # The address `make run` binds; anything but loopback is reachable from the network.
    host: str = "127.0.0.1"
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
    # ... and the events of connected accounts (default: this server's Connect webhook route).
    stripe_local_connect_webhook_url: str = ""
    # The platform's cut of each sale (a Connect application fee): PLATFORM_FEE_PERCENT of the
    # amount paid (up to two decimals, e.g. 2.9) plus PLATFORM_FEE_FIXED_CENTS (services/fees.py).
    platform_fee_percent: Decimal = Field(default=Decimal(10), ge=0, le=100, decimal_places=2)
    platform_fee_fixed_cents: int = Field(default=0, ge=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("stripe_local_secret_key")
    @classmethod
    def _strong_stripe_local_key(cls, value: str) -> str:
        value = value.strip()
        if value and (
            not value.startswith(STRIPE_LOCAL_KEY_PREFIX)
            or len(value) < len(STRIPE_LOCAL_KEY_PREFIX) + STRIPE_LOCAL_KEY_MIN_RANDOM
            or not value.isascii()
            or not value.isprintable()
        ):
            raise ValueError(
                f"STRIPE_LOCAL_SECRET_KEY must be {STRIPE_LOCAL_KEY_PREFIX} followed by at least "
                f"{STRIPE_LOCAL_KEY_MIN_RANDOM} random characters"
            )
        return value

    @field_validator("bcrypt_rounds")
    @classmethod
    def _strong_bcrypt(cls, value: int) -> int:
        if value < 12:
            raise ValueError("bcrypt_rounds must be at least 12")
        return value

    def model_post_init(self, __context: object) -> None:
        # Before anything is generated: a ValueError here is reported as a ValidationError.
        self._refuse_broken_production()
        # The database, uploads, outgoing mail and secrets: for this account's eyes only.
        private_dir(self.data_dir)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'quantoxbay.db'}"
        if not self.storage_url:
            self.storage_url = f"file://{self.data_dir / 'files'}"
        if not self.public_url:
            self.public_url = f"http://localhost:{self.app_port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.stripe_local_webhook_url:
            self.stripe_local_webhook_url = f"http://127.0.0.1:{self.app_port}/api/stripe/webhook"
        if not self.stripe_local_connect_webhook_url:
            self.stripe_local_connect_webhook_url = (
                f"http://127.0.0.1:{self.app_port}/api/stripe/connect-webhook"
            )
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
        if not self.stripe_connect_webhook_secret:
            # With real Stripe, unset means "Connect events are refused" (see _refuse_broken_production).
            self.stripe_connect_webhook_secret = (
                _read_or_create_secret(
                    self.data_dir / "secrets" / "stripe_connect_webhook_secret",
                    lambda: "whsec_" + secrets.token_hex(24),
                )
                if self.uses_embedded_stripe
                else ""
            )
        if self.uses_embedded_stripe and not self.stripe_local_secret_key:
            self.stripe_local_secret_key = install_stripe_local_key(self.data_dir)

    def _refuse_broken_production(self) -> None:
        problems = []
        if self.stripe_secret_key and not self.stripe_webhook_secret:
            problems.append(
                "STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY: Stripe signs every webhook "
                "with the endpoint's own secret, so a generated one would refuse every real event. "
                "Run `stripe listen --forward-to <PUBLIC_URL>/api/stripe/webhook` and set the whsec_... "
                "it prints, or copy the endpoint's signing secret from the Stripe dashboard "
                "(Developers > Webhooks)."
            )
        if self.stripe_secret_key and not self.stripe_connect_webhook_secret:
            problems.append(
                "STRIPE_CONNECT_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY: sellers' account "
                "updates and payouts arrive on the Connect endpoint, signed with its own secret. Run "
                "`stripe listen --forward-connect-to <PUBLIC_URL>/api/stripe/connect-webhook` and set "
                "the whsec_... it prints, or copy the Connect endpoint's signing secret from the "
                "Stripe dashboard."
            )
        if self.redis_url and not self.app_secret:
            problems.append(
                "APP_SECRET is required with REDIS_URL: each worker would generate its own secret and "
                "refuse the sessions and download links another worker signed. Set the same random "
                "value on every worker, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        if problems:
            raise ValueError("\n".join(problems))

    @property
    def uses_embedded_stripe(self) -> bool:
        return not self.stripe_secret_key

    @property
    def effective_stripe_key(self) -> str:
        """The key the SDK sends: the real one, or the embedded Stripe's install key."""
        return self.stripe_secret_key or self.stripe_local_secret_key

    @property
    def listens_on_loopback(self) -> bool:
        """Whether the server's address (HOST) is reachable from this machine only."""
        return is_loopback_host(self.host)

    @property
    def platform_fee_basis_points(self) -> int:
        """PLATFORM_FEE_PERCENT in hundredths of a percent (10 -> 1000): fee arithmetic stays integer."""
        return int(self.platform_fee_percent * 100)

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def public_origin(self) -> str:
        """The origin browsers send for this site's own pages (CORS, the websocket handshake)."""
        return origin_of(self.public_url)

    @property
    def stripe_local_db_path(self) -> Path:
        return self.data_dir / "stripe_local.db"


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` as a browser writes it in ``Origin`` (lower case, default port dropped)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def describe_invalid_settings(exc: ValidationError) -> str:
    """A refused configuration's problems, one line each, naming the variable but never its value."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else error["msg"]
        variable = "_".join(str(part) for part in error["loc"]).upper()
        lines.extend([f"{variable}: {message}"] if variable else message.splitlines())
    return "\n".join(lines)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests change the environment between apps)."""
    get_settings.cache_clear()
