"""Journey: a buyer owns a product, its seller uploads a new version of the file and clicks
"Notify buyers": the buyer gets the e-mail over real SMTP and downloads the new version.

Uses the demo "Personal Budget Spreadsheet", which no other browser test downloads (the file is
replaced for the rest of the session), and runs last (file name order)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from quantoxbay.services.demo import DEMO_PASSWORD
from tests.e2e.test_post_purchase_journey import _log_in
from tests.e2e.test_purchase_journey import _pay, _sign_up_buyer

PRODUCT = "Personal Budget Spreadsheet"
FILENAME = "budget-template.csv"


def test_seller_replaces_a_file_and_its_buyers_are_told(new_page, live_app, tmp_path: Path) -> None:
    buyer = new_page()
    email = _sign_up_buyer(buyer)
    buyer.goto("/")
    buyer.get_by_role("link", name=PRODUCT).click()
    buyer.get_by_role("button", name="Buy now").click()
    expect(buyer).to_have_url(re.compile(r"/stripe-local/checkout/cs_test_"), timeout=20_000)
    _pay(buyer, "4242424242424242")
    expect(buyer.get_by_text("Payment confirmed")).to_be_visible(timeout=20_000)

    seller = new_page()
    _log_in(seller, "seller@demo.quantoxbay.test", DEMO_PASSWORD)
    seller.goto("/seller/products")
    seller.get_by_role("link", name=PRODUCT).click()
    notify = seller.get_by_role("button", name=f"Notify buyers of {FILENAME}")
    expect(seller.get_by_text(FILENAME).first).to_be_visible()
    expect(notify).to_have_count(0)  # nothing new to tell before a new version

    new_version = tmp_path / FILENAME
    new_version.write_bytes(b"month,income,rent,food,savings\nJanuary,3200,1100,400,500\n")
    seller.get_by_label("File to replace").click()
    seller.get_by_role("option", name=FILENAME).click()
    seller.get_by_label("New version").set_input_files(str(new_version))
    seller.get_by_role("button", name="Replace file").click()
    expect(seller.get_by_text("File replaced. Buyers now get the new version.")).to_be_visible(timeout=30_000)

    notify.click()
    expect(
        seller.get_by_text(re.compile(r"^\d+ buyers? will get an e-mail about the new version\.$"))
    ).to_be_visible()
    message = live_app.smtp.wait_for(
        lambda m: m["To"] == email and str(m["Subject"]) == f"Updated: {PRODUCT}"
    )
    assert f"{live_app.url}/library" in message.get_body(("plain",)).get_content()
    notify.click()  # once per version: nothing more is queued
    expect(seller.get_by_text("Every buyer has already been told about this version.")).to_be_visible()

    # The buyer's library hands out the new version.
    buyer.goto("/library")
    row = buyer.get_by_test_id("library-row").filter(has_text=PRODUCT)
    with buyer.expect_download() as download_info:
        row.get_by_role("link", name="Download").first.click()
    assert download_info.value.path().read_bytes() == new_version.read_bytes()
