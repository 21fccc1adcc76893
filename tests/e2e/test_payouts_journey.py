"""Journey of a seller's money: a new seller sets up payouts on the embedded Stripe's hosted
onboarding form, sells a priced product, and watches the sale's net on `/seller/payouts` move from
"Pending" into a payout (the embedded Stripe's clock moved on by days); a refund takes the net back;
an onboarding that leaves a document due says "Action required" and what is due."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.test_purchase_journey import _pay, _sign_up_buyer
from tests.stripe_keys import bearer

PASSWORD = "payouts-journey-password-1"
DAY = 86_400

#: Price and what reaches the seller: the platform keeps PLATFORM_FEE_PERCENT (10% by default).
PRICE_CENTS, NET = 2000, "$18.00"


def _new_seller(live_app) -> str:  # type: ignore[no-untyped-def]
    email = f"journey-seller-{uuid.uuid4().hex[:8]}@example.com"
    made = live_app.cli("create-user", email, "--password", PASSWORD, "--role", "seller")
    assert made.returncode == 0, made.stderr
    return email


def _log_in(page, email: str, next_path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + r"/?$"), timeout=20_000)


def _onboard_on_the_hosted_form(page, **overrides: str) -> None:  # type: ignore[no-untyped-def]
    """From the payouts page: "Set up payouts", fill the embedded Stripe's form, "Agree and submit"."""
    page.get_by_role("button", name="Set up payouts").click()
    expect(page).to_have_url(re.compile(r"/stripe-local/connect/onboarding/"), timeout=20_000)
    expect(page.get_by_role("heading", name=re.compile("Get paid by"))).to_be_visible()
    values = {
        "First name": "Jenny",
        "Last name": "Rosen",
        "Phone": "0000000000",
        "Date of birth (YYYY-MM-DD)": "1901-01-01",
        "Address": "address_full_match",
        "City": "San Francisco",
        "State": "CA",
        "ZIP code": "94111",
        "SSN (last 4 or all 9 digits)": "0000",
        "Business website": "https://accessible.stripe.com",
        "Routing number": "110000000",
        "Account number": "000123456789",
        **overrides,
    }
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Agree and submit").click()
    expect(page).to_have_url(re.compile(r"/seller/payouts/?\?onboarding=return"), timeout=20_000)


