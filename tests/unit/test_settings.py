"""Settings: embedded defaults need no variables; generated secrets are kept and private."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from quantoxbay.db import make_engine
from quantoxbay.settings import Settings


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
