"""Product and seller pages with their own head tags in the HTML the server sends; the sitemap
and robots.txt.

In production (``reflex run --env prod --single-port``) Reflex serves every page from the static
export in ``.web/build/client``; a dynamic route such as ``/products/[product_id]`` gets the
same SPA shell whatever the id, so a crawler or a link preview, which runs no JavaScript, saw no
title, description or image. :class:`PageMetaMiddleware` answers ``GET``/``HEAD`` of
``/products/{id}`` and ``/sellers/{handle}`` itself: the shell (read once, read again when the
build replaces it) with that page's tags (``services/seo.py``, one indexed query) put into its
``<head>``, 404 with ``noindex`` for an unknown or unpublished product or seller. The browser
then runs the same app as before. Without an exported shell (the dev server, tests) or when the
database fails, the request goes on to Reflex untouched: a page never breaks for its tags.

Pure ASGI, like ``api/security.py``, which stays outside it and adds the security headers. The
JSON-LD is an inline ``<script type="application/ld+json">``: data, which browsers never run,
so the Content-Security-Policy needs no change.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from quantoxbay.api.security import ASGIApp, Receive, Scope, Send
from quantoxbay.db import session_scope
from quantoxbay.services import seo
from quantoxbay.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: The exported shell Reflex serves for routes without a prerendered file, in preference order.
SHELL_NAMES = ("__spa-fallback.html", "404.html")
_PRODUCT_PATH = re.compile(r"^/products/([^/]+)/?$")
_SELLER_PATH = re.compile(r"^/sellers/([^/]+)/?$")
_PRODUCT_ID = re.compile(r"^\d{1,18}$")
_HEAD_OPEN = re.compile(r"<head(?:\s[^>]*)?>(\s*<meta charSet=\"[^\"]*\"\s*/?>)?", re.IGNORECASE)
# The site-wide description every exported page carries: a page with its own drops it.
_DEFAULT_DESCRIPTION = re.compile(r"<meta\b[^>]*\bname=\"description\"[^>]*>", re.IGNORECASE)
#: Smaller bodies go out as they are (gzip would not pay for its header).
GZIP_MIN_BYTES = 1024

PageLookup = Callable[[str, str], "seo.PageMeta | None"]


class Shell:
    """The exported SPA shell split around the point where a page's tags go, cached by mtime."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cached: tuple[Path, float, tuple[str, str]] | None = None

    def parts(self) -> tuple[str, str] | None:
        """(head up to the insertion point, the rest), or None when no shell is exported."""
        for name in SHELL_NAMES:
            path = self.directory / name
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            cached = self._cached
            if cached is not None and cached[0] == path and cached[1] == mtime:
                return cached[2]
            try:
                parts = split_shell(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                logger.warning("page_meta.shell_unreadable", extra={"path": str(path)})
                return None
            self._cached = (path, mtime, parts)
            return parts
        return None


def split_shell(shell: str) -> tuple[str, str]:
    """Split the shell right after ``<head>`` (and its charset, which must stay first), without
    the site-wide description. ValueError when it has no ``<head>``."""
    shell = _DEFAULT_DESCRIPTION.sub("", shell, count=1)
    match = _HEAD_OPEN.search(shell)
    if match is None:
        raise ValueError("the shell has no <head>")
    return shell[: match.end()], shell[match.end() :]


def render_page(parts: tuple[str, str], meta: seo.PageMeta) -> str:
    return parts[0] + meta.head_html() + parts[1]


def lookup_page(kind: str, key: str, *, public_url: str) -> seo.PageMeta | None:
    """A product's ("product", id) or seller's ("seller", handle) tags; None when there is none."""
    with session_scope() as session:
        if kind == "product":
            if not _PRODUCT_ID.match(key):
                return None
            return seo.product_page_meta(session=session, product_id=int(key), public_url=public_url)
        return seo.seller_page_meta(session=session, handle=key, public_url=public_url)


def _page_of(path: str) -> tuple[str, str] | None:
    if match := _PRODUCT_PATH.match(path):
        return "product", match.group(1)
    if match := _SELLER_PATH.match(path):
        return "seller", match.group(1)
    return None


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value.lower()
    return False


class PageMetaMiddleware:
    """Serves product and seller pages with their tags (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, shell_dir: Path, lookup: PageLookup) -> None:
        self.app = app
        self.shell = Shell(shell_dir)
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            page = _page_of(scope["path"])
            if page is not None:
                parts = self.shell.parts()
                if parts is not None and await self._answer(scope, send, parts, *page):
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, parts: tuple[str, str], kind: str, key: str) -> bool:
        try:
            meta = await run_in_threadpool(self.lookup, kind, key)
        except Exception:  # the page still works without its tags: Reflex serves the plain shell
            logger.exception("page_meta.lookup_failed", extra={"kind": kind})
            return False
        status = 200 if meta is not None else 404
        body = render_page(parts, meta if meta is not None else seo.not_found_meta()).encode("utf-8")
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            # Prices and titles change: caches must ask again (the shell's assets are immutable).
            (b"cache-control", b"no-cache"),
            (b"vary", b"Accept-Encoding"),
        ]
        if len(body) >= GZIP_MIN_BYTES and _accepts_gzip(scope):
            body = gzip.compress(body, compresslevel=5)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
        return True


def page_meta_middleware(shell_dir: Path, settings: Settings | None = None) -> Callable[[ASGIApp], ASGIApp]:
    """The transform Reflex's ``api_transformer`` applies (inside the security layer)."""
    public_url = (settings or get_settings()).public_url

    def lookup(kind: str, key: str) -> seo.PageMeta | None:
        return lookup_page(kind, key, public_url=public_url)

    def wrap(app: ASGIApp) -> ASGIApp:
        return PageMetaMiddleware(app, shell_dir=shell_dir, lookup=lookup)

    return wrap


# --- sitemap and robots.txt ------------------------------------------------------------


def _sitemap(public_url: str) -> str:
    with session_scope() as session:
        return seo.sitemap_xml(session=session, public_url=public_url)


async def sitemap(_request: Request) -> Response:
    body = await run_in_threadpool(_sitemap, get_settings().public_url)
    return Response(body, media_type="application/xml", headers={"Cache-Control": "public, max-age=300"})


async def robots(_request: Request) -> Response:
    return Response(
        seo.robots_txt(public_url=get_settings().public_url),
        media_type="text/plain",
        headers={"Cache-Control": "public, max-age=3600"},
    )
