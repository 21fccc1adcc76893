"""Sign-up and log-in forms."""

from __future__ import annotations

import json

import reflex as rx

from quantoxbay import routes
from quantoxbay.services import DomainError, accounts
from quantoxbay.state.session import SessionState, run_service


def _go_to_ticket(ticket: str):  # type: ignore[no-untyped-def]
    url = f"{routes.API_AUTH_COMPLETE}?ticket={ticket}"
    return rx.call_script(f"window.location.assign({json.dumps(url)})")


def _login_and_ticket(*, session, email: str, password: str, next_path: str) -> str:  # type: ignore[no-untyped-def]
    user = accounts.authenticate(session=session, email=email, password=password)
    return accounts.issue_login_ticket(session=session, user_id=user.id, next_path=next_path)


def _signup_and_ticket(*, session, email: str, password: str, wants_to_sell: bool, next_path: str) -> str:  # type: ignore[no-untyped-def]
    user = accounts.sign_up(session=session, email=email, password=password, wants_to_sell=wants_to_sell)
    return accounts.issue_login_ticket(session=session, user_id=user.id, next_path=next_path)


class AuthFormState(rx.State):
    """Holds the form's error and busy flag; credentials are never kept in state."""

    error: str = ""
    busy: bool = False

    def _next(self) -> str:
        return accounts.safe_next_path(self.router.url.query_parameters.get("next"))

    @rx.event
    def clear(self) -> None:
        self.error = ""
        self.busy = False

    @rx.event
    async def log_in(self, form: dict):  # type: ignore[no-untyped-def]
        self.busy, self.error = True, ""
        yield
        try:
            ticket = await run_service(
                _login_and_ticket,
                email=str(form.get("email", "")),
                password=str(form.get("password", "")),
                next_path=self._next(),
            )
        except DomainError as exc:
            self.busy, self.error = False, str(exc)
            return
        yield _go_to_ticket(ticket)

    @rx.event
    async def sign_up(self, form: dict):  # type: ignore[no-untyped-def]
        self.busy, self.error = True, ""
        yield
        try:
            ticket = await run_service(
                _signup_and_ticket,
                email=str(form.get("email", "")),
                password=str(form.get("password", "")),
                wants_to_sell=form.get("wants_to_sell") in (True, "on", "true"),
                next_path=self._next(),
            )
        except DomainError as exc:
            self.busy, self.error = False, str(exc)
            return
        yield _go_to_ticket(ticket)


__all__ = ["AuthFormState", "SessionState"]
