"""Turns service announcements into live pushes to open pages via ``app.modify_state``.

Each page that wants pushes registered (topic, client token, state) in the database;
here we look them up and, per client token, let that page's state refresh itself.
With Redis, Reflex routes a push made on one worker to the worker holding the socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import traceback
from typing import Any

import reflex as rx

from quantoxbay.db import session_scope
from quantoxbay.services import live, notifier
from quantoxbay.services.notifier import Announcement

logger = logging.getLogger(__name__)

#: How long a push may run inside the page's state lock (Reflex's lasts 10 s): no event of that
#: tab runs meanwhile, and a push still running when the lock expires deletes it from under the
#: next holder. A push cut short is lost like any other (the confirmation page re-reads the order
#: while it waits: state.checkout.CheckoutSuccessState.watch_payment).
PUSH_TIMEOUT_SECONDS = 5.0


def client_ref(client_token: str) -> str:
    """How logs name a page: enough to tell pages apart, useless to push to or impersonate one
    (a client token is the key to that browser tab's state)."""
    return "client#" + hashlib.sha256(client_token.encode()).hexdigest()[:10]


def _redacted_failure(exc: BaseException, client_token: str) -> str:
    """The exception and its traceback with the token replaced (Reflex puts it in state keys)."""
    text = "".join(traceback.format_exception(exc)).rstrip()
    return text.replace(client_token, client_ref(client_token)) if client_token else text


class LivePusher:
    """A notifier listener bound to the app and the server's event loop."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop, states: list[type[rx.State]]) -> None:
        self._app = app
        self._loop = loop
        self._states = {cls.get_full_name(): cls for cls in states}

    def __call__(self, announcement: Announcement) -> None:
        self.announce_many([announcement])

    def announce_many(self, announcements: list[Announcement]) -> None:
        # Called from any thread (after a commit, in a worker thread or a webhook writer): hand
        # over to the loop, waking it once for a transaction's (or a webhook batch's) announcements.
        asyncio.run_coroutine_threadsafe(self._push_all(announcements), self._loop)

    async def _push_all(self, announcements: list[Announcement]) -> None:
        for failed in await asyncio.gather(*map(self.push, announcements), return_exceptions=True):
            if isinstance(failed, BaseException):
                logger.warning("live push failed: %r", failed)

    async def push(self, announcement: Announcement) -> int:
        targets = await asyncio.to_thread(self._targets, list(announcement.topics))
        pushed = 0
        for client_token, state_name in targets:
            cls = self._states.get(state_name)
            if cls is None:
                continue
            try:
                async with self._app.modify_state(rx.BaseStateToken(ident=client_token, cls=cls)) as root:
                    async with asyncio.timeout(PUSH_TIMEOUT_SECONDS):
                        state = await root.get_state(cls)
                        await state.on_announcement(announcement.kind, announcement.data)
                pushed += 1
            except Exception as exc:
                logger.warning(
                    "live push to %s (%s) failed:\n%s",
                    client_ref(client_token),
                    state_name,
                    _redacted_failure(exc, client_token),
                )
        return pushed

    @staticmethod
    def _targets(topics: list[str]) -> list[tuple[str, str]]:
        with session_scope() as session:
            return live.subscribers(session=session, topics=topics)


def start_live_pushes(app: Any, states: list[type[rx.State]]) -> LivePusher:
    pusher = LivePusher(app, asyncio.get_running_loop(), states)
    notifier.subscribe(pusher)
    return pusher
