"""The payouts page before onboarding: a new seller sees "Not set up", "Set up payouts", zero
balances and the publishing note, and finds the page in the seller menu; the admin sees the
"Platform fees" section with the fee in force and that seller's status. (The onboarding journey
itself, through the embedded Stripe's form, is a separate test.)"""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.e2e.test_dashboard_journey import _log_in as _log_in_demo

PASSWORD = "payouts-password-1"


def _log_in(page, email: str, next_path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + r"/?$"), timeout=20_000)


def test_a_new_seller_sees_set_up_payouts_and_the_admin_sees_platform_fees(new_page, live_app) -> None:  # type: ignore[no-untyped-def]
    seller_email = f"payouts-seller-{uuid.uuid4().hex[:6]}@example.com"
    made = live_app.cli("create-user", seller_email, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr

    seller = new_page()
    _log_in(seller, seller_email, "/seller")
    seller.get_by_role("button", name="Account menu").click()
    seller.get_by_role("menuitem", name="Payouts").click()
    expect(seller).to_have_url(re.compile(r"/seller/payouts/?$"))
    expect(seller.get_by_role("heading", name="Payouts", exact=True)).to_be_visible()
    expect(seller.get_by_test_id("payout-status")).to_have_text("Not set up")
    expect(seller.get_by_role("button", name="Set up payouts")).to_be_visible()
    expect(seller.get_by_text("Priced products can be published once payouts are set up")).to_be_visible()
    expect(seller.get_by_test_id("balance-available")).to_have_text("$0.00")
    expect(seller.get_by_test_id("balance-pending")).to_have_text("$0.00")
    expect(seller.get_by_text("Available", exact=True)).to_be_visible()
    expect(seller.get_by_text("Pending", exact=True)).to_be_visible()
    # Stripe makes dashboard links only once the onboarding form was sent.
    expect(seller.get_by_role("button", name="Open Stripe dashboard")).to_have_count(0)

    admin = new_page()
    _log_in_demo(admin, "admin@demo.quantoxbay.test", "/admin")
    section = admin.get_by_role("region", name="Platform fees")
    expect(section.get_by_role("heading", name="Platform fees", exact=True)).to_be_visible()
    expect(section.get_by_test_id("fee-schedule")).to_have_text(
        re.compile(r"^\d+(\.\d+)?% \+ \$\d+\.\d\d per sale$")
    )
    expect(section.get_by_role("row").filter(has_text="All time").first).to_be_visible()
    expect(section.get_by_role("row").filter(has_text=seller_email)).to_contain_text("Not set up")
