"""One pure-ASGI layer in front of the whole app (pages, Reflex's `/_event` and `/_upload`, the API):
same-origin only, security headers, and request sizes bounded before a body is read.

Pure ASGI, not BaseHTTPMiddleware, so streamed downloads and websockets pass through unbuffered;
on the hot path it costs a header scan and a wrapped ``send``.

- Origin: a websocket handshake or an HTTP request to Reflex's `/_event` or `/_upload` whose
  ``Origin`` is not PUBLIC_URL's origin is refused with 403 (``Origin: null`` included). A
  request without ``Origin`` is let through: browsers always send it on websocket handshakes
  and on POSTs (the only way a hostile page could ride a visitor's cookie), so its absence
  means a non-browser client, which holds only the credentials it was given.
- Headers on every HTTP response: Content-Security-Policy (Reflex's pages need inline scripts,
  for the hydration data of the prerendered HTML, and eval, for ``rx.call_script``; everything
  else is limited to this origin), X-Frame-Options, X-Content-Type-Options, Referrer-Policy
  ``same-origin`` (the confirmation page's URL carries the Checkout Session id), and HSTS when
  PUBLIC_URL is https.
- Sizes: the Stripe webhook and the embedded Stripe's API take at most 1 MiB (413), judged from
  Content-Length when sent, otherwise by reading at most that much before the route runs.
  `/_upload` must come with the request's own session cookie of a seller or admin, who must
  be the user the page session named by ``Reflex-Client-Token`` is logged in as (the client
  token is not a credential: the upload handler acts on that page session's state; the catalog
  services then check that the product is the seller's), and a Content-Length within
  MAX_UPLOAD_BYTES (411 without one, 413 over it), all before Reflex spools any of the body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

from starlette.concurrency import run_in_threadpool

from quantoxbay import routes
from quantoxbay.models import Role
from quantoxbay.settings import Settings, get_settings, origin_of

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Largest body the Stripe webhook and the embedded Stripe's API accept (Stripe's events are a
#: few KiB; its API takes form-encoded parameters).
MAX_STRIPE_BODY_BYTES = 1024 * 1024
#: An upload request may exceed MAX_UPLOAD_BYTES by this much: multipart boundaries, part
#: headers and Reflex's bound-arguments field.
UPLOAD_FRAMING_BYTES = 64 * 1024

REFLEX_EVENT = "/_event"
REFLEX_UPLOAD = "/_upload"
STRIPE_LOCAL_API = routes.STRIPE_LOCAL_MOUNT + "/v1/"
UPLOAD_ROLES = frozenset({Role.SELLER, Role.ADMIN})


def content_security_policy(public_url: str, image_origins: tuple[str, ...] = ()) -> str:
    origin = origin_of(public_url)
    scheme, _, host = origin.partition("://")
    socket_origin = f"{'wss' if scheme == 'https' else 'ws'}://{host}"
    directives = {
        "default-src": "'self'",
        # Inline: the hydration data in every prerendered page. Eval: rx.call_script.
        "script-src": "'self' 'unsafe-inline' 'unsafe-eval'",
        # Radix and Emotion style elements at run time; the hosted checkout's <style>.
        "style-src": "'self' 'unsafe-inline'",
        # Covers come from this origin, or from the object store's presigned URLs it redirects to.
        "img-src": " ".join(["'self'", "data:", "blob:", *image_origins]),
        "font-src": "'self' data:",
        "connect-src": f"'self' {socket_origin}",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def storage_image_origins() -> tuple[str, ...]:
    """The object store's origin when covers redirect to presigned URLs (S3), else nothing."""
    from quantoxbay.storage import get_storage

    try:
        url = get_storage().presigned_url("csp-probe", expires_in=60)
    except Exception:  # a store that cannot sign now: allow any https image rather than break covers
        logger.warning("could not presign a probe URL; the CSP allows images from any https origin")
        return ("https:",)
    return (origin_of(url),) if url else ()


def _uploader_for_session(token: str) -> int | None:
    """The id of the seller or admin whose session cookie this is, else None."""
    from quantoxbay.db import session_scope
    from quantoxbay.services import accounts

    with session_scope() as session:
        user = accounts.user_for_session(session=session, token=token)
    return user.id if user is not None and user.role in UPLOAD_ROLES else None


def _json_response(status: int, body: dict[str, Any], *, close: bool = False) -> tuple[int, bytes, list]:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:  # the rest of the body is never read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    return status, payload, headers


def _stripe_error(message: str) -> dict[str, Any]:
    """The body Stripe sends for a request it refuses (stripe-python: InvalidRequestError)."""
    return {"error": {"type": "invalid_request_error", "code": None, "message": message, "param": None}}


