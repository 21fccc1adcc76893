"""Journeys: "Forgot password?" -> the e-mailed link -> a new password (the old one and the other
browser's session stop working); a new seller verifies their e-mail address before publishing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import expect

PASSWORD = "journey-password-1"
NEW_PASSWORD = "journey-password-2"


def link_in_email(live_app, to: str, subject: str, path: str) -> str:
    """The link to ``path`` in the e-mail to ``to`` with ``subject``, as the SMTP sink got it."""
    message = live_app.smtp.wait_for(lambda m: m["To"] == to and m["Subject"] == subject)
    text = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(re.escape(live_app.url) + re.escape(path) + r"\?token=\S+", text)
    assert found, text
    return found.group(0)


def verify_from_email(live_app, page, email: str) -> None:
    """Open the verification link e-mailed at sign-up in ``page`` (the seller's browser)."""
    link = link_in_email(live_app, email, "Verify your e-mail address for QuantoxBay", "/verify-email")
    page.goto(link)
    expect(page.get_by_text(f"Your e-mail address {email} is verified")).to_be_visible()


def _log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("form").get_by_role("button", name="Log in").click()


def test_forgot_password_resets_it_by_e_mail(new_page, live_app) -> None:
    email = f"forgetful-{uuid.uuid4().hex[:8]}@example.com"
    made = live_app.cli("create-user", email, "--password", PASSWORD)
    assert made.returncode == 0, made.stderr
    elsewhere = new_page()  # a browser logged in before the reset: logged out by it
    _log_in(elsewhere, email, PASSWORD)
    expect(elsewhere.get_by_role("button", name="Account menu")).to_be_visible()

    page = new_page()
    page.goto("/login")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page).to_have_url(re.compile(r"/forgot-password/?$"))
    # The URL changes before the new page replaces the log-in form, which has an "Email" field too.
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_text(f"If an account uses {email}")).to_be_visible()

    # An unknown address gets the very same answer, and no e-mail. The tab shows its last answer
    # when it comes back to the page, with a way to send another link.
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/forgot-password")
    expect(page.get_by_text(f"If an account uses {email}")).to_be_visible()
    page.get_by_role("button", name="Send another link").click()
    page.get_by_label("Email").fill(stranger)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_text(f"If an account uses {stranger}")).to_be_visible()

    link = link_in_email(live_app, email, "Reset your QuantoxBay password", "/reset-password")
    page.goto(link)
    expect(page.get_by_text(email)).to_be_visible()
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()  # logged in here
    assert not any(m["To"] == stranger for m in live_app.smtp.messages)

    # The link worked once.
    again = new_page()
    again.goto(link)
    expect(again.get_by_role("alert")).to_contain_text("expired or was already used")
    expect(again.get_by_role("link", name="Ask for a new link")).to_be_visible()

    # The other browser's session ended; the old password no longer works, the new one does.
    elsewhere.goto("/library")
    expect(elsewhere).to_have_url(re.compile(r"/login\?next=/library"))
    _log_in(elsewhere, email, PASSWORD)
    expect(elsewhere.get_by_role("alert")).to_contain_text("Incorrect email or password.")
    elsewhere.get_by_label("Password").fill(NEW_PASSWORD)
    elsewhere.locator("form").get_by_role("button", name="Log in").click()
    expect(elsewhere.get_by_role("button", name="Account menu")).to_be_visible()


def test_a_new_seller_verifies_their_e_mail_before_publishing(new_page, live_app, tmp_path: Path) -> None:
    payload = tmp_path / "zine.pdf"
    payload.write_bytes(b"%PDF-1.4\n" + b"0123456789abcdef" * 64)
    title = f"Free zine {uuid.uuid4().hex[:6]}"
    email = f"newmaker-{uuid.uuid4().hex[:8]}@example.com"
    page = new_page()
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("checkbox", name="I want to sell").click()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()

    page.goto("/seller/products/new")
    expect(page.get_by_text("Verify your e-mail address first.")).to_be_visible()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Price").fill("0")
    page.get_by_label("Files").set_input_files(str(payload))
    expect(page.get_by_text("zine.pdf")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Verify your e-mail address first: open the link").first).to_be_visible(
        timeout=30_000
    )
    page.get_by_role("button", name="Resend verification e-mail").click()
    expect(page.get_by_text(f"We sent a new verification link to {email}")).to_be_visible()

    verify_from_email(live_app, page, email)

    page.goto("/seller/products")
    expect(page.get_by_text("Verify your e-mail address first.")).to_have_count(0)
    page.get_by_role("link", name=title).click()
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_text("Published. Buyers can find it in the store now.")).to_be_visible()
    buyer = new_page()
    buyer.goto("/")
    expect(buyer.get_by_role("link", name=title)).to_be_visible()
