"""Shared fixtures: an isolated DATA_DIR, and databases on SQLite and PostgreSQL.

PostgreSQL is the one at TEST_POSTGRES_URL (127.0.0.1:5432 on our machines and
CI's) or, on a fresh machine, a throwaway server started by tests/support/servers.py.
Each test module gets its own freshly migrated database; each test runs inside
a transaction that is rolled back, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports quantoxbay.settings: never touch the developer's ./data.
_SESSION_DATA_DIR = Path(tempfile.mkdtemp(prefix="qb-test-data-"))
os.environ["DATA_DIR"] = str(_SESSION_DATA_DIR)
for _name in (
    "DATABASE_URL",
    "REDIS_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_LOCAL_SECRET_KEY",
    "STORAGE_URL",
    "SMTP_URL",
    "APP_SECRET",
    "HOST",
):
    os.environ.pop(_name, None)

from sqlalchemy import Connection  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from quantoxbay.db import make_engine  # noqa: E402
from quantoxbay.migrations import upgrade_to_head  # noqa: E402
from tests.support import servers  # noqa: E402

# Tests on PostgreSQL carry the `postgres` marker: `-m "not postgres"` keeps them out (make test-fast).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _migrated_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object]:
    tmp_dir = tmp_path_factory.mktemp("db")
    if backend == "sqlite":
        # Migrated once per session, then copied: each module still gets its own fresh file.
        template = tmp_path_factory.getbasetemp() / "migrated-sqlite.db"
        if not template.exists():
            upgrade_to_head(f"sqlite:///{template}")
        # SQLite's backup API copies what the write-ahead log holds too.
        source, target = sqlite3.connect(template), sqlite3.connect(tmp_dir / "test.db")
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        url = f"sqlite:///{tmp_dir / 'test.db'}"
        drop = lambda: None  # noqa: E731  (the tmp dir goes away by itself)
        return url, drop
    url, drop = servers.fresh_postgres_database(servers.postgres_url())
    upgrade_to_head(url)
    return url, drop


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database for this module, on each backend in turn."""
    url, drop = _migrated_database(request.param, tmp_path_factory)
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session whose commits only release savepoints; everything is rolled back after the test."""
    with Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        yield session


@pytest.fixture
def storage(tmp_path: Path):
    from quantoxbay.storage.local import LocalStorage

    return LocalStorage(tmp_path / "files")
