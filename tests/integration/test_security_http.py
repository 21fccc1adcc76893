"""The security layer around the whole app (quantoxbay/api/security.py): same-origin websocket
handshakes and uploads, security headers on every response, and request bodies bounded before
they are read. The layer wraps stand-ins for Reflex's `/_event` and `/_upload` (recording what
reached them) and the real API (webhook, embedded Stripe); the websocket handshake goes through
a real uvicorn server so the 403 is the one a browser would see."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from quantoxbay import routes
from quantoxbay.api import build_api
from quantoxbay.api.security import MAX_STRIPE_BODY_BYTES, UPLOAD_FRAMING_BYTES, SecurityMiddleware
from quantoxbay.models import Role, WebhookEvent
from quantoxbay.services import accounts
from quantoxbay.settings import get_settings, origin_of
from tests.factories import create_user
from tests.integration.test_stripe_local import ServerThread

PUBLIC_URL = "http://shop.test:8080"
ORIGIN = "http://shop.test:8080"
MAX_UPLOAD = 4096


class Recorder:
    """Stand-ins for Reflex's endpoints; they note what reached them."""

    def __init__(self) -> None:
        self.uploads: list[int] = []
        self.bodies: list[bytes] = []

    async def upload(self, request: Request) -> Response:
        self.uploads.append(len(await request.body()))
        return JSONResponse({"stored": True})

    async def echo(self, request: Request) -> Response:
        body = await request.body()
        self.bodies.append(body)
        return JSONResponse({"length": len(body)})

    async def page(self, request: Request) -> Response:
        return HTMLResponse("<html><body>page</body></html>", headers={"X-Content-Type-Options": "nosniff"})

    async def socket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def stack(
    recorder: Recorder, *, public_url: str = PUBLIC_URL, page_users: dict[str, int] | None = None
) -> SecurityMiddleware:
    inner = Starlette(
        routes=[
            Route("/_upload", recorder.upload, methods=["POST"]),
            WebSocketRoute("/_event", recorder.socket),
            Route("/echo", recorder.echo, methods=["POST"]),
            Route(routes.API_STRIPE_WEBHOOK, recorder.echo, methods=["POST"]),
            Route("/stripe-local/v1/customers", recorder.echo, methods=["POST"]),
            Route("/", recorder.page),
        ]
    )

    async def page_user(client_token: str) -> int:
        return (page_users or {}).get(client_token, 0)

    return SecurityMiddleware(
        inner, public_url=public_url, max_upload_bytes=MAX_UPLOAD, page_user=page_user if page_users else None
    )


@pytest.fixture
def client(recorder: Recorder, app_engine: Engine) -> TestClient:
    return TestClient(stack(recorder), base_url=PUBLIC_URL)


def session_cookie(engine: Engine, role: Role) -> str:
    return login(engine, role)[1]


def login(engine: Engine, role: Role) -> tuple[int, str]:
    with Session(engine) as s:
        user = create_user(s, role)
        token = accounts.start_session(session=s, user_id=user.id)
        s.commit()
    return user.id, token


def upload_headers(**extra: str) -> dict[str, str]:
    return {
        "reflex-client-token": "0f7c2a9e-token",
        "reflex-event-handler": "state.product_form.receive_files",
        **extra,
    }


# --- same origin ---------------------------------------------------------------------


