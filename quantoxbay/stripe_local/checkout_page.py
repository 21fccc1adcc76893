"""The hosted checkout page, server-rendered with inline CSS.

Accessible names (tests find elements by them): inputs "Email", "Card number",
"Expiry (MM/YY)", "CVC", "Name on card", "Promotion code"; buttons "Apply",
"Pay"; on the 3-D Secure step "Complete authentication" and "Fail
authentication"; a "← Back" link to ``cancel_url``. Every form carries a
per-session token.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .checkout import PaymentForm, PaymentResult
from .db import Record
from .money import format_amount
from .runtime import StripeLocal

CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",
Arial,sans-serif;color:#1a1f36;background:#fff;-webkit-font-smoothing:antialiased}
a{color:#635bff}
.layout{display:flex;min-height:100vh}
.summary{flex:1;background:#f6f9fc;padding:48px 40px;display:flex;justify-content:flex-end}
.pay{flex:1;padding:48px 40px;display:flex;justify-content:flex-start}
.col{width:100%;max-width:400px}
.top{display:flex;align-items:center;gap:10px;margin-bottom:28px;font-size:15px}
.back{text-decoration:none;color:#4f566b;font-weight:500}
.back:hover{color:#1a1f36}
.badge{background:#ffde92;color:#983705;font-size:11px;font-weight:700;border-radius:4px;
padding:2px 6px;letter-spacing:.04em;text-transform:uppercase}
.merchant{font-weight:600}
.due{color:#697386;font-size:16px;margin:0}
.total{font-size:36px;font-weight:600;margin:4px 0 28px;letter-spacing:-.02em}
ul.items{list-style:none;margin:0;padding:0}
.item{display:flex;gap:12px;padding:12px 0;align-items:flex-start}
.thumb{width:42px;height:42px;border-radius:6px;background:#e3e8ee;object-fit:cover;flex:none}
.item .name{font-weight:500}
.item .qty{color:#697386;font-size:13px;margin-top:2px}
.item .amt{margin-left:auto;font-weight:500;white-space:nowrap}
.lines{border-top:1px solid #e3e8ee;margin-top:12px;padding-top:12px}
.line{display:flex;justify-content:space-between;padding:6px 0;font-size:14px;color:#4f566b}
.line.discount{color:#0e6245}
.line.grand{color:#1a1f36;font-weight:600;font-size:16px;border-top:1px solid #e3e8ee;
margin-top:6px;padding-top:12px}
h1{font-size:20px;margin:0 0 20px;font-weight:600}
label{display:block;font-size:13px;font-weight:500;color:#4f566b;margin:16px 0 6px}
input[type=text],input[type=email]{width:100%;font-size:16px;padding:10px 12px;
border:1px solid #cfd7df;border-radius:6px;background:#fff;color:#1a1f36;
box-shadow:0 1px 1px rgba(0,0,0,.03)}
input:focus{outline:none;border-color:#635bff;box-shadow:0 0 0 3px rgba(99,91,255,.25)}
input[readonly]{background:#f6f9fc;color:#4f566b}
.row{display:flex;gap:12px}.row>div{flex:1}
.promo{display:flex;gap:8px}.promo input{flex:1}
button{font:inherit;cursor:pointer;border-radius:6px}
.secondary{background:#fff;border:1px solid #cfd7df;color:#1a1f36;padding:10px 16px;
font-weight:500}
.secondary:hover{border-color:#a3acb9}
.link{background:none;border:none;color:#635bff;padding:0;font-size:13px}
.primary{width:100%;margin-top:24px;background:#635bff;color:#fff;border:none;padding:13px;
font-size:16px;font-weight:600;box-shadow:0 2px 5px rgba(50,50,93,.1)}
.primary:hover{background:#5851ea}
.danger{background:#fff;color:#cd3d64;border:1px solid #cd3d64;width:100%;padding:12px;
font-weight:600;margin-top:12px}
.alert{border-radius:6px;padding:12px 14px;font-size:14px;margin:0 0 16px}
.alert.error{background:#fff0f0;color:#a41c4e;border:1px solid #f5c2c7}
.alert.ok{background:#effaf3;color:#0e6245;border:1px solid #b7e4c7}
.field-error{color:#a41c4e;font-size:13px;margin-top:6px}
.hint{color:#697386;font-size:12px;margin-top:24px;text-align:center}
.center{max-width:440px;margin:12vh auto;padding:0 24px;text-align:center}
.card{border:1px solid #e3e8ee;border-radius:10px;padding:32px;
box-shadow:0 8px 24px rgba(50,50,93,.08)}
.auth-buttons form{margin:0}
@media (max-width:800px){
.layout{flex-direction:column}
.summary,.pay{padding:24px 20px;justify-content:center}
.total{font-size:30px}
}
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """Wrap ``body`` in the page skeleton."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        },
    )


