"""Sign-up and log-in forms."""

from __future__ import annotations

import json
import secrets

import reflex as rx

from quantoxbay import routes
from quantoxbay.services import DomainError, accounts
from quantoxbay.settings import get_settings
from quantoxbay.state.session import SessionState, run_service

TICKET_REFUSED = "That log-in link has expired or was opened in another browser. Please log in again."


def go_to_ticket(ticket: str):
    """Send the browser to trade a log-in ticket for its session cookie (``api/auth.py``)."""
    url = f"{routes.API_AUTH_COMPLETE}?ticket={ticket}"
    return rx.call_script(f"window.location.assign({json.dumps(url)})")


def _login_and_ticket(
    *, session, email: str, password: str, client_ip: str, browser_nonce: str, next_path: str
) -> str:
    user = accounts.authenticate(session=session, email=email, password=password, client_ip=client_ip)
    return accounts.issue_login_ticket(
        session=session, user_id=user.id, browser_nonce=browser_nonce, next_path=next_path
    )


def _signup_and_ticket(
    *, session, email: str, password: str, wants_to_sell: bool, browser_nonce: str, next_path: str
) -> str:
    user = accounts.sign_up(session=session, email=email, password=password, wants_to_sell=wants_to_sell)
    return accounts.issue_login_ticket(
        session=session, user_id=user.id, browser_nonce=browser_nonce, next_path=next_path
    )


class AuthFormState(rx.State):
    """Holds the form's error, busy flag and the browser's log-in nonce; never credentials."""

    error: str = ""
    busy: bool = False
    # This browser's log-in nonce: a cookie, so /api/auth/complete sees it too and redeems a
    # ticket only for the browser it was issued to. Strict: never sent on a cross-site request.
    login_nonce: str = rx.Cookie(
        "",
        name=routes.LOGIN_NONCE_COOKIE,
        same_site="strict",
        secure=get_settings().public_url.startswith("https://"),
    )

    def _next(self) -> str:
        return accounts.safe_next_path(self.router.url.query_parameters.get("next"))

    def _browser_nonce(self) -> str:
        """The browser's nonce, made now if it has none yet (the next delta stores the cookie)."""
        if len(self.login_nonce) < accounts.LOGIN_NONCE_MIN_LENGTH:
            self.login_nonce = secrets.token_urlsafe(32)
        return self.login_nonce

    @rx.event
    def clear(self) -> None:
        """on_load: a fresh form, saying why when /api/auth/complete sent the browser back."""
        refused = self.router.url.query_parameters.get("expired")
        self.error = TICKET_REFUSED if refused else ""
        self.busy = False

    @rx.event
    async def log_in(self, form: dict):
        self.busy, self.error = True, ""
        browser_nonce = self._browser_nonce()
        yield  # the browser stores the nonce cookie before it is sent to trade the ticket
        try:
            ticket = await run_service(
                _login_and_ticket,
                email=str(form.get("email", "")),
                password=str(form.get("password", "")),
                # The peer address, or X-Forwarded-For with REFLEX_TRUSTED_PROXY_HOPS (README).
                client_ip=self.router.session.client_ip,
                browser_nonce=browser_nonce,
                next_path=self._next(),
            )
        except DomainError as exc:
            self.busy, self.error = False, str(exc)
            return
        yield go_to_ticket(ticket)

    @rx.event
    async def sign_up(self, form: dict):
        self.busy, self.error = True, ""
        browser_nonce = self._browser_nonce()
        yield
        try:
            ticket = await run_service(
                _signup_and_ticket,
                email=str(form.get("email", "")),
                password=str(form.get("password", "")),
                wants_to_sell=form.get("wants_to_sell") in (True, "on", "true"),
                browser_nonce=browser_nonce,
                next_path=self._next(),
            )
        except DomainError as exc:
            self.busy, self.error = False, str(exc)
            return
        yield go_to_ticket(ticket)


__all__ = ["AuthFormState", "SessionState"]
