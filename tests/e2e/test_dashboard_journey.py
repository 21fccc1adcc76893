"""Journey: the demo seller's open dashboard shows a sale made by a buyer in another browser
context, pushed by the server (no reload, no polling), with a toast naming it; the CSV export
has it; the admin finds the order; a buyer is refused the admin panel."""

from __future__ import annotations

import re
import time
import uuid

from playwright.sync_api import expect

from tests.e2e.test_purchase_journey import PRODUCT, _open_checkout, _pay, _sign_up_buyer

DEMO_PASSWORD = "demo-password-123"


def _log_in(page, email: str, next_path: str) -> None:
    page.goto(f"/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + r"/?$"), timeout=20_000)


def _count(page, test_id: str) -> int:
    return int(page.get_by_test_id(test_id).inner_text().strip())


def test_open_dashboard_shows_a_new_sale_without_reloading(new_page) -> None:
    seller = new_page()
    _log_in(seller, "seller@demo.quantoxbay.test", "/seller")
    expect(seller.get_by_role("heading", name="Seller dashboard")).to_be_visible()
    seller.get_by_role("radio", name="Today").click()
    expect(seller.get_by_text("Revenue", exact=True)).to_be_visible()
    expect(seller.get_by_test_id("revenue-orders")).to_be_visible()
    expect(seller.get_by_test_id("sales-chart")).to_be_visible()
    time.sleep(0.5)  # let the browser's time zone round trip settle
    before = _count(seller, "revenue-orders")
    seller.evaluate("window.__still_the_same_page = true")

    buyer = new_page()
    buyer_email = _sign_up_buyer(buyer)
    _open_checkout(buyer)
    _pay(buyer, "4242424242424242")
    expect(buyer.get_by_text("Payment confirmed")).to_be_visible(timeout=20_000)
    confirmed = time.monotonic()

    toast = seller.get_by_test_id("live-toast")
    expect(toast).to_contain_text(f"New sale: {PRODUCT}", timeout=5_000)
    latency = time.monotonic() - confirmed
    expect(seller.get_by_test_id("revenue-orders")).to_have_text(str(before + 1))
    assert seller.evaluate("window.__still_the_same_page === true"), "the dashboard reloaded"
    print(f"seller dashboard updated {latency:.2f}s after the buyer saw 'Payment confirmed'")
    assert latency < 2.0, latency
    expect(seller.get_by_test_id("product-row").filter(has_text=PRODUCT)).to_be_visible()

    with seller.expect_download() as download_info:
        seller.get_by_role("button", name="Export CSV").click()
    csv_text = download_info.value.path().read_text()
    assert csv_text.startswith("order_id,date,time_zone,status") and buyer_email in csv_text

    admin = new_page()
    _log_in(admin, "admin@demo.quantoxbay.test", "/admin")
    for section in ("Users", "Products", "Orders", "Webhook events"):
        expect(admin.get_by_role("heading", name=section, exact=True)).to_be_visible()
    admin.get_by_label("Search orders").fill(buyer_email)
    admin.get_by_label("Search orders").press("Enter")
    expect(admin.get_by_role("heading", name=re.compile(r"^Order #\d+$"))).to_be_visible()
    expect(admin.get_by_role("row").filter(has_text=buyer_email).first).to_be_visible()
    expect(admin.get_by_role("row").filter(has_text="checkout.session.completed").first).to_be_visible()


def test_a_buyer_is_refused_the_admin_panel(new_page) -> None:
    page = new_page()
    page.goto("/signup")
    page.get_by_label("Email").fill(f"curious-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill("journey-password-1")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Users")).to_have_count(0)
