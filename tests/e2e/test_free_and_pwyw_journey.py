"""Journeys: a visitor gets a free product ("Get it free": log in, back to the product, straight
into the library, a receipt, no payment page); a buyer names $7.00 for a "$3.00+" product and
the hosted checkout and the order are $7.00."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.test_accounts_journey import PASSWORD


def _product(live_app, tag: str, title: str, *args: str) -> str:
    seller = f"fp-seller-{tag}@example.com"
    made = live_app.cli("create-user", seller, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr
    payload = Path(live_app.data_dir) / f"fp-{tag}.txt"
    payload.write_bytes(b"free and fair contents")
    made = live_app.cli("create-product", "--seller", seller, "--title", title, *args, "--file", str(payload))
    assert made.returncode == 0, made.stderr
    return seller


def _orders(live_app, email: str) -> list[tuple]:
    with sqlite3.connect(live_app.data_dir / "quantoxbay.db") as conn:
        return conn.execute(
            "SELECT o.status, o.subtotal_cents, o.total_cents, o.stripe_session_id, o.stripe_payment_intent_id "
            'FROM "order" o JOIN user u ON u.id = o.buyer_id WHERE u.email = ?',
            (email,),
        ).fetchall()


def _log_in(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()


def _sign_up(page, email: str) -> None:
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()


def _open_product(page, title: str) -> None:
    page.goto("/")
    page.get_by_label("Search products").fill(title)
    page.get_by_role("link", name=title).first.click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()


def test_a_visitor_logs_in_and_gets_a_free_product_into_the_library(new_page, live_app) -> None:
    tag = uuid.uuid4().hex[:6]
    title = f"Free Zine {tag}"
    seller_email = _product(live_app, tag, title, "--price-cents", "0")  # no payouts account needed
    buyer_email = f"fp-buyer-{tag}@example.com"
    made = live_app.cli("create-user", buyer_email, "--password", PASSWORD)
    assert made.returncode == 0, made.stderr
    # The seller watches their orders: the free order appears live, as a sale does.
    seller = new_page()
    _log_in(seller, seller_email)
    seller.goto("/seller/orders")
    seller_rows = seller.get_by_test_id("seller-order-row").filter(has_text=title)
    expect(seller_rows).to_have_count(0)

    page = new_page()
    _open_product(page, title)
    expect(page.get_by_role("button", name="Buy now")).to_have_count(0)
    page.get_by_role("button", name="Get it free").click()
    expect(page).to_have_url(re.compile(r"/login\?next=/products/\d+"))
    page.get_by_label("Email").fill(buyer_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/products/\d+"), timeout=20_000)
    expect(page.get_by_role("heading", name=title)).to_be_visible()

    page.get_by_role("button", name="Get it free").click()
    expect(page).to_have_url(re.compile(r"/library"), timeout=20_000)
    row = page.get_by_test_id("library-row").filter(has_text=title)
    expect(row.get_by_role("link", name="Download").first).to_be_visible()
    assert "/stripe-local/" not in page.url

    [(status, subtotal, total, session_id, payment_intent)] = _orders(live_app, buyer_email)
    assert (status, subtotal, total, payment_intent) == ("paid", 0, 0, None)
    assert session_id.startswith("free_")
    receipt = live_app.smtp.wait_for(lambda m: buyer_email in str(m["To"]))
    assert title in receipt.get_body(preferencelist=("plain",)).get_content()

    expect(seller_rows).to_have_count(1, timeout=20_000)

    # Back on the product page it is owned: "Download", no second order.
    page.go_back()
    expect(page.get_by_text("You own this product.")).to_be_visible()
    expect(page.get_by_role("button", name="Get it free")).to_have_count(0)
    assert len(_orders(live_app, buyer_email)) == 1


def test_a_buyer_names_a_fair_price_and_pays_it(new_page, live_app) -> None:
    tag = uuid.uuid4().hex[:6]
    title = f"Fair Pack {tag}"
    seller = f"fp-seller-{tag}@example.com"
    made = live_app.cli("create-user", seller, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr
    onboarded = live_app.cli("onboard-seller", seller)
    assert onboarded.returncode == 0, onboarded.stderr
    payload = Path(live_app.data_dir) / f"fair-{tag}.txt"
    payload.write_bytes(b"fair pack contents")
    made = live_app.cli(
        "create-product", "--seller", seller, "--title", title, "--price-cents", "300",
        "--pay-what-you-want", "--file", str(payload),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr

    page = new_page()
    buyer_email = f"fp-buyer-{tag}@example.com"
    _sign_up(page, buyer_email)
    _open_product(page, title)
    expect(page.get_by_text("$3.00+", exact=True)).to_be_visible()
    fair = page.get_by_label("Name a fair price")
    expect(fair).to_have_value("3.00")

    fair.fill("2.00")
    page.get_by_role("button", name="Buy now").click()
    expect(page.get_by_role("alert").filter(has_text="Name at least $3.00")).to_be_visible()
    assert "/stripe-local/" not in page.url

    fair.fill("7.00")
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(re.compile(r"/stripe-local/checkout/cs_test_"), timeout=20_000)
    expect(page.get_by_text("$7.00").first).to_be_visible()
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Fair Buyer")
    page.get_by_role("button", name="Pay").click()
    expect(page).to_have_url(re.compile(r"/checkout/success/?\?session_id=cs_test_"), timeout=20_000)
    expect(page.get_by_text("Payment confirmed")).to_be_visible(timeout=20_000)

    [(status, subtotal, total, session_id, payment_intent)] = _orders(live_app, buyer_email)
    assert (status, subtotal, total) == ("paid", 700, 700)
    assert session_id.startswith("cs_test_") and payment_intent
