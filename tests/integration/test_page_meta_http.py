"""Product and seller pages' head tags over HTTP, through the same ASGI layers the app stacks:
the API's routes (sitemap, robots.txt) in front of Reflex, api/page_meta.py, api/security.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from quantoxbay import routes
from quantoxbay.api import page_meta
from quantoxbay.api.app import api_routes
from quantoxbay.api.security import SecurityMiddleware, content_security_policy
from quantoxbay.db import session_scope
from quantoxbay.models import Role, User
from quantoxbay.services import catalog
from tests.factories import create_published_product, create_user
from tests.unit.test_seo import HOSTILE, parse

PUBLIC_URL = "http://shop.test"
# The head of Reflex's exported shell, as `reflex export` writes it (trimmed).
SHELL = (
    '<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/>'
    '<meta content="width=device-width, initial-scale=1" name="viewport"/>'
    '<meta content="QuantoxBay: digital products from independent creators" name="description"/>'
    '<link rel="modulepreload" href="/assets/root.js"/>' + "<!-- padding -->" * 100 + "</head>"
    '<body><div id="root"></div><script>window.__reactRouterContext = {};</script></body></html>'
)


async def _reflex(_request: Request) -> HTMLResponse:
    return HTMLResponse("the plain shell from Reflex")


def _stack(shell_dir: Path) -> TestClient:
    """API routes in front of a stand-in for Reflex, then page_meta, then the security layer."""
    api = Starlette(routes=api_routes())
    api.mount("", Starlette(routes=[Route("/{path:path}", _reflex)]))
    wrapped = page_meta.page_meta_middleware(shell_dir)(api)
    app = SecurityMiddleware(wrapped, public_url=PUBLIC_URL, max_upload_bytes=1024)
    return TestClient(app, base_url=PUBLIC_URL)


@pytest.fixture
def shell_dir(tmp_path: Path) -> Path:
    (tmp_path / "__spa-fallback.html").write_text(SHELL)
    return tmp_path


@pytest.fixture
def client(engine: Engine, shell_dir: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("PUBLIC_URL", PUBLIC_URL)
    from quantoxbay.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr(page_meta, "session_scope", lambda: session_scope(engine))
    yield _stack(shell_dir)
    get_settings.cache_clear()


def _seller_with_product(engine: Engine, storage, title: str = "Field recordings") -> tuple[int, str, int]:
    with Session(engine) as s:
        seller = create_user(s, Role.SELLER)
        product = create_published_product(s, storage, seller, title=title, price_cents=1999)
        handle = s.get(User, seller.id).handle  # type: ignore[union-attr]
        s.commit()
        return seller.id, handle or "", product.id  # type: ignore[return-value]


def test_product_page_html_carries_its_tags_in_the_head(client: TestClient, engine: Engine, storage) -> None:
    _, handle, product_id = _seller_with_product(engine, storage)
    response = client.get(f"/products/{product_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-encoding"] == "gzip"  # the test client asks for it
    assert int(response.headers["content-length"]) < len(response.text.encode())
    # The security layer still wraps the page, and its CSP is unchanged (JSON-LD is data).
    assert response.headers["content-security-policy"] == content_security_policy(PUBLIC_URL)

    html = response.text
    head = parse(html.split("</head>")[0])
    assert html.startswith('<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/><title>')
    assert head.title == "Field recordings · QuantoxBay"
    assert head.meta["og:title"] == "Field recordings"
    assert head.meta["og:url"] == f"{PUBLIC_URL}/products/{product_id}"
    assert head.meta["product:price:amount"] == "19.99"
    # Exactly one description: the page's, not the site-wide one as well.
    assert html.count('name="description"') == 1 and "independent creators" not in html
    data = json.loads(head.scripts[0][1])
    assert data["offers"]["availability"] == "https://schema.org/InStock"
    # The rest of the shell is untouched: the app still boots in the browser.
    assert html.endswith("<script>window.__reactRouterContext = {};</script></body></html>")

    seller_page = client.get(f"/sellers/{handle}")
    assert seller_page.status_code == 200
    assert parse(seller_page.text).links["canonical"] == f"{PUBLIC_URL}/sellers/{handle}"

    # HEAD: the same headers, no body; without gzip the body goes as it is.
    assert client.head(f"/products/{product_id}").content == b""
    plain = client.get(f"/products/{product_id}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and "og:title" in plain.text


def test_unknown_and_unpublished_pages_are_404_with_noindex(
    client: TestClient, engine: Engine, storage
) -> None:
    seller_id, _, product_id = _seller_with_product(engine, storage)
    with Session(engine) as s:
        catalog.unpublish_product(session=s, product_id=product_id, seller_id=seller_id)
        s.commit()
    for path in (
        f"/products/{product_id}",
        "/products/99999999",
        "/products/not-a-number",
        "/sellers/nobody",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        head = parse(response.text.split("</head>")[0])
        assert head.meta["robots"] == "noindex", path
        assert "og:title" not in head.meta and not head.scripts, path
    # Other pages are Reflex's own.
    assert client.get("/").text == "the plain shell from Reflex"
    assert client.get("/products/1/edit").text == "the plain shell from Reflex"


def test_hostile_title_is_inert_in_the_served_page(client: TestClient, engine: Engine, storage) -> None:
    _, _, product_id = _seller_with_product(engine, storage, title=HOSTILE)
    html = client.get(f"/products/{product_id}").text
    head_html = html.split("</head>")[0]
    head = parse(head_html)
    assert "<script>alert" not in html and "<img" not in html
    assert head.elements.count("script") == 1  # the JSON-LD only
    assert head.title == f"{HOSTILE} · QuantoxBay"
    assert json.loads(head.scripts[0][1])["name"] == HOSTILE


def test_without_an_exported_shell_or_a_database_reflex_answers(
    engine: Engine, storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_meta, "session_scope", lambda: session_scope(engine))
    _, _, product_id = _seller_with_product(engine, storage)
    # The dev server: nothing exported.
    assert _stack(tmp_path / "missing").get(f"/products/{product_id}").text == "the plain shell from Reflex"

    def broken() -> None:
        raise RuntimeError("database down")

    (tmp_path / "404.html").write_text(SHELL)
    monkeypatch.setattr(page_meta, "session_scope", broken)
    response = _stack(tmp_path).get(f"/products/{product_id}")
    assert (response.status_code, response.text) == (200, "the plain shell from Reflex")


def test_a_rebuilt_shell_is_read_again(tmp_path: Path) -> None:
    shell = page_meta.Shell(tmp_path)
    assert shell.parts() is None
    path = tmp_path / "__spa-fallback.html"
    path.write_text("<html><head></head><body>one</body></html>")
    assert shell.parts() == ("<html><head>", "</head><body>one</body></html>")
    path.write_text('<html><head><meta charSet="utf-8"/></head><body>two</body></html>')
    os.utime(path, (1, 1))  # a different mtime, whatever the file system's resolution
    assert shell.parts() == ('<html><head><meta charSet="utf-8"/>', "</head><body>two</body></html>")


def test_sitemap_and_robots_txt(client: TestClient, engine: Engine, storage) -> None:
    _, handle, product_id = _seller_with_product(engine, storage)
    sitemap = client.get(routes.SITEMAP)
    assert sitemap.status_code == 200
    assert sitemap.headers["content-type"].startswith("application/xml")
    assert f"<loc>{PUBLIC_URL}/products/{product_id}</loc>" in sitemap.text
    assert f"<loc>{PUBLIC_URL}/sellers/{handle}</loc>" in sitemap.text

    robots = client.get(routes.ROBOTS)
    assert robots.status_code == 200 and robots.headers["content-type"].startswith("text/plain")
    assert "Disallow: /checkout\n" in robots.text
    assert f"Sitemap: {PUBLIC_URL}/sitemap.xml" in robots.text
