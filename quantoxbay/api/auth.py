"""Cookie endpoints: the websocket UI cannot set an HttpOnly cookie, so the browser comes here."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from quantoxbay import routes
from quantoxbay.db import session_scope
from quantoxbay.services import accounts
from quantoxbay.settings import get_settings


def _secure() -> bool:
    return get_settings().public_url.startswith("https://")


def _redeem(ticket: str) -> tuple[str, str] | None:
    with session_scope() as session:
        return accounts.redeem_login_ticket(session=session, ticket=ticket)


async def complete_login(request: Request) -> Response:
    """Trade a one-time login ticket for the session cookie, then go where the user was headed."""
    ticket = request.query_params.get("ticket", "")
    redeemed = await run_in_threadpool(_redeem, ticket) if ticket else None
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
    """End the server-side session and clear the cookie (POST or GET; either only logs out)."""
    await run_in_threadpool(_end, request.cookies.get(routes.SESSION_COOKIE))
    response = RedirectResponse(routes.STOREFRONT, status_code=303)
    response.delete_cookie(routes.SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure())
    return response
