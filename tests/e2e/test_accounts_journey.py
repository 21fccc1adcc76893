"""Journey: sign up, log out, log in, see the account menu; a log-in ticket stays in its browser;
a buyer is kept out of /seller."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "journey-password-1"


def _sign_up(page, email: str, *, seller: bool = False) -> None:
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if seller:
        page.get_by_role("checkbox", name="I want to sell").click()
    page.get_by_role("button", name="Create account").click()


def test_sign_up_log_out_log_in(new_page) -> None:
    page = new_page()
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    _sign_up(page, email)
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    page.get_by_role("button", name="Account menu").click()
    expect(page.get_by_role("menu").get_by_text(email)).to_be_visible()
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Log out").first.click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)

    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("wrong-password")
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Incorrect email or password.")

    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    # The session cookie is HttpOnly: page scripts cannot read it.
    assert "qb_session" not in page.evaluate("document.cookie")


def test_a_log_in_ticket_only_works_in_the_browser_that_asked(new_page) -> None:
    """Login CSRF: someone's own log-in ticket, opened in another browser, logs nobody in."""
    owner, other = new_page(), new_page()
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    _sign_up(owner, email)
    expect(owner.get_by_role("button", name="Account menu")).to_be_visible()
    owner.get_by_role("button", name="Log out").first.click()
    expect(owner.get_by_role("link", name="Log in")).to_be_visible()

    owner.route("**/api/auth/complete*", lambda route: route.abort())
    owner.goto("/login")
    owner.get_by_label("Email").fill(email)
    owner.get_by_label("Password").fill(PASSWORD)
    with owner.expect_request(lambda request: "/api/auth/complete" in request.url) as held:
        owner.locator("form").get_by_role("button", name="Log in").click()
    ticket_url = held.value.url

    other.goto(ticket_url)
    expect(other).to_have_url(re.compile(r"/login/?\?expired=1"))
    expect(other.get_by_role("alert")).to_contain_text("opened in another browser")
    expect(other.get_by_role("button", name="Account menu")).to_have_count(0)

    # The browser that asked still trades it.
    owner.unroute("**/api/auth/complete*")
    owner.goto(ticket_url)
    expect(owner.get_by_role("button", name="Account menu")).to_be_visible()


def test_sign_up_errors_are_shown_and_change_nothing(new_page) -> None:
    page = new_page()
    page.goto("/signup")
    page.get_by_label("Email").fill(f"short-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
    expect(page).to_have_url(re.compile(r"/signup"))


def test_buyer_opening_seller_is_sent_away(new_page) -> None:
    page = new_page()
    _sign_up(page, f"nosell-{uuid.uuid4().hex[:8]}@example.com")
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    page.goto("/seller")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_text("You do not have access to this page.").first).to_be_visible()


def test_anonymous_visitor_is_asked_to_log_in_for_the_library(new_page) -> None:
    page = new_page()
    page.goto("/library")
    expect(page).to_have_url(re.compile(r"/login\?next=/library"))


def test_seller_reaches_the_dashboard(new_page) -> None:
    page = new_page()
    _sign_up(page, f"maker-{uuid.uuid4().hex[:8]}@example.com", seller=True)
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    page.goto("/seller")
    expect(page.get_by_role("heading", name="Seller dashboard")).to_be_visible()


def test_storefront_shows_demo_products_and_screenshot(new_page) -> None:
    page = new_page()
    page.goto("/")
    for title in ("The Indie Maker's Field Guide", "Personal Budget Spreadsheet", "Cinematic Photo Presets"):
        expect(page.get_by_role("link", name=title)).to_be_visible()
    covers = page.locator("img[src^='/api/covers/']")
    expect(covers).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"img[src^='/api/covers/']\")].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(ROOT / "docs" / "storefront.png"))
    page.get_by_role("link", name="Cinematic Photo Presets").click()
    expect(page.get_by_role("heading", name="Cinematic Photo Presets")).to_be_visible()
    expect(page.get_by_text("cinematic-presets.json")).to_be_visible()


def test_phone_width_has_a_menu(new_page) -> None:
    page = new_page(viewport={"width": 390, "height": 844})
    page.goto("/")
    expect(page.get_by_role("button", name="Open menu")).to_be_visible()
    page.screenshot(path=str(ROOT / "docs" / "storefront-phone.png"))


def test_unknown_page_is_a_friendly_404(new_page) -> None:
    page = new_page()
    page.goto("/no/such/page")
    expect(page.get_by_text("Page not found")).to_be_visible()
