"""HTTP routes: health and the auth cookie hand-off (Starlette TestClient, real database)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from quantoxbay import db as db_module
from quantoxbay import routes
from quantoxbay.api import build_api
from quantoxbay.db import make_engine
from quantoxbay.services import accounts
from tests.factories import create_user


@pytest.fixture
def app_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Point the app's engine at this module's test database."""
    monkeypatch.setattr(db_module, "get_engine", lambda: engine)
    monkeypatch.setattr("quantoxbay.api.health.get_engine", lambda: engine)
    yield engine


@pytest.fixture
def client(app_engine: Engine) -> TestClient:
    return TestClient(build_api(), follow_redirects=False)


def test_health_is_200_with_the_database(client: TestClient) -> None:
    response = client.get(routes.API_HEALTH)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_without_the_database(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    monkeypatch.setattr("quantoxbay.api.health.get_engine", lambda: dead)
    with caplog.at_level(logging.WARNING, logger="quantoxbay.api.health"):
        response = TestClient(build_api()).get(routes.API_HEALTH)
    assert response.status_code == 503
    # A fixed answer: no driver text (exception class, host, port, user) for whoever asks.
    assert response.json() == {"status": "unavailable", "database": "unavailable"}
    for detail in ("OperationalError", "127.0.0.1", "nobody", "connection"):
        assert detail not in response.text
    assert "OperationalError" in caplog.text and "127.0.0.1" in caplog.text  # the detail is logged


def test_login_ticket_sets_httponly_cookie_once(client: TestClient, app_engine: Engine) -> None:
    with Session(app_engine) as s:
        user = create_user(s)
        ticket = accounts.issue_login_ticket(session=s, user_id=user.id, next_path="/library")
        s.commit()
    response = client.get(routes.API_AUTH_COMPLETE, params={"ticket": ticket})
    assert response.status_code == 303
    assert response.headers["location"] == "/library"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{routes.SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    token = response.cookies[routes.SESSION_COOKIE]
    with Session(app_engine) as s:
        assert accounts.user_for_session(session=s, token=token).id == user.id  # type: ignore[union-attr]

    replay = client.get(routes.API_AUTH_COMPLETE, params={"ticket": ticket})
    assert replay.status_code == 303
    assert replay.headers["location"].startswith(routes.LOGIN)
    assert "set-cookie" not in replay.headers


def test_logout_ends_the_server_session_and_clears_the_cookie(client: TestClient, app_engine: Engine) -> None:
    with Session(app_engine) as s:
        user = create_user(s)
        token = accounts.start_session(session=s, user_id=user.id)
        s.commit()
    client.cookies.set(routes.SESSION_COOKIE, token)
    response = client.post(routes.API_AUTH_LOGOUT)
    assert response.status_code == 303
    assert f'{routes.SESSION_COOKIE}=""' in response.headers["set-cookie"]
    with Session(app_engine) as s:
        assert accounts.user_for_session(session=s, token=token) is None


def test_a_failed_live_push_keeps_the_client_token_out_of_the_log(
    app_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from quantoxbay.api.live import LivePusher
    from quantoxbay.services import live
    from quantoxbay.services.notifier import Announcement

    client_token = f"tok-{uuid.uuid4()}"
    with Session(app_engine) as s:
        live.subscribe(session=s, topic="seller:42", client_token=client_token, state_name="page.state")
        s.commit()

    class PageState:  # stands in for the page's rx.State
        @staticmethod
        def get_full_name() -> str:
            return "page.state"

    class LockedApp:  # fails the way a push can, naming the state's key (which holds the token)
        def modify_state(self, token: object) -> object:
            raise RuntimeError(f"could not lock {token}_page.state")

    async def push() -> int:
        pusher = LivePusher(LockedApp(), asyncio.get_running_loop(), [PageState])  # type: ignore[list-item]
        return await pusher.push(Announcement(kind="order.paid", topics=("seller:42",)))

    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(push()) == 0
    assert "live push to" in caplog.text and "RuntimeError: could not lock" in caplog.text
    assert client_token not in caplog.text
    from quantoxbay.api.live import client_ref

    assert client_ref(client_token) in caplog.text  # still tells pages apart
