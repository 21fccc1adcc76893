"""Journey after the purchase: buy with 4242, the receipt arrives over real SMTP, the file downloads
from the library, the seller refunds from /seller/orders, and the buyer's download is refused."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from quantoxbay.services.demo import DEMO_PASSWORD, _ebook
from tests.e2e.test_purchase_journey import PRODUCT, _open_checkout, _pay, _sign_up_buyer


def _log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()


def test_receipt_library_download_refund_revokes(new_page, live_app) -> None:
    buyer = new_page()
    email = _sign_up_buyer(buyer)
    _open_checkout(buyer)
    _pay(buyer, "4242424242424242")
    expect(buyer.get_by_text("Payment confirmed")).to_be_visible(timeout=20_000)
    # The confirmation names the order and where the receipt went.
    expect(buyer.get_by_test_id("order-number")).to_have_text(re.compile(r"^Order #\d+$"))
    order_id = buyer.get_by_test_id("order-number").inner_text().removeprefix("Order #")
    expect(buyer.get_by_test_id("receipt-note")).to_have_text(f"We e-mailed your receipt to {email}.")

    # One receipt, text and HTML, with the order's amount and a link to the library.
    receipt = live_app.smtp.wait_for(lambda m: m["To"] == email and "receipt" in str(m["Subject"]))
    text = receipt.get_body(("plain",)).get_content()
    assert "$12.00" in text and PRODUCT in text and f"{live_app.url}/library" in text
    assert receipt.get_body(("html",)) is not None

    # The library: status and a working Download link.
    buyer.goto("/library")
    row = buyer.get_by_test_id("library-row").filter(has_text=PRODUCT)
    expect(row.get_by_test_id("order-status")).to_have_text("paid")
    href = row.get_by_role("link", name="Download").first.get_attribute("href")
    with buyer.expect_download() as download_info:
        row.get_by_role("link", name="Download").first.click()
    assert download_info.value.path().read_bytes() == _ebook()

    # "Resend receipt" right after the purchase: the receipt just went, which is news, not an error.
    row.get_by_role("button", name="Resend receipt").click()
    expect(
        buyer.get_by_text(re.compile(f"(sent your receipt|on its way) to {re.escape(email)}"))
    ).to_be_visible()
    expect(buyer.locator("[data-sonner-toast][data-type='error']")).to_have_count(0)

    # The seller refunds the order in full from their Orders view.
    seller = new_page()
    _log_in(seller, "seller@demo.quantoxbay.test", DEMO_PASSWORD)
    seller.goto("/seller/orders")
    order_row = seller.get_by_test_id("seller-order-row").filter(has_text=email)
    expect(order_row).to_have_count(1)
    order_row.get_by_role("button", name="Refund").click()
    expect(seller.get_by_label("Refund amount")).to_have_value("12.00")
    expect(seller.get_by_test_id("refund-note")).to_contain_text("A full refund ends the buyer's downloads")
    seller.get_by_role("button", name="Confirm refund").click()
    expect(
        seller.get_by_text(
            f"Refunded $12.00 of order #{order_id}. "
            "The order is refunded in full, so the buyer can no longer download its files."
        )
    ).to_be_visible(timeout=20_000)
    expect(order_row.get_by_text("refunded", exact=True)).to_be_visible(timeout=20_000)
    expect(order_row.get_by_role("button", name="Refund")).to_have_count(0)

    # The buyer's link, handed out before the refund, no longer works; the library says so.
    refused = buyer.request.get(href)
    assert refused.status == 403, (refused.status, refused.text()[:200])
    assert "withdrawn" in refused.text()
    buyer.goto("/library")
    row = buyer.get_by_test_id("library-row").filter(has_text=PRODUCT)
    expect(row.get_by_test_id("order-status")).to_have_text(re.compile("refunded"))
    expect(row.get_by_text("Not available")).to_be_visible()
