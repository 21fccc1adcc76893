"""Settings: embedded defaults need no variables; generated secrets are kept and private."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from quantoxbay.db import make_engine
from quantoxbay.settings import (
    Settings,
    describe_invalid_settings,
    install_stripe_local_key,
    is_loopback_host,
    new_stripe_local_key,
)
from quantoxbay.stripe_local import StripeLocalConfig


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that hides nothing: modes must not depend on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_defaults_need_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'quantoxbay.db'}"
    assert s.storage_url == f"file://{tmp_path / 'files'}"
    assert s.public_url == "http://localhost:3000"
    assert s.uses_embedded_stripe and s.stripe_api_base == "http://localhost:3000/stripe-local"
    assert s.stripe_webhook_secret.startswith("whsec_")


def test_generated_secrets_are_kept_once_with_private_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    first, second = Settings(), Settings()
    assert first.app_secret == second.app_secret and len(first.app_secret) >= 40
    assert first.stripe_webhook_secret == second.stripe_webhook_secret
    mode = stat.S_IMODE((tmp_path / "secrets" / "app_secret").stat().st_mode)
    assert mode == 0o600


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("APP_PORT", "4123")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_real")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_given")
    monkeypatch.setenv("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_connect")
    s = Settings()
    assert s.public_url == "http://localhost:4123"
    assert not s.uses_embedded_stripe and s.stripe_api_base == ""
    assert s.stripe_webhook_secret == "whsec_given"
    assert not (tmp_path / "secrets" / "stripe_webhook_secret").exists()


def test_weak_bcrypt_cost_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    with pytest.raises(ValueError, match="at least 12"):
        Settings()


def test_the_embedded_stripe_key_is_generated_once_per_install_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    first = Settings()
    key = first.stripe_local_secret_key
    assert re.fullmatch(r"sk_test_[0-9a-f]{48}", key)
    assert first.effective_stripe_key == key
    path = tmp_path / "secrets" / "stripe_local_secret_key"
    assert path.read_text() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings().effective_stripe_key == key  # reused, not regenerated
    assert install_stripe_local_key(tmp_path) == key
    # Another install has another key.
    other = tmp_path / "other"
    other.mkdir()
    assert install_stripe_local_key(other) != key


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: install_stripe_local_key(tmp_path), range(32)))
    assert len(keys) == 1 and next(iter(keys)).startswith("sk_test_")
    assert [p.name for p in (tmp_path / "secrets").iterdir()] == ["stripe_local_secret_key"]


def test_stripe_local_secret_key_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    given = new_stripe_local_key()
    monkeypatch.setenv("STRIPE_LOCAL_SECRET_KEY", given)
    s = Settings()
    assert s.stripe_local_secret_key == given and s.effective_stripe_key == given
    assert not (tmp_path / "secrets" / "stripe_local_secret_key").exists()


@pytest.mark.parametrize("weak", ["sk_test_quantoxbay_local", "sk_live_" + "a" * 40, "a" * 48])
def test_a_weak_stripe_local_secret_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weak: str
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRIPE_LOCAL_SECRET_KEY", weak)
    with pytest.raises(ValueError, match="STRIPE_LOCAL_SECRET_KEY"):
        Settings()


def test_real_stripe_mode_sends_the_real_key_and_makes_no_local_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_real")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_given")
    monkeypatch.setenv("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_connect")
    s = Settings()
    assert s.effective_stripe_key == "sk_test_real" and s.stripe_local_secret_key == ""
    assert not (tmp_path / "secrets" / "stripe_local_secret_key").exists()


def test_a_real_stripe_key_without_its_webhook_secret_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_the_real_one")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_connect")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = describe_invalid_settings(refused.value)
    assert message.startswith("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY")
    assert "stripe listen" in message and "signing secret from the Stripe dashboard" in message
    # Nothing generated in its place, and the key is not echoed.
    assert not (tmp_path / "secrets").exists()
    assert "sk_live_the_real_one" not in str(refused.value) + message
    # With the endpoint's secret the same configuration starts.
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_the_dashboard")
    assert Settings().stripe_webhook_secret == "whsec_from_the_dashboard"


def test_several_workers_without_a_shared_app_secret_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://:redis-password@127.0.0.1:6379/0")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = describe_invalid_settings(refused.value)
    assert message.startswith("APP_SECRET is required with REDIS_URL") and "every worker" in message
    assert "redis-password" not in str(refused.value) + message
    assert not (tmp_path / "secrets" / "app_secret").exists()
    monkeypatch.setenv("APP_SECRET", "one-secret-for-every-worker")
    assert Settings().app_secret == "one-secret-for-every-worker"
    assert not (tmp_path / "secrets" / "app_secret").exists()


def test_every_problem_is_named_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_real")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ValidationError) as refused:
        Settings()
    lines = describe_invalid_settings(refused.value).splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_CONNECT_WEBHOOK_SECRET",
        "APP_SECRET",
    ]


def test_a_real_stripe_key_without_the_connect_secret_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_the_real_one")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_platform")
    monkeypatch.delenv("STRIPE_CONNECT_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = describe_invalid_settings(refused.value)
    assert message.startswith("STRIPE_CONNECT_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY")
    assert "--forward-connect-to" in message
    monkeypatch.setenv("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_connect")
    assert Settings().stripe_connect_webhook_secret == "whsec_connect"


def test_the_embedded_stripe_gets_a_connect_secret_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.stripe_connect_webhook_secret.startswith("whsec_")
    assert s.stripe_connect_webhook_secret != s.stripe_webhook_secret
    assert Settings().stripe_connect_webhook_secret == s.stripe_connect_webhook_secret  # kept in DATA_DIR


@pytest.mark.parametrize(
    ("percent", "basis_points"), [("10", 1000), ("2.5", 250), ("0", 0), ("12.34", 1234), ("100", 10_000)]
)
def test_the_platform_fee_percent_becomes_basis_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, percent: str, basis_points: int
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_FEE_PERCENT", percent)
    assert Settings().platform_fee_basis_points == basis_points


@pytest.mark.parametrize("percent", ["-1", "100.5", "2.555", "ten"])
def test_a_platform_fee_percent_out_of_range_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, percent: str
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_FEE_PERCENT", percent)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert describe_invalid_settings(refused.value).startswith("PLATFORM_FEE_PERCENT")


def test_a_field_error_names_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("APP_PORT", "not-a-port")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert describe_invalid_settings(refused.value).startswith("APP_PORT: ")


def test_the_embedded_stripe_config_requires_a_strong_key(tmp_path: Path) -> None:
    for key in ("", "sk_test_short", "pk_test_" + "a" * 40):
        with pytest.raises(ValueError, match="secret_key"):
            StripeLocalConfig(db_path=tmp_path / "s.db", secret_key=key, webhook_secret="whsec_x")
    config = StripeLocalConfig(
        db_path=tmp_path / "s.db", secret_key=new_stripe_local_key(), webhook_secret="w"
    )
    assert config.secret_key not in repr(config)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),  # noqa: S104  (the case under test)
        ("::", False),
        ("192.168.1.20", False),
        ("shop.example.com", False),
        ("", False),
    ],
)
def test_loopback_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOST", host)
    assert Settings().listens_on_loopback is loopback


def test_host_defaults_to_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.host == "127.0.0.1" and s.listens_on_loopback


def test_data_dir_is_created_private_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    data_dir = tmp_path / "deep" / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    Settings()
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "secrets") == 0o700
    assert _mode(data_dir / "secrets" / "app_secret") == 0o600
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o755)  # an install from before: tightened on start
    monkeypatch.setenv("DATA_DIR", str(existing))
    Settings()
    assert _mode(existing) == 0o700


def test_sqlite_files_are_private_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    old = tmp_path / "old.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    for path in (tmp_path / "new" / "quantoxbay.db", old):
        engine = make_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as conn:  # a write: SQLite makes its -wal and -shm files
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
            files = sorted(path.parent.glob(path.name + "*"))
            assert [f.name for f in files] == [path.name, path.name + "-shm", path.name + "-wal"]
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        finally:
            engine.dispose()


def test_the_embedded_stripe_database_is_private_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    from quantoxbay.stripe_local.db import Database

    db = Database(tmp_path / "stripe_local.db")
    try:
        files = sorted(tmp_path.glob("stripe_local.db*"))
        assert files and {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        db.close()
