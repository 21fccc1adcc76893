"""Forgot password (`/forgot-password`), the e-mailed reset link (`/reset-password?token=...`),
the verification link (`/verify-email?token=...`) and the sellers' "Resend verification e-mail"."""

from __future__ import annotations

import reflex as rx

from quantoxbay.services import DomainError, accounts, recovery
from quantoxbay.state.auth_forms import AuthFormState, go_to_ticket
from quantoxbay.state.guards import logged_in, shows_errors
from quantoxbay.state.session import SessionState, run_service


def _reset_and_ticket(*, session, token: str, password: str, browser_nonce: str) -> str:
    """Set the new password (every session of the account ends), then log this browser in."""
    user = recovery.reset_password(session=session, token=token, password=password)
    return accounts.issue_login_ticket(session=session, user_id=user.id, browser_nonce=browser_nonce)


class ForgotPasswordState(AuthFormState):
    """The "Forgot password?" form: the answer never says whether the address has an account."""

    sent_message: rx.Field[str] = rx.field("")

    @rx.event
    def clear_request(self) -> None:
        self.sent_message, self.error, self.busy = "", "", False

    @rx.event
    async def request_link(self, form: dict):
        self.busy, self.error = True, ""
        yield
        try:
            self.sent_message = await run_service(
                recovery.request_password_reset,
                email=str(form.get("email", "")),
                client_ip=self.router.session.client_ip,
            )
        except DomainError as exc:
            self.error = str(exc)
        self.busy = False


class ResetPasswordState(AuthFormState):
    """The page the e-mailed link opens: checks the link, then takes the new password."""

    link_checked: rx.Field[bool] = rx.field(False)
    link_ok: rx.Field[bool] = rx.field(False)
    link_email: rx.Field[str] = rx.field("")

    def _token(self) -> str:
        return str(self.router.url.query_parameters.get("token", ""))

    @rx.event
    async def load(self) -> None:
        self.error, self.busy, self.link_checked, self.link_ok, self.link_email = "", False, False, False, ""
        try:
            self.link_email = await run_service(recovery.check_reset_link, token=self._token())
            self.link_ok = True
        except DomainError as exc:
            self.error = str(exc)
        self.link_checked = True

    @rx.event
    async def set_password(self, form: dict):
        self.busy, self.error = True, ""
        browser_nonce = self._browser_nonce()
        yield  # the browser stores the nonce cookie before it is sent to trade the ticket
        try:
            ticket = await run_service(
                _reset_and_ticket,
                token=self._token(),
                password=str(form.get("password", "")),
                browser_nonce=browser_nonce,
            )
        except DomainError as exc:
            self.busy, self.error = False, str(exc)
            self.link_ok = not isinstance(exc, recovery.LinkRefused)
            return
        yield go_to_ticket(ticket)


class VerifyEmailState(rx.State):
    """The verification link's page: says whether the address is now verified."""

    done: rx.Field[bool] = rx.field(False)
    verified: rx.Field[bool] = rx.field(False)
    message: rx.Field[str] = rx.field("")

    @rx.event
    async def load(self):
        self.done, self.verified, self.message = False, False, ""
        try:
            user = await run_service(
                recovery.verify_email, token=str(self.router.url.query_parameters.get("token", ""))
            )
        except DomainError as exc:
            self.message = str(exc)
        else:
            self.verified = True
            self.message = f"Your e-mail address {user.email} is verified. You can publish products now."
        self.done = True
        return SessionState.load_session  # the navbar and seller notice see the new status


class EmailVerificationState(rx.State):
    """The seller pages' "Resend verification e-mail" button."""

    @rx.event
    @logged_in
    @shows_errors()
    async def resend(self, user: accounts.UserPublic):
        return rx.toast.info(await run_service(recovery.resend_verification, user_id=user.id))
