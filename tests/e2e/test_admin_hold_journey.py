"""Journey: an admin takes a seller's product down with a reason; the seller sees the reason on
their list and edit page, gets an e-mail and cannot publish it again; the admin restores it and the
seller publishes it."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import expect

from quantoxbay.services.demo import DEMO_PASSWORD

PASSWORD = "journey-password-1"


def _log_in(page, email: str, password: str, next_path: str) -> None:
    page.goto(f"/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + r"/?$"), timeout=20_000)


def test_an_admin_take_down_holds_until_restored(new_page, live_app, tmp_path: Path) -> None:
    title = f"Questionable pack {uuid.uuid4().hex[:6]}"
    payload = tmp_path / "pack.pdf"
    payload.write_bytes(b"%PDF-1.4\n" + b"0123456789abcdef" * 64)
    seller_email = f"held-{uuid.uuid4().hex[:8]}@example.com"
    made = live_app.cli("create-user", seller_email, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr

    # The seller publishes a free product (no payouts needed).
    seller = new_page()
    _log_in(seller, seller_email, PASSWORD, "/seller/products/new")
    seller.get_by_label("Title").fill(title)
    seller.get_by_label("Price").fill("0")
    seller.get_by_label("Files").set_input_files(str(payload))
    expect(seller.get_by_text("pack.pdf")).to_be_visible()
    seller.get_by_role("button", name="Publish").click()
    expect(seller.get_by_text("Published. Buyers can find it in the store now.")).to_be_visible(
        timeout=30_000
    )
    seller.goto("/seller/products")
    edit_url = seller.get_by_role("link", name=title).get_attribute("href")
    assert edit_url and edit_url.endswith("/edit")

    # The admin takes it down with a reason.
    admin = new_page()
    _log_in(admin, "admin@demo.quantoxbay.test", DEMO_PASSWORD, "/admin")
    admin.get_by_label("Search products").fill(title)
    admin.get_by_label("Search products").press("Enter")
    expect(admin.get_by_role("button", name=re.compile("^Unpublish "))).to_have_count(1)  # the search ran
    admin.get_by_label(f"Reason for unpublishing {title}").fill("Copyright complaint from the author")
    admin.get_by_role("button", name=f"Unpublish {title}").click()
    expect(admin.get_by_text("stays off the store until an admin restores it")).to_be_visible()
    row = admin.get_by_role("row").filter(has_text=title)
    expect(row.get_by_text("removed", exact=True)).to_be_visible()

    # The seller sees why on their list and on the product, and cannot put it back.
    seller.goto("/seller/products")
    listed = seller.get_by_role("row").filter(has_text=title)
    expect(listed.get_by_text("removed", exact=True)).to_be_visible()
    expect(listed.get_by_text("Taken down by an admin: Copyright complaint from the author")).to_be_visible()
    seller.goto(edit_url)
    expect(seller.get_by_test_id("removed-notice")).to_contain_text(
        "An admin took this product off the store: Copyright complaint from the author."
    )
    expect(seller.get_by_role("button", name="Publish")).to_be_disabled()

    # ... and gets an e-mail saying so.
    mail = live_app.smtp.wait_for(lambda m: m["To"] == seller_email and "taken down" in str(m["Subject"]))
    assert "Reason: Copyright complaint from the author" in mail.get_body(("plain",)).get_content()

    # The admin restores it; the seller can publish it again.
    admin.get_by_role("button", name=f"Restore {title}").click()
    expect(admin.get_by_text("Restored. The seller can publish it again")).to_be_visible()
    live_app.smtp.wait_for(lambda m: m["To"] == seller_email and "restored" in str(m["Subject"]))
    seller.goto(edit_url)
    expect(seller.get_by_role("heading", name=title)).to_be_visible()
    expect(seller.get_by_test_id("removed-notice")).to_have_count(0)
    seller.get_by_role("button", name="Publish").click()
    expect(seller.get_by_text("Published. Buyers can find it in the store now.")).to_be_visible(
        timeout=30_000
    )
