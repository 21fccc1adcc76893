"""HTTP routes: health and the auth cookie hand-off (Starlette TestClient, real database)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from quantoxbay import routes
from quantoxbay.api import build_api
from quantoxbay.db import make_engine
from quantoxbay.models import UserSession
from quantoxbay.services import accounts
from quantoxbay.settings import get_settings
from tests.factories import create_user


@pytest.fixture
def app_engine(app_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The shared one, and the health route's own reference to the engine."""
    monkeypatch.setattr("quantoxbay.api.health.get_engine", lambda: app_engine)
    yield app_engine


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


NONCE = "this-browsers-nonce-0123456789"


def _ticket(app_engine: Engine, next_path: str = "/library") -> tuple[int, str]:
    with Session(app_engine) as s:
        user = create_user(s)
        ticket = accounts.issue_login_ticket(
            session=s, user_id=user.id, browser_nonce=NONCE, next_path=next_path
        )
        s.commit()
    return user.id, ticket


def _session_count(app_engine: Engine, user_id: int) -> int:
    with Session(app_engine) as s:
        return len(s.exec(select(UserSession).where(UserSession.user_id == user_id)).all())


def test_login_ticket_sets_httponly_cookie_once(client: TestClient, app_engine: Engine) -> None:
    user_id, ticket = _ticket(app_engine)
    client.cookies.set(routes.LOGIN_NONCE_COOKIE, NONCE)
    response = client.get(routes.API_AUTH_COMPLETE, params={"ticket": ticket})
    assert response.status_code == 303
    assert response.headers["location"] == "/library"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{routes.SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    token = response.cookies[routes.SESSION_COOKIE]
    with Session(app_engine) as s:
        assert accounts.user_for_session(session=s, token=token).id == user_id  # type: ignore[union-attr]

    replay = client.get(routes.API_AUTH_COMPLETE, params={"ticket": ticket})
    assert replay.status_code == 303
    assert replay.headers["location"].startswith(routes.LOGIN)
    assert "set-cookie" not in replay.headers


@pytest.mark.parametrize("nonce", [None, "", "the-attackers-own-nonce-0123456789"])
def test_login_ticket_from_another_browser_is_refused(
    client: TestClient, app_engine: Engine, nonce: str | None
) -> None:
    """Login CSRF: a ticket only logs in the browser whose nonce cookie it was issued for."""
    user_id, ticket = _ticket(app_engine)
    if nonce is not None:
        client.cookies.set(routes.LOGIN_NONCE_COOKIE, nonce)
    refused = client.get(routes.API_AUTH_COMPLETE, params={"ticket": ticket})
    assert refused.status_code == 303
    assert refused.headers["location"].startswith(routes.LOGIN)
    assert "set-cookie" not in refused.headers
    assert _session_count(app_engine, user_id) == 0
    # Nothing was consumed: the browser that asked for it still gets in.
    client.cookies.set(routes.LOGIN_NONCE_COOKIE, NONCE)
    assert client.get(routes.API_AUTH_COMPLETE, params={"ticket": ticket}).headers["location"] == "/library"
    assert _session_count(app_engine, user_id) == 1


def _logged_in(client: TestClient, app_engine: Engine) -> str:
    with Session(app_engine) as s:
        user = create_user(s)
        token = accounts.start_session(session=s, user_id=user.id)
        s.commit()
    client.cookies.set(routes.SESSION_COOKIE, token)
    return token


def _still_valid(app_engine: Engine, token: str) -> bool:
    with Session(app_engine) as s:
        return accounts.user_for_session(session=s, token=token) is not None


def test_logout_ends_the_server_session_and_clears_the_cookie(client: TestClient, app_engine: Engine) -> None:
    token = _logged_in(client, app_engine)
    response = client.post(routes.API_AUTH_LOGOUT, headers={"Origin": get_settings().public_url})
    assert response.status_code == 303
    assert f'{routes.SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert not _still_valid(app_engine, token)


def test_logout_by_get_is_not_allowed(client: TestClient, app_engine: Engine) -> None:
    token = _logged_in(client, app_engine)
    response = client.get(routes.API_AUTH_LOGOUT, headers={"Origin": get_settings().public_url})
    assert response.status_code == 405
    assert "set-cookie" not in response.headers
    assert _still_valid(app_engine, token)


@pytest.mark.parametrize("origin", [None, "https://evil.example", "null", "http://localhost.evil.example"])
def test_logout_from_another_origin_is_refused(
    client: TestClient, app_engine: Engine, origin: str | None
) -> None:
    token = _logged_in(client, app_engine)
    response = client.post(routes.API_AUTH_LOGOUT, headers={"Origin": origin} if origin else {})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert _still_valid(app_engine, token)


def test_logout_get_is_405_behind_the_reflex_app_too(app_engine: Engine) -> None:
    """Reflex mounts its own app behind the API; a GET must not fall through to a page."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount

    api = build_api()
    api.mount("", Starlette(routes=[Mount("/", app=PlainTextResponse("a Reflex page"))]))
    response = TestClient(api).get(routes.API_AUTH_LOGOUT)
    assert response.status_code == 405


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
