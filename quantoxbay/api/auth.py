"""Cookie endpoints: the websocket UI cannot set an HttpOnly cookie, so the browser comes here."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from quantoxbay import routes
from quantoxbay.db import session_scope
from quantoxbay.services import accounts
from quantoxbay.settings import get_settings, origin_of


def _secure() -> bool:
    return get_settings().public_url.startswith("https://")


def same_origin(request: Request) -> bool:
    """True when the request says it comes from a page of this site (PUBLIC_URL's origin).

    Browsers send Origin on every POST; a missing one is refused rather than trusted.
    """
    sent = request.headers.get("origin")
    if not sent:
        return False
    try:
        return origin_of(sent) == get_settings().public_origin
    except ValueError:  # a port that is not a number
        return False


def _redeem(ticket: str, browser_nonce: str | None) -> tuple[str, str] | None:
    with session_scope() as session:
        return accounts.redeem_login_ticket(session=session, ticket=ticket, browser_nonce=browser_nonce)


async def complete_login(request: Request) -> Response:
    """Trade a one-time login ticket for the session cookie, then go where the user was headed.

    Only the browser that asked for the ticket (the one holding the matching log-in nonce
    cookie) may trade it."""
    ticket = request.query_params.get("ticket", "")
    nonce = request.cookies.get(routes.LOGIN_NONCE_COOKIE)
    redeemed = await run_in_threadpool(_redeem, ticket, nonce) if ticket else None
    if redeemed is None:
        return RedirectResponse(f"{routes.LOGIN}?expired=1", status_code=303)
    token, next_path = redeemed
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        routes.SESSION_COOKIE,
        token,
        max_age=get_settings().session_ttl_days * 86400,
        httponly=True,
        secure=_secure(),
        samesite="lax",
        path="/",
    )
    return response


def _end(token: str | None) -> None:
    with session_scope() as session:
        accounts.end_session(session=session, token=token)


async def logout(request: Request) -> Response:
    """End the server-side session and clear the cookie: POST from a page of this site only.

    Registered for the other methods too, to refuse them: the Reflex app mounted behind the
    API would otherwise answer a GET with a page."""
    if request.method != "POST":
        return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "POST"})
    if not same_origin(request):
        return PlainTextResponse("Cross-site log-out refused.", status_code=403)
    await run_in_threadpool(_end, request.cookies.get(routes.SESSION_COOKIE))
    response = RedirectResponse(routes.STOREFRONT, status_code=303)
    response.delete_cookie(routes.SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure())
    return response
