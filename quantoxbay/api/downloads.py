"""GET /api/downloads/{token}: a signed, short-lived link. Local files stream with Range
support and constant memory; S3 files redirect to a presigned URL."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from quantoxbay import routes
from quantoxbay.db import session_scope
from quantoxbay.services import DomainError, NotFound, PermissionDenied, accounts
from quantoxbay.services.downloads import DownloadTarget, LinkExpired, record_download, resolve_download
from quantoxbay.settings import get_settings
from quantoxbay.storage import get_storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _authorize(token: str, cookie_token: str | None, range_header: str | None, ip: str) -> DownloadTarget:
    """Check the link, then count and log the request, in one transaction."""
    settings = get_settings()
    with session_scope() as session:
        user = accounts.user_for_session(session=session, token=cookie_token)
        target = resolve_download(
            session=session,
            secret=settings.app_secret,
            token=token,
            user_id=user.id if user else None,
            max_age_seconds=settings.download_link_ttl_seconds,
        )
        assert user is not None
        wanted = _parse_range(range_header, target.size_bytes)
        if wanted != "unsatisfiable":  # a 416 sends nothing, so it is not a download
            start = wanted[0] if isinstance(wanted, tuple) else 0
            record_download(session=session, target=target, user_id=user.id, ip=ip, range_start=start)
        return target


def _content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _parse_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """(start, end inclusive), None for the whole file, or "unsatisfiable"."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # malformed or multi-range: RFC 9110 lets us ignore it and send everything
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    if size == 0 or start >= size or start > end:
        return "unsatisfiable"
    return start, end


async def download(request: Request) -> Response:
    token = request.path_params["token"]
    try:
        target = await run_in_threadpool(
            _authorize,
            token,
            request.cookies.get(routes.SESSION_COOKIE),
            request.headers.get("range"),
            request.client.host if request.client else "",
        )
    except LinkExpired as exc:
        if "text/html" in request.headers.get("accept", ""):
            # A browser following an old link from the library: send it back for a fresh one.
            return RedirectResponse(f"{routes.LIBRARY}?expired=1", status_code=303)
        return JSONResponse({"error": str(exc)}, status_code=410)
    except PermissionDenied as exc:
        return JSONResponse({"error": str(exc)}, status_code=403)
    except NotFound as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except DomainError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)

    storage = get_storage()
    presigned = storage.presigned_url(target.storage_key, expires_in=300, filename=target.filename)
    if presigned:
        return RedirectResponse(presigned, status_code=302)

    size = target.size_bytes
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": _content_disposition(target.filename),
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    wanted = _parse_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        start, end, status = 0, size - 1, 200
    else:
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(max(end - start + 1, 0))
    body = storage.open_range(target.storage_key, start, end if size else None)
    return StreamingResponse(body, status_code=status, media_type=target.content_type, headers=headers)
