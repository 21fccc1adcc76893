"""Hosted Connect pages: Express onboarding (Account Links) and the Express dashboard.

``/connect/onboarding/{token}`` is what an Account Link's ``url`` opens. Like
Stripe's, it needs no key and acts on its own account only; the first visit
within 300 s opens the form (a used or expired link redirects to
``refresh_url``), and the form carries a per-link token. Accessible names:
inputs "First name", "Last name", "Email", "Phone", "Date of birth
(YYYY-MM-DD)", "Address", "City", "State", "ZIP code", "SSN (last 4 or all 9
digits)", "Business website", "Routing number", "Account number"; the button
"Agree and submit". A valid submission redirects to ``return_url``.

``/connect/express/{token}`` is what a login link opens (for 300 s): the
account's balance and payouts.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .accounts import OnboardingForm
from .checkout_page import page
from .money import format_amount
from .runtime import StripeLocal

FIELDS: tuple[tuple[str, str, str, str], ...] = (
    # (name, label, input type, autocomplete)
    ("first_name", "First name", "text", "given-name"),
    ("last_name", "Last name", "text", "family-name"),
    ("email", "Email", "email", "email"),
    ("phone", "Phone", "text", "tel"),
    ("dob", "Date of birth (YYYY-MM-DD)", "text", "bday"),
    ("address_line1", "Address", "text", "address-line1"),
    ("city", "City", "text", "address-level2"),
    ("state", "State", "text", "address-level1"),
    ("postal_code", "ZIP code", "text", "postal-code"),
    ("id_number", "SSN (last 4 or all 9 digits)", "text", "off"),
    ("business_url", "Business website", "text", "url"),
    ("routing_number", "Routing number", "text", "off"),
    ("account_number", "Account number", "text", "off"),
)


class ConnectPages:
    """Renders and handles the hosted Connect pages.

    Args:
        runtime: The embedded Stripe instance.
    """

    def __init__(self, runtime: StripeLocal) -> None:
        self.runtime = runtime
        self.accounts = runtime.accounts

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render_form(
        self,
        request: Request,
        token: str,
        account: dict[str, Any],
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """Render the onboarding form of the link ``token``."""
        values = values or {}
        errors = errors or {}
        if not values:
            values = {"email": account.get("email") or ""}
        action = f"{self._base(request)}/connect/onboarding/{escape(token)}"
        rows = []
        for name, label, kind, autocomplete in FIELDS:
            invalid = f' aria-invalid="true" aria-describedby="{name}-error"' if name in errors else ""
            error = (
                f'<div class="field-error" id="{name}-error" role="alert">{escape(errors[name])}</div>'
                if name in errors
                else ""
            )
            rows.append(
                f'<label for="{name}">{escape(label)}</label>'
                f'<input type="{kind}" id="{name}" name="{name}" autocomplete="{autocomplete}" required '
                f'value="{escape(values.get(name, ""))}"{invalid}>{error}'
            )
        alert = ""
        if "" in errors:
            alert = f'<div class="alert error" role="alert">{escape(errors[""])}</div>'
        platform = escape(self.runtime.config.display_name)
        body = f"""
