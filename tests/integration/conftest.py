"""Fixtures of the HTTP-level tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from quantoxbay import db as db_module


@pytest.fixture
def app_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Point the app's engine (what routes and ``session_scope`` use) at this module's test database;
    rows a test writes must be committed for the app to see them."""
    monkeypatch.setattr(db_module, "get_engine", lambda: engine)
    yield engine
