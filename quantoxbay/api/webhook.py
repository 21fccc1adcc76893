"""POST /api/stripe/webhook: verify, record once, fulfil, answer fast; pushes go out after commit."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from quantoxbay.db import session_scope
from quantoxbay.payments.webhooks import (
    InvalidWebhook,
    ProcessOutcome,
    process_event,
    record_failure,
    verify_event,
)
from quantoxbay.services import notifier
from quantoxbay.settings import get_settings

logger = logging.getLogger(__name__)


def _process(event: dict, raw: str) -> ProcessOutcome:
    with session_scope() as session:
        return process_event(session=session, event=event, raw=raw)


def _record_failure(event: dict, raw: str, error: BaseException) -> None:
    with session_scope() as session:
        record_failure(session=session, event=event, raw=raw, error=error)


async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await request.body()
    try:
        event = verify_event(
            payload, request.headers.get("stripe-signature"), get_settings().stripe_webhook_secret
        )
    except InvalidWebhook as exc:
        # Nothing is written for an unverified request.
        return JSONResponse({"error": f"invalid signature or payload: {exc}"}, status_code=400)
    raw = payload.decode("utf-8")
    try:
        outcome = await run_in_threadpool(_process, event, raw)
    except Exception as exc:
        logger.exception("webhook %s (%s) failed", event["id"], event["type"])
        try:
            await run_in_threadpool(_record_failure, event, raw, exc)
        except Exception:
            logger.exception("could not record the failure of %s", event["id"])
        # 5xx: Stripe delivers again later, and the event is processed then.
        return JSONResponse({"error": "processing failed; retry later"}, status_code=500)
    for announcement in outcome.announcements:
        notifier.announce(announcement)
    return JSONResponse({"received": True, "duplicate": outcome.duplicate, "outcome": outcome.outcome})
