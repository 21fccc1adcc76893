"""Journey: a seller publishes a product with a file and a cover; a buyer finds it by search and opens it."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect

from tests.e2e.test_recovery_journey import verify_from_email

PASSWORD = "journey-password-1"


def _sign_up(page, email: str, *, seller: bool = False) -> None:
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if seller:
        page.get_by_role("checkbox", name="I want to sell").click()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()


def test_seller_publishes_and_buyer_finds_it(new_page, live_app, tmp_path: Path) -> None:
    word = f"zebra{uuid.uuid4().hex[:6]}"
    title = f"Field notes {word}"
    payload = tmp_path / "field-notes.pdf"
    payload.write_bytes(b"%PDF-1.4\n" + b"0123456789abcdef" * 256 * 1024)  # 4 MiB: progress events to see
    cover = tmp_path / "cover.png"
    buf = io.BytesIO()
    Image.new("RGB", (900, 600), (30, 120, 200)).save(buf, "PNG")
    cover.write_bytes(buf.getvalue())

    seller = new_page()
    seller_email = f"maker-{uuid.uuid4().hex[:8]}@example.com"
    _sign_up(seller, seller_email, seller=True)
    expect(seller.get_by_role("button", name="Account menu")).to_be_visible()
    verify_from_email(live_app, seller, seller_email)  # selling needs a verified address
    # A priced product goes on sale once payouts are set up (the journey of that: test_payouts_journey).
    onboarded = live_app.cli("onboard-seller", seller_email)
    assert onboarded.returncode == 0, onboarded.stderr
    seller.goto("/seller/products/new")
    seller.get_by_label("Title").fill(title)
    seller.get_by_label("Description").fill(
        "Notes **from the field**.\n\n- first tip\n- second tip\n\nMore at [the maker's site](https://example.com/notes)."
        "\n\n<script>window.pwned = 1</script>"
    )
    seller.get_by_label("Price").fill("7.50")
    seller.get_by_label("Files").set_input_files(str(payload))
    seller.get_by_label("Cover image").set_input_files(str(cover))
    expect(seller.get_by_text("field-notes.pdf")).to_be_visible()
    seller.get_by_role("button", name="Publish").click()

    progress = seller.get_by_role("progressbar", name="Upload progress")
    expect(progress).to_be_visible()
    expect(seller.get_by_text("Published. Buyers can find it in the store now.")).to_be_visible(
        timeout=30_000
    )
    expect(seller.get_by_text("Upload progress: 100%")).to_be_visible()

    # The seller's list shows it as published.
    seller.goto("/seller/products")
    expect(seller.get_by_role("link", name=title)).to_be_visible()
    expect(seller.get_by_text("published", exact=True)).to_be_visible()

    buyer = new_page()
    buyer.goto("/")
    buyer.get_by_label("Search products").fill(word)
    link = buyer.get_by_role("link", name=title)
    expect(link).to_be_visible()
    expect(buyer.get_by_role("link", name="The Indie Maker's Field Guide")).to_have_count(0)
    link.click()
    expect(buyer).to_have_url(re.compile(r"/products/\d+$"))
    expect(buyer.get_by_role("heading", name=title)).to_be_visible()
    expect(buyer.get_by_text("$7.50")).to_be_visible()
    expect(buyer.get_by_text("field-notes.pdf")).to_be_visible()
    expect(buyer.get_by_text("from the field")).to_be_visible()
    # Markdown keeps its formatting: a list with bullets, a link that looks like one.
    tip = buyer.locator(".qb-description li", has_text="first tip")
    expect(tip).to_be_visible()
    assert tip.evaluate("e => getComputedStyle(e.parentElement).listStyleType") == "disc"
    site = buyer.get_by_role("link", name="the maker's site")
    expect(site).to_have_attribute("href", "https://example.com/notes")
    assert "underline" in site.evaluate("e => getComputedStyle(e).textDecorationLine")
    # The seller's <script> is shown as text and never runs.
    assert buyer.evaluate("window.pwned") is None
    # Buyers' covers come from the cacheable cover route, not inlined data URLs.
    expect(buyer.locator("img[src^='/api/covers/']")).to_have_count(1)


def test_unpublished_product_is_a_not_found_page(new_page) -> None:
    page = new_page()
    page.goto("/products/987654321")
    expect(page.get_by_text("Product not found")).to_be_visible()


def test_buyer_is_refused_the_new_product_form(new_page) -> None:
    page = new_page()
    _sign_up(page, f"shopper-{uuid.uuid4().hex[:8]}@example.com")
    page.goto("/seller/products/new")
    expect(page).to_have_url(re.compile(r"/$"))
