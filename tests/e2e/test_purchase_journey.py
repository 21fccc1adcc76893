"""Journey: sign up, Buy now, pay with 4242 on the hosted page, see "Payment confirmed" arrive,
download the file and compare its bytes; a declined card creates no order."""

from __future__ import annotations

import re
import sqlite3
import uuid

from playwright.sync_api import expect

from tests.e2e.test_accounts_journey import PASSWORD

PRODUCT = "The Indie Maker's Field Guide"


def _sign_up_buyer(page) -> str:
    email = f"payer-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    return email


def _open_checkout(page) -> None:
    page.goto("/")
    page.get_by_role("link", name=PRODUCT).click()
    expect(page.get_by_role("heading", name=PRODUCT)).to_be_visible()
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(re.compile(r"/stripe-local/checkout/cs_test_"), timeout=20_000)


def _pay(page, card: str) -> None:
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Test Buyer")
    page.get_by_role("button", name="Pay").click()


def _orders(live_app, email: str) -> list[tuple]:
    with sqlite3.connect(live_app.data_dir / "quantoxbay.db") as conn:
        return conn.execute(
            'SELECT o.status, o.total_cents FROM "order" o JOIN user u ON u.id = o.buyer_id WHERE u.email = ?',
            (email,),
        ).fetchall()


def test_buy_pay_confirm_download(new_page, live_app) -> None:
    page = new_page()
    email = _sign_up_buyer(page)
    _open_checkout(page)
    _pay(page, "4242424242424242")
    expect(page).to_have_url(re.compile(r"/checkout/success/?\?session_id=cs_test_"), timeout=20_000)
    expect(page.get_by_text("Payment confirmed")).to_be_visible(timeout=20_000)

    href = page.get_by_role("link", name="Download").first.get_attribute("href")
    probe = page.request.get(href)
    assert probe.status == 200, (href, probe.status, probe.text()[:300])
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download").first.click()
    downloaded = download_info.value.path().read_bytes()
    assert downloaded == probe.body()
    from quantoxbay.services.demo import _ebook

    assert downloaded == _ebook()
    assert _orders(live_app, email) == [("paid", 1200)]

    # The library has it too, and the product page now offers "Download" instead of "Buy now".
    page.goto("/library")
    expect(page.get_by_test_id("library-row").filter(has_text=PRODUCT)).to_be_visible()
    page.goto("/")
    page.get_by_role("link", name=PRODUCT).click()
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    expect(page.get_by_role("button", name="Buy now")).to_have_count(0)


def test_declined_card_shows_the_message_and_creates_no_order(new_page, live_app) -> None:
    page = new_page()
    email = _sign_up_buyer(page)
    _open_checkout(page)
    _pay(page, "4000000000000002")
    expect(page.get_by_text("Your card was declined.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/stripe-local/checkout/"))
    assert _orders(live_app, email) == []


def test_anonymous_buy_now_asks_to_log_in_and_comes_back(new_page) -> None:
    page = new_page()
    page.goto("/")
    page.get_by_role("link", name=PRODUCT).click()
    product_url = page.url
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(re.compile(r"/login\?next=/products/\d+"))
    email = f"late-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_role("link", name="Create an account").click()
    page.goto(page.url.replace("/login", "/signup") if "/signup" not in page.url else page.url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    assert page.url.startswith(product_url.split("?")[0]) or page.url.endswith("/")
