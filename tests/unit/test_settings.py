"""Settings: embedded defaults need no variables; generated secrets are kept and private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from quantoxbay.settings import Settings


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