<main class="center" style="margin-top:6vh"><div class="card" style="text-align:left">
<span class="badge">Test mode</span>
<h1 style="margin-top:16px">Get paid by {platform}</h1>
<p>{platform} partners with Stripe for fast, secure payments. Fill in your details to start
receiving payouts.</p>{alert}
<form method="post" action="{action}" novalidate>
<input type="hidden" name="form_token" value="{self.runtime.form_token(token)}">
{"".join(rows)}
<p class="hint" style="text-align:left">By clicking "Agree and submit" you agree to the Stripe
Connected Account Agreement (test mode).</p>
<button class="primary" type="submit">Agree and submit</button>
</form>
<p class="hint">Test mode: date of birth 1901-01-01, SSN 0000, routing 110000000,
account 000123456789.</p>
</div></main>"""
        return page(f"Onboarding for {self.runtime.config.display_name}", body, status)

    @staticmethod
    def render_missing() -> HTMLResponse:
        """Render the page for an unknown link."""
        body = (
            '<main class="center"><div class="card"><h1>Link not found</h1>'
            '<p role="status">This link is not valid.</p></div></main>'
        )
        return page("Link not found", body, 404)

    async def show_onboarding(self, request: Request) -> Response:
        """``GET /connect/onboarding/{token}``: open the link (once)."""
        self.runtime.ensure_started()
        token = request.path_params["token"]
        state, link = await run_in_threadpool(self.accounts.open_onboarding, token)
        if state == "missing" or link is None:
            return self.render_missing()
        if state == "refresh":
            return RedirectResponse(link.internal["refresh_url"], status_code=303)
        account = await run_in_threadpool(self.accounts.get, link.internal["account"])
        if account is None:
            return self.render_missing()
        return self.render_form(request, token, account.data)

    async def submit_onboarding(self, request: Request) -> Response:
        """``POST /connect/onboarding/{token}``: "Agree and submit"."""
        self.runtime.ensure_started()
        token = request.path_params["token"]
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        link = await run_in_threadpool(self.runtime.store.get, "account_link", token)
        if link is None:
            return self.render_missing()
        account = await run_in_threadpool(self.accounts.get, link.internal["account"])
        if account is None:
            return self.render_missing()
        if not self.runtime.check_form_token(token, values.get("form_token")):
            return self.render_form(
                request,
                token,
                account.data,
                values=values,
                errors={"": "This form has expired. Please try again."},
                status=403,
            )
        if not self.accounts.onboarding_form_open(link):
            return RedirectResponse(link.internal["refresh_url"], status_code=303)
        fields = {name: values.get(name, "").strip() for name, *_ in FIELDS}
        onboarding = OnboardingForm(
            **fields,
            ip=request.client.host if request.client else "127.0.0.1",
            user_agent=request.headers.get("user-agent", "")[:200],
        )
        result, link = await run_in_threadpool(self.accounts.submit_onboarding_link, token, onboarding)
        if result.ok and link is not None:
            return RedirectResponse(link.internal["return_url"], status_code=303)
        if link is not None and "" in result.errors:
            return RedirectResponse(link.internal["refresh_url"], status_code=303)
        return self.render_form(request, token, account.data, values=fields, errors=result.errors, status=400)

    async def show_dashboard(self, request: Request) -> Response:
        """``GET /connect/express/{token}``: the Express dashboard a login link opens."""
        self.runtime.ensure_started()
        account = await run_in_threadpool(self.accounts.login_link_account, request.path_params["token"])
        if account is None:
            return self.render_missing()
        balance = await run_in_threadpool(self.runtime.transfers.balance, account.id)
        payouts, _ = await run_in_threadpool(self.runtime.transfers.list_payouts, account.id, {"limit": "10"})

        def amounts(entries: list[dict[str, Any]]) -> str:
            return ", ".join(format_amount(e["amount"], e["currency"]) for e in entries)

        rows = "".join(
            f"<li>{format_amount(p['amount'], p['currency'])} · {escape(p['status'])}</li>" for p in payouts
        )
        data = account.data
        body = f"""
<main class="center"><div class="card" style="text-align:left">
<span class="badge">Test mode</span>
<h1 style="margin-top:16px">Express dashboard</h1>
<p>{escape(data.get("email") or data["id"])}</p>
<h2>Balance</h2>
<p data-testid="available">Available: {amounts(balance["available"])}</p>
<p data-testid="pending">Pending: {amounts(balance["pending"])}</p>
<h2>Payouts</h2>
<ul>{rows or "<li>No payouts yet.</li>"}</ul>
<p>Payouts enabled: {"yes" if data["payouts_enabled"] else "no"}</p>
</div></main>"""
        return page("Express dashboard", body)


def connect_page_routes(runtime: StripeLocal) -> list[Route]:
    """Return the hosted Connect routes."""
    pages = ConnectPages(runtime)
    return [
        Route("/connect/onboarding/{token}", pages.show_onboarding, methods=["GET"]),
        Route("/connect/onboarding/{token}", pages.submit_onboarding, methods=["POST"]),
        Route("/connect/express/{token}", pages.show_dashboard, methods=["GET"]),
    ]
