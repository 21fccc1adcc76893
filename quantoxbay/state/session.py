"""Who is looking at the page. The HttpOnly session cookie travels with the websocket handshake,
so every event handler can re-check the user on the server; nothing here trusts the browser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import TypeVar

import reflex as rx

from quantoxbay import routes
from quantoxbay.models import Role
from quantoxbay.services import PermissionDenied, accounts, wiring
from quantoxbay.services.accounts import UserPublic

T = TypeVar("T")


async def run_service(fn: Callable[..., T], /, **kwargs: object) -> T:
    """Run a service function in a fresh DB transaction on a worker thread (keeps the event loop
    free), handing it the session and the dependencies it names (services.wiring); what it
    announced is published after the commit."""
    return await asyncio.to_thread(wiring.call, fn, **kwargs)


class SessionState(rx.State):
    """The logged-in user as the navbar and guards see it."""

    user_id: int = 0
    email: str = ""
    role: str = ""
    display_name: str = ""
    # Whether the user opened their verification e-mail (selling needs it; the seller pages say so).
    email_verified: bool = False
    session_checked: bool = False

    @rx.var
    def is_logged_in(self) -> bool:
        return self.user_id > 0

    @rx.var
    def is_seller(self) -> bool:
        return self.role in (Role.SELLER, Role.ADMIN)

    @rx.var
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @rx.var
    def initial(self) -> str:
        return (self.display_name or self.email or "?")[:1].upper()

    def _session_token(self) -> str | None:
        cookie = SimpleCookie()
        try:
            cookie.load(self.router.headers.cookie or "")
        except Exception:  # a malformed cookie header means no session
            return None
        morsel = cookie.get(routes.SESSION_COOKIE)
        return morsel.value if morsel else None

    async def current_user(self) -> UserPublic | None:
        """Look the user up from the cookie, on every call (sessions can end at any time)."""
        user = await run_service(accounts.user_for_session, token=self._session_token())
        self._remember(user)
        return user

    async def require_user(self, *roles: Role) -> UserPublic:
        """The current user if they hold one of ``roles`` (any role when none given); else PermissionDenied."""
        user = await self.current_user()
        if not roles:
            if user is None:
                raise PermissionDenied("Please log in first.")
            return user
        return accounts.require_role(user, *roles)

    def _remember(self, user: UserPublic | None) -> None:
        self.session_checked = True
        if user is None:
            self.user_id, self.email, self.role, self.display_name = 0, "", "", ""
            self.email_verified = False
        else:
            self.user_id, self.email, self.role = user.id, user.email, user.role
            self.display_name, self.email_verified = user.display_name, user.email_verified

    @rx.event
    async def load_session(self) -> None:
        """on_load of every page: refresh who is logged in."""
        await self.current_user()

    def _guard_redirect(self, user: UserPublic | None, *roles: Role):
        """The redirect for a page guard, or None when the user may stay."""
        if user is None:
            path = self.router.url.path or "/"
            return rx.redirect(f"{routes.LOGIN}?next={path}")
        try:
            accounts.require_role(user, *roles)
        except PermissionDenied as exc:
            return [rx.redirect(routes.STOREFRONT), rx.toast.error(str(exc))]
        return None

    @rx.event
    async def guard_logged_in(self):
        return self._guard_redirect(await self.current_user(), Role.BUYER, Role.SELLER)

    @rx.event
    async def guard_seller(self):
        return self._guard_redirect(await self.current_user(), Role.SELLER)

    @rx.event
    async def guard_admin(self):
        return self._guard_redirect(await self.current_user(), Role.ADMIN)
