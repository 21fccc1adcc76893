"""Link previews and search engines on the running production app, read as a crawler reads it:
the raw HTML the server sends (no JavaScript), the sitemap and robots.txt."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.test_accounts_journey import PASSWORD
from tests.unit.test_seo import HOSTILE, parse


def _fetch(url: str) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers={"User-Agent": "Twitterbot/1.0"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return (
                response.status,
                response.read().decode(),
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), {k.lower(): v for k, v in error.headers.items()}


def _published(live_app, seller: str, title: str, *args: str) -> int:
    payload = Path(live_app.data_dir) / f"lp-{uuid.uuid4().hex[:8]}.txt"
    payload.write_bytes(b"preview contents")
    made = live_app.cli("create-product", "--seller", seller, "--title", title, *args, "--file", str(payload))
    assert made.returncode == 0, made.stderr
    return int(made.stdout.split("Published product ")[1].split(":")[0])


def _handle(live_app, email: str) -> str:
    with sqlite3.connect(live_app.data_dir / "quantoxbay.db") as conn:
        return conn.execute("SELECT handle FROM user WHERE email = ?", (email,)).fetchone()[0]


def test_product_and_seller_pages_sitemap_and_robots_as_a_crawler_sees_them(live_app) -> None:
    seller = f"lp-seller-{uuid.uuid4().hex[:8]}@example.com"
    made = live_app.cli("create-user", seller, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr
    onboarded = live_app.cli("onboard-seller", seller)
    assert onboarded.returncode == 0, onboarded.stderr
    product_id = _published(
        live_app,
        seller,
        "Tape loops vol. 2",
        "--price",
        "14.50",
        "--description",
        "Six **tape** loops, 24-bit.",
    )
    hostile_id = _published(live_app, seller, HOSTILE, "--price", "5.00")

    status, html, headers = _fetch(f"{live_app.url}/products/{product_id}")
    assert status == 200 and headers["content-type"].startswith("text/html")
    head = parse(html.split("</head>")[0])
    url = f"{live_app.url}/products/{product_id}"
    assert head.title == "Tape loops vol. 2 · QuantoxBay"
    assert head.meta["description"] == "Six tape loops, 24-bit."
    assert head.meta["og:title"] == "Tape loops vol. 2" and head.meta["og:url"] == url
    assert head.meta["product:price:amount"] == "14.50" and head.meta["twitter:data1"] == "$14.50"
    [data] = [json.loads(text) for kind, text in head.scripts if kind == "application/ld+json"]
    assert data["@type"] == "Product" and data["name"] == "Tape loops vol. 2"
    assert data["offers"]["price"] == "14.50" and data["offers"]["priceCurrency"] == "USD"
    assert data["offers"]["availability"] == "https://schema.org/InStock"
    # Still the app's page: its scripts load as before.
    assert "window.__reactRouterContext" in html

    status, html, _ = _fetch(f"{live_app.url}/products/{hostile_id}")
    assert status == 200
    assert "<script>alert" not in html and "<img src=x" not in html
    head = parse(html.split("</head>")[0])
    assert head.meta["og:title"] == HOSTILE

    handle = _handle(live_app, seller)
    status, html, _ = _fetch(f"{live_app.url}/sellers/{handle}")
    assert status == 200
    assert parse(html.split("</head>")[0]).links["canonical"] == f"{live_app.url}/sellers/{handle}"

    status, html, _ = _fetch(f"{live_app.url}/products/987654321")
    assert status == 404 and parse(html.split("</head>")[0]).meta["robots"] == "noindex"

    status, sitemap, headers = _fetch(f"{live_app.url}/sitemap.xml")
    assert status == 200 and "xml" in headers["content-type"]
    assert f"<loc>{url}</loc>" in sitemap
    assert f"<loc>{live_app.url}/sellers/{handle}</loc>" in sitemap

    status, robots, _ = _fetch(f"{live_app.url}/robots.txt")
    assert status == 200
    assert "Disallow: /seller\n" in robots and "Allow: /sellers/\n" in robots
    assert f"Sitemap: {live_app.url}/sitemap.xml" in robots


def test_product_page_with_its_tags_still_runs_in_the_browser(live_app, new_page) -> None:
    """The page hydrates over the served head, and its JSON-LD breaks no CSP rule (new_page fails
    the test on any CSP violation)."""
    seller = f"lp-browser-{uuid.uuid4().hex[:8]}@example.com"
    made = live_app.cli("create-user", seller, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr
    assert live_app.cli("onboard-seller", seller).returncode == 0
    product_id = _published(live_app, seller, "Hydrated preview", "--price", "3.00")
    page = new_page()
    page.goto(f"/products/{product_id}")
    expect(page.get_by_role("heading", name="Hydrated preview")).to_be_visible()
    expect(page.get_by_role("button", name="Buy now")).to_be_enabled()
    # React takes over the served <title>: one title, the app's own.
    assert page.evaluate("document.querySelectorAll('title').length") == 1, page.content()[:3000]