class SecurityMiddleware:
    """The whole app's front door (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_url: str,
        max_upload_bytes: int,
        image_origins: tuple[str, ...] = (),
        uploader_for_session: Callable[[str], int | None] = _uploader_for_session,
        page_user: Callable[[str], Awaitable[int]] | None = None,
    ) -> None:
        """``page_user``: the user id the page session with this Reflex client token is logged in
        as (0 for none); without it, any seller's cookie may upload through any client token."""
        self.app = app
        self.origin = origin_of(public_url).encode("latin-1")
        self.upload_limit = max_upload_bytes + UPLOAD_FRAMING_BYTES
        self.uploader_for_session = uploader_for_session
        self.page_user = page_user
        headers = [
            (
                b"content-security-policy",
                content_security_policy(public_url, image_origins).encode("latin-1"),
            ),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if public_url.startswith("https://"):
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.response_headers = headers
        self.replaced_headers = frozenset(name for name, _ in headers)
        limit = f"{MAX_STRIPE_BODY_BYTES // 1024 // 1024} MiB"
        self.webhook_too_large = _json_response(413, {"error": f"payload larger than {limit}"}, close=True)
        self.stripe_too_large = _json_response(
            413, _stripe_error(f"The request body is larger than {limit}."), close=True
        )
        self.cross_origin = _json_response(403, {"detail": "Cross-origin request refused."})
        self.upload_refused = _json_response(403, {"detail": "Log in as a seller to upload files."})
        self.upload_too_large = _json_response(
            413, {"detail": f"An upload may carry at most {max_upload_bytes} bytes."}, close=True
        )
        self.upload_no_length = _json_response(
            411, {"detail": "An upload needs a Content-Length."}, close=True
        )
        self.bad_length = _json_response(400, {"detail": "Invalid Content-Length."}, close=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            if self._foreign_origin(scope):
                # Closing before accepting: the server answers the handshake with 403.
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _foreign_origin(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"origin":
                return value.lower() != self.origin
        return False

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        headers_send = self._with_headers(send)
        if path.startswith("/_"):
            if _under(path, REFLEX_EVENT) or _under(path, REFLEX_UPLOAD):
                if self._foreign_origin(scope):
                    await _answer(headers_send, self.cross_origin)
                    return
                if path == REFLEX_UPLOAD and scope["method"] == "POST":
                    await self._upload(scope, receive, headers_send)
                    return
        elif scope["method"] == "POST":
            if path in (routes.API_STRIPE_WEBHOOK, routes.API_STRIPE_CONNECT_WEBHOOK):
                await self._bounded(scope, receive, headers_send, self.webhook_too_large)
                return
            if path.startswith(STRIPE_LOCAL_API):
                await self._bounded(scope, receive, headers_send, self.stripe_too_large)
                return
        await self.app(scope, receive, headers_send)

    def _with_headers(self, send: Send) -> Send:
        ours, replaced = self.response_headers, self.replaced_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() not in replaced),
                    *ours,
                ]
            await send(message)

        return send_with_headers

    async def _bounded(
        self, scope: Scope, receive: Receive, send: Send, too_large: tuple[int, bytes, list]
    ) -> None:
        """At most MAX_STRIPE_BODY_BYTES reach the route; a longer body is refused unread."""
        length = _content_length(scope)
        if length == -1:
            await _answer(send, self.bad_length)
            return
        if length is not None:
            # The server delivers exactly Content-Length bytes, so a declared length is the size.
            if length > MAX_STRIPE_BODY_BYTES:
                await _answer(send, too_large)
                return
            await self.app(scope, receive, send)
            return
        # No length (chunked): read up to the limit before the route runs, then hand it over.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body = message.get("body", b"")
            size += len(body)
            if size > MAX_STRIPE_BODY_BYTES:
                await _answer(send, too_large)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope)
        if length == -1:
            await _answer(send, self.bad_length)
            return
        if length is None:
            await _answer(send, self.upload_no_length)
            return
        if length > self.upload_limit:
            await _answer(send, self.upload_too_large)
            return
        token = _cookie(scope, routes.SESSION_COOKIE)
        user_id = await run_in_threadpool(self.uploader_for_session, token) if token else None
        if user_id is None:
            await _answer(send, self.upload_refused)
            return
        if self.page_user is not None:
            client_token = _header(scope, b"reflex-client-token")
            if not client_token or await self.page_user(client_token) != user_id:
                await _answer(send, self.upload_refused)
                return
        await self.app(scope, receive, send)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope["headers"]:
        if header == name:
            return value.decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope["headers"]:
        if header == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header carries no session
                return None
            morsel = jar.get(name)
            if morsel is not None:
                return morsel.value
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, response: tuple[int, bytes, list]) -> None:
    status, payload, headers = response
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def security_middleware(
    settings: Settings | None = None, *, page_user: Callable[[str], Awaitable[int]] | None = None
) -> Callable[[ASGIApp], ASGIApp]:
    """The transform Reflex's ``api_transformer`` applies to the whole backend app."""
    settings = settings or get_settings()

    def wrap(app: ASGIApp) -> ASGIApp:
        return SecurityMiddleware(
            app,
            public_url=settings.public_url,
            max_upload_bytes=settings.max_upload_bytes,
            image_origins=storage_image_origins(),
            page_user=page_user,
        )

    return wrap
