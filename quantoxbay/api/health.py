"""GET /api/health: 200 when the database answers, 503 otherwise."""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from quantoxbay.db import get_engine

logger = logging.getLogger(__name__)


def _ping() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


async def health(_request: Request) -> JSONResponse:
    try:
        await run_in_threadpool(_ping)
    except Exception as exc:  # any failure to reach the database means unhealthy
        # The driver's text (hosts, users, versions) goes to the log, not to whoever asks.
        logger.warning("health check: the database is unreachable: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"status": "unavailable", "database": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