def _publish(live_app, seller_email: str, title: str, tmp_path) -> int:  # type: ignore[no-untyped-def]
    upload = tmp_path / "guide.pdf"
    upload.write_bytes(b"%PDF-1.4\n% payouts journey\n")
    made = live_app.cli(
        "create-product", "--seller", seller_email, "--title", title,
        "--price-cents", str(PRICE_CENTS), "--file", str(upload),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    found = re.search(r"Published product (\d+)", made.stdout)
    assert found, made.stdout
    return int(found.group(1))


def _buy(buyer, product_id: int) -> str:  # type: ignore[no-untyped-def]
    email = _sign_up_buyer(buyer)
    buyer.goto(f"/products/{product_id}")
    buyer.get_by_role("button", name="Buy now").click()
    expect(buyer).to_have_url(re.compile(r"/stripe-local/checkout/cs_test_"), timeout=20_000)
    _pay(buyer, "4242 4242 4242 4242")
    expect(buyer.get_by_text("Payment confirmed")).to_be_visible(timeout=20_000)
    return email


#: The columns of the payouts page's "Recent sales" table (pages/payouts.py), in order.
SALE_COLUMNS = (
    "Order",
    "Product",
    "Paid",
    "Status",
    "Gross",
    "Discount",
    "Platform fee",
    "Refunded",
    "Reversed",
    "Net",
)


def _cell(sale, column: str):  # type: ignore[no-untyped-def]
    """One cell of a sale's row (the first is the row header, the others cells)."""
    return sale.locator("th, td").nth(SALE_COLUMNS.index(column))


def _net(sale):  # type: ignore[no-untyped-def]
    return _cell(sale, "Net")


def _stripe_local(live_app, path: str, **form: str) -> dict:  # type: ignore[no-untyped-def]
    """POST one of the embedded Stripe's ``/_local`` helpers with the app's key."""
    request = urllib.request.Request(
        f"{live_app.url}/stripe-local/_local/{path}",
        data=urllib.parse.urlencode(form).encode(),
        headers=bearer(live_app.data_dir),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _advance_clock(live_app, seconds: int) -> None:
    _stripe_local(live_app, "clock/advance", seconds=str(seconds))
    # The events this made (balance.available, payout.*) reach the Connect endpoint.
    _stripe_local(live_app, "webhooks/flush?timeout=15")


@pytest.mark.stripe_clock
def test_onboard_sell_and_watch_the_net_become_a_paid_payout(new_page, live_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seller_email = _new_seller(live_app)
    seller = new_page()
    _log_in(seller, seller_email, "/seller/payouts")
    expect(seller.get_by_test_id("payout-status")).to_have_text("Not set up")
    expect(seller.get_by_text("Priced products can be published once payouts are set up")).to_be_visible()

    _onboard_on_the_hosted_form(seller)
    expect(seller.get_by_test_id("payout-status")).to_have_text("Payouts enabled")
    expect(seller.get_by_role("button", name="Set up payouts")).to_have_count(0)
    expect(seller.get_by_text("Priced products can be published once payouts are set up")).to_have_count(0)
    expect(seller.get_by_role("button", name="Open Stripe dashboard")).to_be_visible()
    expect(seller.get_by_test_id("balance-pending")).to_have_text("$0.00")

    title = f"Payout Journey Guide {uuid.uuid4().hex[:6]}"
    product_id = _publish(live_app, seller_email, title, tmp_path)

    buyer = new_page()
    _buy(buyer, product_id)

    # Pushed live, without a reload: the sale's net, pending at Stripe.
    sale = seller.get_by_test_id("payout-order-row").filter(has_text=title)
    expect(sale).to_have_count(1)
    expect(sale).to_contain_text("$20.00")
    expect(sale).to_contain_text("$2.00")
    expect(_net(sale)).to_have_text(NET)
    expect(seller.get_by_test_id("balance-pending")).to_have_text(NET)
    expect(seller.get_by_test_id("balance-available")).to_have_text("$0.00")

    # Two days on, the funds are available and the daily payout takes them at once (Stripe's
    # automatic schedule): nothing pending, a payout of the net on its way to the bank.
    _advance_clock(live_app, 2 * DAY + 60)
    expect(seller.get_by_test_id("balance-pending")).to_have_text("$0.00")
    payout = seller.get_by_test_id("payout-row")
    expect(payout).to_have_count(1)
    expect(payout).to_contain_text(NET)
    expect(payout).to_contain_text("in transit")
    expect(seller.get_by_test_id("balance-available")).to_have_text("$0.00")

    # A day later the payout has arrived.
    _advance_clock(live_app, DAY + 60)
    expect(payout).to_contain_text("paid")
    expect(payout).to_contain_text(NET)


def test_a_refund_takes_the_sales_net_back(new_page, live_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seller_email = _new_seller(live_app)
    seller = new_page()
    _log_in(seller, seller_email, "/seller/payouts")
    _onboard_on_the_hosted_form(seller)
    expect(seller.get_by_test_id("payout-status")).to_have_text("Payouts enabled")

    title = f"Refunded Journey Guide {uuid.uuid4().hex[:6]}"
    product_id = _publish(live_app, seller_email, title, tmp_path)
    buyer = new_page()
    buyer_email = _buy(buyer, product_id)

    sale = seller.get_by_test_id("payout-order-row").filter(has_text=title)
    expect(_net(sale)).to_have_text(NET)
    expect(seller.get_by_test_id("balance-pending")).to_have_text(NET)

    # The seller refunds the order in full from their Orders view (another tab).
    orders = new_page()
    _log_in(orders, seller_email, "/seller/orders")
    order_row = orders.get_by_test_id("seller-order-row").filter(has_text=buyer_email)
    order_row.get_by_role("button", name="Refund").click()
    expect(orders.get_by_label("Refund amount")).to_have_value("20.00")
    orders.get_by_role("button", name="Confirm refund").click()
    expect(order_row.get_by_text("refunded", exact=True)).to_be_visible(timeout=20_000)

    # The payouts page hears of it: the seller's share was reversed, so nothing is left of it, and
    # the platform's fee went back with the refund.
    expect(sale).to_contain_text("refunded")
    expect(_net(sale)).to_have_text("$0.00")
    expect(_cell(sale, "Reversed")).to_have_text(NET)
    expect(_cell(sale, "Platform fee")).to_have_text("$0.00")
    expect(_cell(sale, "Refunded")).to_have_text("$20.00")
    # As on Stripe, the reversal is taken from the available balance at once, while the sale's
    # share stays pending until its day: together they come to nothing.
    expect(seller.get_by_test_id("balance-available")).to_have_text("-" + NET)
    expect(seller.get_by_test_id("balance-pending")).to_have_text(NET)


def test_an_onboarding_that_leaves_a_document_due_says_action_required(new_page, live_app) -> None:  # type: ignore[no-untyped-def]
    seller_email = _new_seller(live_app)
    seller = new_page()
    _log_in(seller, seller_email, "/seller/payouts")
    # The test SSN 1111: identity not matched, Stripe asks for an ID document.
    _onboard_on_the_hosted_form(seller, **{"SSN (last 4 or all 9 digits)": "1111"})
    expect(seller.get_by_test_id("payout-status")).to_have_text("Action required")
    expect(seller.get_by_test_id("payout-needs")).to_contain_text("Individual verification document")
    # The form was sent: the dashboard opens, and "Set up payouts" leads back to Stripe's form.
    expect(seller.get_by_role("button", name="Open Stripe dashboard")).to_be_visible()
    expect(seller.get_by_role("button", name="Set up payouts")).to_be_visible()