class CheckoutPage:
    """Renders and handles the hosted checkout page.

    Args:
        runtime: The embedded Stripe instance.
    """

    def __init__(self, runtime: StripeLocal) -> None:
        self.runtime = runtime
        self.checkout = runtime.checkout

    # -- rendering -------------------------------------------------------

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def _summary(self, record: Record) -> str:
        data = record.data
        currency = data["currency"]
        items_html = []
        for item in record.internal["line_items"]:
            product = item["product"]
            image = (
                f'<img class="thumb" src="{escape(product["images"][0])}" alt="">'
                if product["images"]
                else '<span class="thumb" aria-hidden="true"></span>'
            )
            unit = format_amount(item["price"]["unit_amount"], currency)
            items_html.append(
                f'<li class="item">{image}<div><div class="name">{escape(product["name"])}</div>'
                f'<div class="qty">Qty {item["quantity"]} &times; {unit}</div></div>'
                f'<div class="amt">{format_amount(item["amount_subtotal"], currency)}</div></li>'
            )
        lines = [
            '<div class="line"><span>Subtotal</span>'
            f"<span>{format_amount(data['amount_subtotal'], currency)}</span></div>"
        ]
        discount = data["total_details"]["amount_discount"]
        if discount:
            label = escape(self.checkout.discount_label(record))
            lines.append(
                f'<div class="line discount"><span>{label}</span>'
                f"<span>&minus;{format_amount(discount, currency)}</span></div>"
            )
        lines.append(
            '<div class="line grand"><span>Total due</span>'
            f'<span data-testid="total">{format_amount(data["amount_total"], currency)}</span></div>'
        )
        back = f'<a class="back" href="{escape(data["cancel_url"])}">← Back</a>' if data["cancel_url"] else ""
        return (
            f'<section class="summary" aria-label="Order summary"><div class="col">'
            f'<div class="top">{back}<span class="merchant">'
            f"{escape(self.runtime.config.display_name)}</span>"
            f'<span class="badge">Test mode</span></div>'
            f'<p class="due">Pay {escape(self.runtime.config.display_name)}</p>'
            f'<p class="total">{format_amount(data["amount_total"], currency)}</p>'
            f'<ul class="items">{"".join(items_html)}</ul>'
            f'<div class="lines">{"".join(lines)}</div></div></section>'
        )

    def render(
        self,
        request: Request,
        record: Record,
        *,
        error: str | None = None,
        error_field: str | None = None,
        promo_message: str | None = None,
        promo_ok: bool = False,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """Render the payment page of an open session."""
        values = values or {}
        data = record.data
        action = f"{self._base(request)}/checkout/{escape(record.id)}"
        token = self.runtime.form_token(record.id)
        preset_email = data["customer_email"]
        email_value = escape(preset_email or values.get("email", ""))
        readonly = " readonly" if preset_email else ""

        def field_error(name: str) -> str:
            if error and error_field == name:
                return f'<div class="field-error" id="{name}-error" role="alert">{escape(error)}</div>'
            return ""

        def described(name: str) -> str:
            return (
                f' aria-describedby="{name}-error" aria-invalid="true"'
                if (error and error_field == name)
                else ""
            )

        alert = ""
        if error and not error_field:
            alert = f'<div class="alert error" role="alert">{escape(error)}</div>'
        promo = ""
        if data["allow_promotion_codes"]:
            code = self.checkout.applied_code(record)
            if code:
                promo = (
                    f'<label for="promotion_code">Promotion code</label><div class="promo">'
                    f'<input type="text" id="promotion_code" name="promotion_code" '
                    f'value="{escape(code)}" readonly>'
                    f'<button class="secondary" type="submit" name="action" value="remove" '
                    f"formnovalidate>Remove</button></div>"
                )
            else:
                promo = (
                    f'<label for="promotion_code">Promotion code</label><div class="promo">'
                    f'<input type="text" id="promotion_code" name="promotion_code" '
                    f'autocomplete="off" value="{escape(values.get("promotion_code", ""))}">'
                    f'<button class="secondary" type="submit" name="action" value="apply" '
                    f"formnovalidate>Apply</button></div>"
                )
            if promo_message:
                kind = "ok" if promo_ok else "error"
                role = "status" if promo_ok else "alert"
                promo += (
                    f'<div class="alert {kind}" role="{role}" style="margin-top:8px">'
                    f"{escape(promo_message)}</div>"
                )
        form = f"""
<section class="pay" aria-label="Payment"><div class="col">
<h1>Pay with card</h1>{alert}
<form method="post" action="{action}" novalidate>
<input type="hidden" name="form_token" value="{token}">
<label for="email">Email</label>
<input type="email" id="email" name="email" autocomplete="email" required
 value="{email_value}"{readonly}{described("email")}>{field_error("email")}
<label for="card_number">Card number</label>
<input type="text" id="card_number" name="card_number" inputmode="numeric"
 autocomplete="cc-number" placeholder="1234 1234 1234 1234" required{described("card_number")}>
{field_error("card_number")}
<div class="row"><div><label for="expiry">Expiry (MM/YY)</label>
<input type="text" id="expiry" name="expiry" inputmode="numeric" autocomplete="cc-exp"
 placeholder="MM / YY" required{described("expiry")}>{field_error("expiry")}</div>
<div><label for="cvc">CVC</label>
<input type="text" id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc"
 placeholder="CVC" maxlength="4" required{described("cvc")}>{field_error("cvc")}</div></div>
<label for="name">Name on card</label>
<input type="text" id="name" name="name" autocomplete="cc-name" required
 value="{escape(values.get("name", ""))}"{described("name")}>{field_error("name")}
{promo}
<button class="primary" type="submit" name="action" value="pay">Pay</button>
</form>
<p class="hint">Test mode: use card 4242 4242 4242 4242, any future date and any CVC.</p>
</div></section>"""
        body = f'<main class="layout">{self._summary(record)}{form}</main>'
        return page(f"Pay {self.runtime.config.display_name}", body, status)

    def render_closed(self, record: Record, message: str | None = None) -> HTMLResponse:
        """Render the page of a complete or expired session."""
        data = record.data
        if data["status"] == "complete":
            title = "Payment complete"
            text = message or "This checkout session is already paid. Nothing more to do here."
            status = 200
        else:
            title = "Checkout session expired"
            text = message or ("This checkout session has expired. Go back to the shop to start a new one.")
            status = 410
        links = []
        if data["status"] == "complete" and data["success_url"]:
            url = data["success_url"].replace("{CHECKOUT_SESSION_ID}", record.id)
            links.append(f'<a href="{escape(url)}">Continue</a>')
        if data["cancel_url"]:
            links.append(f'<a class="back" href="{escape(data["cancel_url"])}">← Back</a>')
        body = (
            f'<main class="center"><div class="card"><h1>{escape(title)}</h1>'
            f'<p role="status">{escape(text)}</p><p>{" · ".join(links)}</p></div></main>'
        )
        return page(title, body, status)

    def render_authentication(self, request: Request, record: Record) -> HTMLResponse:
        """Render the 3-D Secure challenge."""
        pending = record.internal.get("pending_auth") or {}
        card = pending.get("card", {})
        action = f"{self._base(request)}/checkout/{escape(record.id)}/authenticate"
        token = self.runtime.form_token(record.id)
        amount = format_amount(record.data["amount_total"], record.data["currency"])
        body = f"""
<main class="center"><div class="card">
<span class="badge">Test mode</span>
<h1 style="margin-top:16px">3D Secure 2 authentication</h1>
<p>Your bank asks you to confirm a payment of <strong>{amount}</strong> to
{escape(self.runtime.config.display_name)} with the card ending in
{escape(str(card.get("last4", "")))}.</p>
<div class="auth-buttons">
<form method="post" action="{action}"><input type="hidden" name="form_token" value="{token}">
<button class="primary" type="submit" name="action" value="complete">Complete authentication</button>
</form>
<form method="post" action="{action}"><input type="hidden" name="form_token" value="{token}">
<button class="danger" type="submit" name="action" value="fail">Fail authentication</button>
</form></div></div></main>"""
        return page("Authenticate your payment", body)

    def render_missing(self) -> HTMLResponse:
        """Render the page for an unknown session id."""
        body = (
            '<main class="center"><div class="card"><h1>Checkout not found</h1>'
            '<p role="status">This checkout link is not valid.</p></div></main>'
        )
        return page("Checkout not found", body, 404)

    def render_bad_token(self, request: Request, record: Record) -> HTMLResponse:
        """Render the page after a form with a bad token was posted."""
        if record.data["status"] != "open":
            return self.render_closed(record)
        return self.render(request, record, error="This form has expired. Please try again.", status=403)

    # -- handlers --------------------------------------------------------

    async def show(self, request: Request) -> Response:
        """``GET /checkout/{id}``."""
        self.runtime.ensure_started()
        session_id = request.path_params["id"]
        record = await run_in_threadpool(self._load_fresh, session_id)
        if record is None:
            return self.render_missing()
        if record.data["status"] != "open":
            return self.render_closed(record)
        return self.render(request, record)

    def _load_fresh(self, session_id: str) -> Record | None:
        record = self.checkout.get(session_id)
        if (
            record
            and record.data["status"] == "open"
            and record.data["expires_at"] <= self.runtime.clock.time()
        ):
            self.runtime.sweep_now()
            record = self.checkout.get(session_id)
        return record

    async def submit(self, request: Request) -> Response:
        """``POST /checkout/{id}``: Apply / Remove a promotion code, or Pay."""
        self.runtime.ensure_started()
        session_id = request.path_params["id"]
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        record = await run_in_threadpool(self.checkout.get, session_id)
        if record is None:
            return self.render_missing()
        if not self.runtime.check_form_token(session_id, values.get("form_token")):
            return self.render_bad_token(request, record)
        keep = {"email": values.get("email", ""), "name": values.get("name", "")}
        action = values.get("action", "pay")
        if action in ("apply", "remove"):
            if action == "apply":
                result = await run_in_threadpool(
                    self.checkout.apply_promotion_code,
                    session_id,
                    values.get("promotion_code", ""),
                )
            else:
                result = await run_in_threadpool(self.checkout.remove_promotion_code, session_id)
            if result.session.data["status"] != "open":
                return self.render_closed(result.session)
            if action == "remove":
                return self.render(
                    request,
                    result.session,
                    values=keep,
                    promo_message="Promotion code removed.",
                    promo_ok=True,
                )
            if result.ok:
                return self.render(
                    request,
                    result.session,
                    values=keep,
                    promo_message="Promotion code applied.",
                    promo_ok=True,
                )
            return self.render(
                request,
                result.session,
                promo_message=result.message,
                status=400,
                values={**keep, "promotion_code": values.get("promotion_code", "")},
            )
        payment = PaymentForm(
            email=values.get("email", ""),
            card_number=values.get("card_number", ""),
            expiry=values.get("expiry", ""),
            cvc=values.get("cvc", ""),
            name=values.get("name", ""),
        )
        outcome = await run_in_threadpool(self.checkout.pay, session_id, payment)
        return self._after_payment(request, outcome, keep)

    def _after_payment(self, request: Request, result: PaymentResult, keep: dict[str, str]) -> Response:
        record = result.session
        if result.outcome == "succeeded":
            if result.redirect_url:
                return RedirectResponse(result.redirect_url, status_code=303)
            return self.render_closed(record, "Thanks for your payment.")
        if result.outcome == "requires_action":
            return RedirectResponse(
                f"{self._base(request)}/checkout/{record.id}/authenticate", status_code=303
            )
        if result.outcome == "not_open":
            return self.render_closed(record, result.message)
        if result.outcome == "promotion_invalid":
            return self.render(request, record, error=result.message, values=keep, status=400)
        status = 402 if result.outcome == "declined" else 400
        return self.render(
            request, record, error=result.message, error_field=result.field, values=keep, status=status
        )

    async def show_authentication(self, request: Request) -> Response:
        """``GET /checkout/{id}/authenticate``: the 3-D Secure step."""
        session_id = request.path_params["id"]
        record = await run_in_threadpool(self.checkout.get, session_id)
        if record is None:
            return self.render_missing()
        if record.data["status"] != "open":
            return self.render_closed(record)
        if not record.internal.get("pending_auth"):
            return RedirectResponse(f"{self._base(request)}/checkout/{session_id}", status_code=303)
        return self.render_authentication(request, record)

    async def authenticate(self, request: Request) -> Response:
        """``POST /checkout/{id}/authenticate``: Complete or Fail authentication."""
        session_id = request.path_params["id"]
        form = await request.form()
        record = await run_in_threadpool(self.checkout.get, session_id)
        if record is None:
            return self.render_missing()
        token = form.get("form_token")
        if not self.runtime.check_form_token(session_id, str(token) if token else None):
            return self.render_bad_token(request, record)
        complete = form.get("action") == "complete"
        result = await run_in_threadpool(self.checkout.authenticate, session_id, complete)
        pending = record.internal.get("pending_auth") or {}
        keep: dict[str, Any] = {"email": pending.get("email", ""), "name": pending.get("name", "")}
        return self._after_payment(request, result, keep)


def page_routes(runtime: StripeLocal) -> list[Route]:
    """Return the hosted checkout routes."""
    pages = CheckoutPage(runtime)
    return [
        Route("/checkout/{id}", pages.show, methods=["GET"]),
        Route("/checkout/{id}", pages.submit, methods=["POST"]),
        Route("/checkout/{id}/authenticate", pages.show_authentication, methods=["GET"]),
        Route("/checkout/{id}/authenticate", pages.authenticate, methods=["POST"]),
    ]
