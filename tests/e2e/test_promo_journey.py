"""Journey: a seller creates a promo code and a sale in /seller/promotions; the product page shows
the sale with a live countdown; a buyer applies the code on the hosted checkout page, pays, and
the order records the discount."""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import datetime, timedelta

from playwright.sync_api import expect

from tests.e2e.test_accounts_journey import PASSWORD


def _log_in(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()


def _order(live_app, email: str) -> list[tuple]:
    with sqlite3.connect(live_app.data_dir / "quantoxbay.db") as conn:
        return conn.execute(
            "SELECT o.status, o.subtotal_cents, o.discount_cents, o.total_cents, o.promo_code, p.code "
            'FROM "order" o JOIN user u ON u.id = o.buyer_id '
            "LEFT JOIN promotion p ON p.stripe_promotion_code_id = o.promo_code WHERE u.email = ?",
            (email,),
        ).fetchall()


def test_seller_creates_code_and_sale_buyer_applies_code_on_hosted_page(new_page, live_app) -> None:
    tag = uuid.uuid4().hex[:6]
    seller_email, title, code = f"promo-seller-{tag}@example.com", f"Promo Pack {tag}", f"SAVE25-{tag}"
    made = live_app.cli("create-user", seller_email, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr
    onboarded = live_app.cli("onboard-seller", seller_email)
    assert onboarded.returncode == 0, onboarded.stderr
    payload = live_app.data_dir / f"promo-{tag}.txt"
    payload.write_bytes(b"promo pack contents")
    made = live_app.cli(
        "create-product",
        "--seller",
        seller_email,
        "--title",
        title,
        "--price-cents",
        "1000",
        "--file",
        str(payload),
    )
    assert made.returncode == 0, made.stderr

    # The seller: a bad code is refused with a clear message, then a 25% code and a sale.
    seller = new_page()
    _log_in(seller, seller_email)
    seller.goto("/seller/promotions")
    expect(seller.get_by_role("heading", name="Promotions")).to_be_visible()
    seller.get_by_label("Code", exact=True).fill("no spaces allowed")
    seller.get_by_label("Discount", exact=True).fill("25")
    seller.get_by_role("button", name="Create code").click()
    expect(seller.get_by_role("alert").filter(has_text="3 to 40 letters, digits or dashes")).to_be_visible()
    seller.get_by_label("Code", exact=True).fill(code)
    seller.get_by_role("button", name="Create code").click()
    row = seller.get_by_test_id("promo-row").filter(has_text=code)
    expect(row).to_contain_text("25% off")
    expect(row).to_contain_text("Active")

    seller.get_by_label("Sale price").fill("8.00")
    ends = (datetime.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")  # the browser's local time
    seller.get_by_label("Sale ends").fill(ends)
    seller.get_by_role("button", name="Schedule sale").click()
    expect(seller.get_by_role("status").filter(has_text="Sale on " + title)).to_be_visible()
    expect(seller.get_by_role("row").filter(has_text=title)).to_contain_text("Running")

    # The buyer: the product page shows the sale and a ticking countdown.
    buyer = new_page()
    buyer_email = f"promo-buyer-{tag}@example.com"
    buyer.goto("/signup")
    buyer.get_by_label("Email").fill(buyer_email)
    buyer.get_by_label("Password").fill(PASSWORD)
    buyer.get_by_role("button", name="Create account").click()
    expect(buyer.get_by_role("button", name="Account menu")).to_be_visible()
    buyer.goto("/")
    buyer.get_by_label("Search products").fill(title)
    buyer.get_by_role("link", name=title).first.click()
    expect(buyer.get_by_role("heading", name=title)).to_be_visible()
    expect(buyer.get_by_text("$8.00", exact=True)).to_be_visible()
    expect(buyer.get_by_label("Regular price")).to_have_text("$10.00")
    timer = buyer.get_by_role("timer", name="Sale ends in")
    expect(timer).to_have_text(re.compile(r"^[12]d \d\d:\d\d:\d\d$"))
    first = timer.text_content()
    expect(timer).not_to_have_text(first or "", timeout=5_000)  # it ticks

    buyer.get_by_role("button", name="Buy now").click()
    expect(buyer).to_have_url(re.compile(r"/stripe-local/checkout/cs_test_"), timeout=20_000)
    buyer.get_by_label("Promotion code").fill(code.lower())
    buyer.get_by_role("button", name="Apply").click()
    expect(buyer.get_by_text("Promotion code applied.")).to_be_visible()
    expect(buyer.get_by_text("$6.00").first).to_be_visible()
    buyer.get_by_label("Card number").fill("4242424242424242")
    buyer.get_by_label("Expiry (MM/YY)").fill("12/34")
    buyer.get_by_label("CVC").fill("123")
    buyer.get_by_label("Name on card").fill("Promo Buyer")
    buyer.get_by_role("button", name="Pay").click()
    expect(buyer).to_have_url(re.compile(r"/checkout/success/?\?session_id=cs_test_"), timeout=20_000)
    expect(buyer.get_by_text("Payment confirmed")).to_be_visible(timeout=20_000)

    [(status, subtotal, discount, total, promo_id, promo_code)] = _order(live_app, buyer_email)
    assert (status, subtotal, discount, total) == ("paid", 800, 200, 600)
    assert promo_id.startswith("promo_") and promo_code == code

    seller.reload()
    used = seller.get_by_test_id("promo-row").filter(has_text=code).get_by_role("cell", name="1", exact=True)
    expect(used).to_be_visible()
