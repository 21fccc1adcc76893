"""GET /api/covers/{product_id}/{upload}/{variant}.webp: a published product's cover thumbnail.

Cover keys are unique per upload (a new cover gets a new key), so a response never goes
stale: browsers and CDNs may keep it for a year. Only covers of published products are
served; anything else (drafts, deleted products, replaced covers, made-up paths) is 404.
Local files are sent by the server (sendfile); S3 objects redirect to a presigned URL.
"""

from __future__ import annotations

import re

from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from quantoxbay.db import session_scope
from quantoxbay.models import Product, ProductStatus
from quantoxbay.storage import StorageError, get_storage

_PATH = re.compile(r"^(\d{1,18})/([0-9a-f]{32})/(card|page)\.webp$")
IMMUTABLE = "public, max-age=31536000, immutable"
PRESIGNED_TTL = 3600


def _is_public_cover(product_id: int, cover_key: str) -> bool:
    with session_scope() as session:
        found = session.exec(
            select(Product.id).where(
                Product.id == product_id,
                Product.cover_key == cover_key,
                Product.status == ProductStatus.PUBLISHED.value,
            )
        ).first()
    return found is not None


def _not_found() -> Response:
    return JSONResponse({"error": "No such cover."}, status_code=404, headers={"Cache-Control": "no-store"})


async def cover(request: Request) -> Response:
    match = _PATH.match(request.path_params["key"])
    if not match:
        return _not_found()
    product_id, upload, variant = int(match.group(1)), match.group(2), match.group(3)
    cover_key = f"covers/{product_id}/{upload}"
    if not await run_in_threadpool(_is_public_cover, product_id, cover_key):
        return _not_found()
    key = f"{cover_key}/{variant}.webp"
    storage = get_storage()
    try:
        presigned = storage.presigned_url(key, expires_in=PRESIGNED_TTL)
        if presigned:
            # The redirect may be cached only while the presigned URL still works.
            return RedirectResponse(
                presigned, status_code=302, headers={"Cache-Control": f"public, max-age={PRESIGNED_TTL // 2}"}
            )
        path = storage.local_path(key)
        if path is not None:
            return FileResponse(path, media_type="image/webp", headers={"Cache-Control": IMMUTABLE})
        chunks = storage.open_range(key)
    except (StorageError, ValueError):
        return _not_found()
    return StreamingResponse(chunks, media_type="image/webp", headers={"Cache-Control": IMMUTABLE})