def handshake(port: int, origin: str | None) -> int:
    """The status a websocket handshake to /_event gets, as a browser would send it."""
    lines = [
        "GET /_event/?EIO=4&transport=websocket HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return int(sock.recv(4096)[9:12])


@pytest.fixture
def live(recorder: Recorder) -> Iterator[ServerThread]:
    inner = Starlette(routes=[WebSocketRoute("/_event/", recorder.socket)])
    server = ServerThread(
        SecurityMiddleware(inner, public_url=PUBLIC_URL, max_upload_bytes=MAX_UPLOAD)
    ).start()
    yield server
    server.stop()


@pytest.mark.parametrize("origin", ["http://evil.test", "null", "https://shop.test:8080", "http://shop.test"])
def test_websocket_handshake_from_another_origin_is_refused_with_403(live: ServerThread, origin: str) -> None:
    assert handshake(live.port, origin) == 403


@pytest.mark.parametrize("origin", [ORIGIN, None])
def test_websocket_handshake_from_the_site_or_without_origin_is_accepted(
    live: ServerThread, origin: str | None
) -> None:
    # No Origin: not a browser (browsers always send one on a handshake), so no visitor's cookie rides on it.
    assert handshake(live.port, origin) == 101


def test_http_to_event_and_upload_from_another_origin_is_refused(
    client: TestClient, recorder: Recorder, app_engine: Engine
) -> None:
    cookie = session_cookie(app_engine, Role.SELLER)
    client.cookies.set(routes.SESSION_COOKIE, cookie)
    refused = client.post("/_upload", content=b"x" * 10, headers=upload_headers(origin="http://evil.test"))
    assert refused.status_code == 403
    assert (
        client.get("/_event/?EIO=4&transport=polling", headers={"origin": "http://evil.test"}).status_code
        == 403
    )
    assert recorder.uploads == []
    same = client.post("/_upload", content=b"x" * 10, headers=upload_headers(origin=ORIGIN))
    assert same.status_code == 200
    assert recorder.uploads == [10]


def test_origin_is_compared_the_way_browsers_write_it() -> None:
    assert origin_of("https://Shop.Example.com:443/") == "https://shop.example.com"
    assert origin_of("http://localhost:3000") == "http://localhost:3000"
    assert origin_of("http://[::1]:80/x") == "http://[::1]"


def test_reflex_cors_allows_only_the_public_origin() -> None:
    import rxconfig

    assert list(rxconfig.config.cors_allowed_origins) == [get_settings().public_origin]


# --- headers ---------------------------------------------------------------------------


def test_pages_carry_the_security_headers(client: TestClient) -> None:
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self' ws://shop.test:8080"
    assert directives["object-src"] == "'none'"
    assert directives["default-src"] == "'self'"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    # The page set nosniff itself: one header, not two.
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert "strict-transport-security" not in response.headers


def test_https_adds_hsts_and_secure_websocket(recorder: Recorder) -> None:
    response = TestClient(stack(recorder, public_url="https://shop.test")).get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert "connect-src 'self' wss://shop.test;" in response.headers["content-security-policy"]


# --- uploads ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [None, Role.BUYER, "ended"])
def test_upload_without_a_sellers_session_cookie_is_refused_unread(
    client: TestClient, recorder: Recorder, app_engine: Engine, role: Role | str | None
) -> None:
    if role == "ended":
        token = session_cookie(app_engine, Role.SELLER)
        with Session(app_engine) as s:
            accounts.end_session(session=s, token=token)
            s.commit()
        client.cookies.set(routes.SESSION_COOKIE, token)
    elif role is not None:
        client.cookies.set(routes.SESSION_COOKIE, session_cookie(app_engine, Role(role)))
    # The Reflex client token alone (the header every upload carries) is not a credential.
    response = client.post("/_upload", content=b"x" * 100, headers=upload_headers())
    assert response.status_code == 403
    assert recorder.uploads == []


@pytest.mark.parametrize("role", [Role.SELLER, Role.ADMIN])
def test_upload_with_a_sellers_or_admins_cookie_reaches_reflex(
    client: TestClient, recorder: Recorder, app_engine: Engine, role: Role
) -> None:
    client.cookies.set(routes.SESSION_COOKIE, session_cookie(app_engine, role))
    response = client.post("/_upload", content=b"x" * MAX_UPLOAD, headers=upload_headers())
    assert response.status_code == 200
    assert recorder.uploads == [MAX_UPLOAD]


def test_upload_over_the_limit_or_without_length_is_refused_before_the_body(
    client: TestClient, recorder: Recorder, app_engine: Engine
) -> None:
    client.cookies.set(routes.SESSION_COOKIE, session_cookie(app_engine, Role.SELLER))
    too_big = client.post(
        "/_upload", content=b"x" * (MAX_UPLOAD + UPLOAD_FRAMING_BYTES + 1), headers=upload_headers()
    )
    assert too_big.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"x" * 100

    chunked = client.post("/_upload", content=chunks(), headers=upload_headers())
    assert chunked.status_code == 411
    assert recorder.uploads == []


def test_upload_through_another_users_page_session_is_refused(recorder: Recorder, app_engine: Engine) -> None:
    # The handler acts on the page session the client token names; the cookie must be its user's.
    victim_id, _ = login(app_engine, Role.SELLER)
    attacker_id, attacker_cookie = login(app_engine, Role.SELLER)
    client = TestClient(stack(recorder, page_users={"victim-page": victim_id, "own-page": attacker_id}))
    client.cookies.set(routes.SESSION_COOKIE, attacker_cookie)
    foreign = upload_headers(**{"reflex-client-token": "victim-page"})
    assert client.post("/_upload", content=b"x" * 10, headers=foreign).status_code == 403
    unknown = upload_headers(**{"reflex-client-token": "no-such-page"})
    assert client.post("/_upload", content=b"x" * 10, headers=unknown).status_code == 403
    assert recorder.uploads == []
    own = upload_headers(**{"reflex-client-token": "own-page"})
    assert client.post("/_upload", content=b"x" * 10, headers=own).status_code == 200
    assert recorder.uploads == [10]


# --- Stripe-bound bodies ----------------------------------------------------------------


def streamed(size: int, block: int = 64 * 1024) -> Iterator[bytes]:
    """A body without Content-Length (chunked), ``size`` bytes in blocks."""
    sent = 0
    while sent < size:
        yield b"x" * min(block, size - sent)
        sent += block


@pytest.mark.parametrize("path", [routes.API_STRIPE_WEBHOOK, "/stripe-local/v1/customers"])
def test_stripe_bodies_over_1_mib_are_refused_by_length_or_by_counting(
    client: TestClient, recorder: Recorder, path: str
) -> None:
    declared = client.post(path, content=b"x" * (MAX_STRIPE_BODY_BYTES + 1))
    assert declared.status_code == 413
    counted = client.post(path, content=streamed(MAX_STRIPE_BODY_BYTES + 1))
    assert counted.status_code == 413
    assert recorder.bodies == []


@pytest.mark.parametrize("path", [routes.API_STRIPE_WEBHOOK, "/stripe-local/v1/customers"])
def test_stripe_bodies_within_1_mib_reach_the_route_whole(
    client: TestClient, recorder: Recorder, path: str
) -> None:
    body = bytes(range(256)) * (MAX_STRIPE_BODY_BYTES // 256)
    chunked = client.post(path, content=iter([body[:1000], body[1000:]]))
    assert chunked.json() == {"length": len(body)}
    assert client.post(path, content=body).json() == {"length": len(body)}
    assert recorder.bodies == [body, body]


def test_real_webhook_and_embedded_stripe_refuse_large_bodies_with_their_own_error_shapes(
    recorder: Recorder, app_engine: Engine
) -> None:
    client = TestClient(SecurityMiddleware(build_api(), public_url=PUBLIC_URL, max_upload_bytes=MAX_UPLOAD))
    for path in (routes.API_STRIPE_WEBHOOK, routes.API_STRIPE_CONNECT_WEBHOOK):
        webhook = client.post(path, content=streamed(2 * MAX_STRIPE_BODY_BYTES))
        assert webhook.status_code == 413, path
        assert "error" in webhook.json()
    stripe_api = client.post("/stripe-local/v1/customers", content=streamed(2 * MAX_STRIPE_BODY_BYTES))
    assert stripe_api.status_code == 413
    assert stripe_api.json()["error"]["type"] == "invalid_request_error"
    with Session(app_engine) as s:
        assert s.exec(select(WebhookEvent)).all() == []
    # A small unsigned event still reaches the route, whole: refused for its signature, not its size.
    small = client.post(routes.API_STRIPE_WEBHOOK, content=streamed(2000, block=500))
    assert small.status_code == 400
    assert "signature" in small.json()["error"]


def test_the_app_is_wrapped_by_the_security_layer() -> None:
    from quantoxbay.quantoxbay import app

    transformers: Any = app.api_transformer
    wrapped = transformers[-1](Starlette())
    assert isinstance(wrapped, SecurityMiddleware)
    assert wrapped.page_user is not None
