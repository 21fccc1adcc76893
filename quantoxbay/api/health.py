"""GET /api/health: 200 when the database answers, 503 otherwise."""

from __future__ import annotations

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from quantoxbay.db import get_engine


def _ping() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


async def health(_request: Request) -> JSONResponse:
    try:
        await run_in_threadpool(_ping)
    except Exception as exc:  # any failure to reach the database means unhealthy
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
