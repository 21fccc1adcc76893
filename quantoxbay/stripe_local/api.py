"""The ``/v1`` API routes stripe-python talks to, plus the ``/_local`` helpers.

Every API route goes through :func:`endpoint`, which does what Stripe's edge
does: a ``Request-Id``, the API key check (the instance's own secret key), the
per-endpoint rate limit, form decoding, Idempotency-Key replay, and turning
:class:`~.errors.StripeLocalError` into Stripe's error body.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .accounts import OnboardingForm, account_invalid
from .checkout import PaymentForm
from .config import API_VERSION
from .errors import (
    StripeLocalError,
    api_error,
    authentication_error,
    invalid_request,
    rate_limit_error,
)
from .idempotency import IdempotencyStore, fingerprint
from .ids import new_id
from .params import (
    check_allowed,
    check_expand,
    check_metadata_keys,
    created_filter,
    decode_body,
    decode_pairs,
    get_bool,
    get_expand,
    get_int,
    get_list,
    get_str,
)
from .runtime import StripeLocal
from .store import RequestInfo
from .versions import check_version

log = logging.getLogger(__name__)


@dataclass
class ApiCall:
    """What a handler gets.

    Attributes:
        params: The decoded parameters.
        path: The path parameters (``id``).
        request: Request id and idempotency key, for events.
        account: The connected account of the ``Stripe-Account`` header
            (checked to exist), or None for the platform.
    """

    params: dict[str, Any]
    path: dict[str, str]
    request: RequestInfo
    account: str | None = None


Handler = Callable[[ApiCall], dict[str, Any]]


def list_body(data: list[dict[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
    """Return Stripe's list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def api_key_of(request: Request) -> str | None:
    """Return the API key from Bearer or Basic authorization, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().split(":", 1)[0] or None
        except ValueError:
            return None
    return None


def authenticate(request: Request, secret_key: str) -> None:
    """Accept the instance's own secret key only (compared in constant time).

    Raises:
        StripeLocalError: 401 for a missing or any other key.
    """
    key = api_key_of(request)
    if not key:
        raise authentication_error(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY')."
        )
    if not hmac.compare_digest(key.encode(), secret_key.encode()):
        raise authentication_error(f"Invalid API Key provided: {_masked(key)}")


def _masked(key: str) -> str:
    """Stripe's way of naming a wrong key: its prefix and last four characters."""
    prefix = key[:8] if key.startswith(("sk_", "rk_", "pk_")) else ""
    return f"{prefix}****{key[-4:]}" if len(key) > 12 else "****"


#: Stripe refuses longer Idempotency-Key values.
IDEMPOTENCY_KEY_MAX_LENGTH = 255


def _headers(request: Request, request_id: str) -> dict[str, str]:
    # The version actually served; ``versions.check_version`` adds what was asked for.
    headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
    key = request.headers.get("idempotency-key")
    if key:
        headers["Idempotency-Key"] = key
    return headers


def error_response(exc: StripeLocalError, headers: dict[str, str]) -> JSONResponse:
    """Render a StripeLocalError as Stripe's JSON error."""
    if exc.status == 429:
        reason = exc.extra_headers.get("Stripe-Rate-Limited-Reason", "endpoint-rate")
        headers = {**headers, "Stripe-Rate-Limited-Reason": reason}
    return JSONResponse(exc.body(headers.get("Request-Id")), status_code=exc.status, headers=headers)


def endpoint(
    runtime: StripeLocal,
    method: str,
    template: str,
    handler: Handler,
    *,
    connected: bool = False,
    expandable: Collection[str] | None = (),
) -> Route:
    """Build one API route around ``handler`` (run in a worker thread).

    Args:
        runtime: The embedded Stripe instance.
        method: ``GET``, ``POST`` or ``DELETE``.
        template: Path template (also the rate-limit bucket).
        handler: Returns the response body; raises StripeLocalError.
        connected: The route runs on behalf of the connected account a
            ``Stripe-Account`` header names (``ApiCall.account``); on other
            routes the header is refused.
    """
    bucket = f"{method} {template}"
    idempotency = IdempotencyStore(runtime.db)

    async def route(request: Request) -> Response:
        request_id = new_id("req", 14)
        headers = _headers(request, request_id)
        runtime.ensure_started()
        try:
            authenticate(request, runtime.config.secret_key)
            headers.update(check_version(request.headers.get("stripe-version")))
            # The sandbox's account-wide limit first, then the endpoint's own.
            if not runtime.account_rate_limiter.allow("account"):
                raise rate_limit_error(reason="global-rate")
            if not runtime.rate_limiter.allow(bucket):
                raise rate_limit_error()
            if method == "POST":
                content_type = request.headers.get("content-type", "")
                body = await request.body()
                if body and "application/x-www-form-urlencoded" not in content_type:
                    raise invalid_request(
                        "Request bodies must be form-encoded (application/x-www-form-urlencoded)."
                    )
                pairs, params = decode_body(body)
            else:
                pairs = list(request.query_params.multi_items())
                params = decode_pairs(pairs)
            check_metadata_keys(pairs)
            if expandable is not None:
                check_expand(params, expandable)
            account = await run_in_threadpool(_connected_account, runtime, request, connected)
            key = request.headers.get("idempotency-key") if method in ("POST", "DELETE") else None
            if key and len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
                raise invalid_request(
                    f"Idempotency keys can be at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters long; "
                    f"this one has {len(key)}."
                )
            call = ApiCall(params, dict(request.path_params), RequestInfo(request_id, key), account)
            if key:
                # Keys are scoped per account, as on Stripe.
                print_ = fingerprint(method, f"{request.url.path}#{account or ''}", pairs)
                stored = await run_in_threadpool(idempotency.begin, key, print_, request_id)
                if stored is not None:
                    replay_headers = {**headers, "Idempotent-Replayed": "true"}
                    if stored.request_id:
                        replay_headers["Original-Request"] = stored.request_id
                    return JSONResponse(stored.body, status_code=stored.status, headers=replay_headers)
            try:
                body_out = await run_in_threadpool(handler, call)
            except StripeLocalError as exc:
                if key:
                    if exc.status == 402:
                        await run_in_threadpool(idempotency.finish, key, exc.status, exc.body(request_id))
                    else:
                        await run_in_threadpool(idempotency.release, key)
                raise
            except Exception:
                if key:
                    await run_in_threadpool(idempotency.release, key)
                raise
            if key:
                await run_in_threadpool(idempotency.finish, key, 200, body_out)
            return JSONResponse(body_out, headers=headers)
        except StripeLocalError as exc:
            return error_response(exc, headers)
        except Exception:
            log.exception("stripe_local: %s %s failed", method, request.url.path)
            return error_response(api_error(), headers)

    return Route(template, route, methods=[method])


def _connected_account(runtime: StripeLocal, request: Request, connected: bool) -> str | None:
    """Check the ``Stripe-Account`` header: an existing connected account, on a route that takes it.

    Raises:
        StripeLocalError: 403 ``account_invalid`` for an unknown account; 400
            on a route the embedded Stripe runs for the platform only.
    """
    account = (request.headers.get("stripe-account") or "").strip()
    if not account:
        return None
    if runtime.accounts.get(account) is None:
        raise account_invalid(account, _masked(api_key_of(request) or ""))
    if not connected:
        raise invalid_request(
            f"The embedded Stripe does not run {request.method} {request.url.path} on behalf of a "
            "connected account: send it without the Stripe-Account header."
        )
    return account


def _events_list(runtime: StripeLocal, call: ApiCall) -> dict[str, Any]:
    params = call.params
    check_allowed(
        params,
        {
            "type",
            "types",
            "limit",
            "starting_after",
            "ending_before",
            "created",
            "expand",
            "delivery_success",
        },
    )
    limit = get_int(params, "limit", minimum=1, maximum=100) or 10
    event_type = get_str(params, "type")
    types = [str(t) for t in get_list(params, "types")]
    if event_type and types:
        raise invalid_request("You may only specify one of these parameters: type, types.", param="types")
    lookups, prefix = None, None
    if event_type and event_type.endswith("*"):
        prefix = event_type[:-1]
    elif event_type:
        lookups = [event_type]
    elif types:
        lookups = types
    created = created_filter(params)

    delivery_success = get_bool(params, "delivery_success")
    conn = runtime.db.connection()

    def delivered(event_id: str) -> bool:
        """Every webhook delivery of the event succeeded (Stripe's ``delivery_success``)."""
        row = conn.execute(
            "SELECT 1 FROM deliveries WHERE event_id = ? AND status != 'delivered' LIMIT 1", (event_id,)
        ).fetchone()
        return row is None

    def accept(record: Any) -> bool:
        if record.data.get("account") != call.account:
            return False  # a connected account sees its own events; the platform, its own
        if delivery_success is not None and delivered(record.id) != delivery_success:
            return False
        return created(record.created)

    records, has_more = runtime.db.page(
        "event",
        limit=limit,
        starting_after=get_str(params, "starting_after"),
        ending_before=get_str(params, "ending_before"),
        lookups=lookups,
        lookup_prefix=prefix,
        accept=accept,
    )
    return list_body([r.data for r in records], has_more, "/v1/events")


def api_routes(runtime: StripeLocal) -> list[Route]:
    """Return the ``/v1`` routes and the ``/_local`` helpers."""
    checkout = runtime.checkout
    discounts = runtime.discounts
    payments = runtime.payments
    products = runtime.products
    prices = runtime.prices
    endpoints = runtime.webhook_endpoints

    def session_line_items(call: ApiCall) -> dict[str, Any]:
        session_id = call.path["id"]
        data, more = checkout.list_line_items(session_id, call.params)
        return list_body(data, more, f"/v1/checkout/sessions/{session_id}/line_items")

    def sessions_list(call: ApiCall) -> dict[str, Any]:
        data, more = checkout.list_sessions(call.params)
        return list_body(data, more, "/v1/checkout/sessions")

    def promotion_codes_list(call: ApiCall) -> dict[str, Any]:
        data, more = discounts.list_promotion_codes(call.params)
        return list_body(data, more, "/v1/promotion_codes")

    def event_get(call: ApiCall) -> dict[str, Any]:
        check_allowed(call.params, {"expand"})
        event = runtime.store.require("event", call.path["id"])
        if event.data.get("account") != call.account:
            runtime.store.require("event", None)  # another account's event: 404, as on Stripe
        return event.data

    def coupon_get(call: ApiCall) -> dict[str, Any]:
        check_allowed(call.params, {"expand"})
        return discounts.retrieve_coupon(call.path["id"], get_expand(call.params))

    def deleting(handler: Callable[[str, RequestInfo], dict[str, Any]]) -> Handler:
        """A DELETE route: it takes no parameters, as on Stripe."""

        def run(call: ApiCall) -> dict[str, Any]:
            check_allowed(call.params, set())
            return handler(call.path["id"], call.request)

        return run

    def promotion_code_get(call: ApiCall) -> dict[str, Any]:
        check_allowed(call.params, {"expand"})
        return discounts.retrieve_promotion_code(call.path["id"], get_expand(call.params))

    def product_get(call: ApiCall) -> dict[str, Any]:
        check_allowed(call.params, {"expand"})
        return products.retrieve(call.path["id"])

    def dispute_get(call: ApiCall) -> dict[str, Any]:
        check_allowed(call.params, {"expand"})
        return payments.retrieve_dispute(call.path["id"])

    table: list[tuple[str, str, Handler]] = [
        ("POST", "/v1/checkout/sessions", lambda c: checkout.create(c.params, c.request)),
        ("GET", "/v1/checkout/sessions", sessions_list),
        ("GET", "/v1/checkout/sessions/{id}", lambda c: checkout.retrieve(c.path["id"], c.params)),
        ("GET", "/v1/checkout/sessions/{id}/line_items", session_line_items),
        (
            "POST",
            "/v1/checkout/sessions/{id}/expire",
            lambda c: checkout.expire(c.path["id"], c.params, c.request),
        ),
        (
            "GET",
            "/v1/payment_intents/{id}",
            lambda c: payments.retrieve_payment_intent(c.path["id"], c.params),
        ),
        ("POST", "/v1/refunds", lambda c: payments.create_refund(c.params, c.request)),
        ("GET", "/v1/refunds/{id}", lambda c: payments.retrieve_refund(c.path["id"], c.params)),
        ("GET", "/v1/disputes/{id}", dispute_get),
        ("POST", "/v1/disputes/{id}", lambda c: payments.update_dispute(c.path["id"], c.params, c.request)),
        ("POST", "/v1/products", lambda c: products.create(c.params, c.request)),
        ("GET", "/v1/products/{id}", product_get),
        ("POST", "/v1/products/{id}", lambda c: products.update(c.path["id"], c.params, c.request)),
        ("POST", "/v1/coupons", lambda c: discounts.create_coupon(c.params, c.request)),
        ("GET", "/v1/coupons/{id}", coupon_get),
        ("POST", "/v1/promotion_codes", lambda c: discounts.create_promotion_code(c.params, c.request)),
        ("GET", "/v1/promotion_codes", promotion_codes_list),
        ("GET", "/v1/promotion_codes/{id}", promotion_code_get),
        (
            "POST",
            "/v1/promotion_codes/{id}",
            lambda c: discounts.update_promotion_code(c.path["id"], c.params, c.request),
        ),
    ]
    table.extend(
        [
            ("POST", "/v1/prices", lambda c: prices.create(c.params, c.request)),
            ("GET", "/v1/prices", lambda c: list_body(*prices.list_prices(c.params), "/v1/prices")),
            ("GET", "/v1/prices/{id}", lambda c: prices.retrieve(c.path["id"], c.params)),
            ("POST", "/v1/prices/{id}", lambda c: prices.update(c.path["id"], c.params, c.request)),
            ("GET", "/v1/products", lambda c: list_body(*products.list_products(c.params), "/v1/products")),
            ("POST", "/v1/webhook_endpoints", lambda c: endpoints.create(c.params)),
            (
                "GET",
                "/v1/webhook_endpoints",
                lambda c: list_body(*endpoints.list_endpoints(c.params), "/v1/webhook_endpoints"),
            ),
            ("GET", "/v1/webhook_endpoints/{id}", lambda c: endpoints.retrieve(c.path["id"])),
            ("POST", "/v1/webhook_endpoints/{id}", lambda c: endpoints.update(c.path["id"], c.params)),
            ("DELETE", "/v1/webhook_endpoints/{id}", lambda c: endpoints.delete(c.path["id"])),
        ]
    )
    customers = runtime.customers
    table.extend(
        [
            ("POST", "/v1/checkout/sessions/{id}", lambda c: checkout.update(c.path["id"], c.params)),
            (
                "GET",
                "/v1/payment_intents",
                lambda c: list_body(*payments.list_payment_intents(c.params), "/v1/payment_intents"),
            ),
            ("GET", "/v1/refunds", lambda c: list_body(*payments.list_refunds(c.params), "/v1/refunds")),
            ("POST", "/v1/refunds/{id}", lambda c: payments.update_refund(c.path["id"], c.params, c.request)),
            ("GET", "/v1/coupons", lambda c: list_body(*discounts.list_coupons(c.params), "/v1/coupons")),
            (
                "POST",
                "/v1/coupons/{id}",
                lambda c: discounts.update_coupon(c.path["id"], c.params, c.request),
            ),
            ("DELETE", "/v1/coupons/{id}", deleting(discounts.delete_coupon)),
            (
                "GET",
                "/v1/payment_methods/{id}",
                lambda c: customers.retrieve_payment_method(c.path["id"], c.params),
            ),
            ("POST", "/v1/customers", lambda c: customers.create(c.params, c.request)),
            (
                "GET",
                "/v1/customers",
                lambda c: list_body(*customers.list_customers(c.params), "/v1/customers"),
            ),
            ("GET", "/v1/customers/{id}", lambda c: customers.retrieve(c.path["id"], c.params)),
            ("POST", "/v1/customers/{id}", lambda c: customers.update(c.path["id"], c.params, c.request)),
            ("DELETE", "/v1/customers/{id}", deleting(customers.delete)),
        ]
    )
    # The expand[] paths each route serves; None: its handler checks them (and its nested ones).
    self_checked: dict[str, Collection[str] | None] = {
        "/v1/checkout/sessions": None,
        "/v1/checkout/sessions/{id}": None,
        "/v1/checkout/sessions/{id}/expire": None,
        "/v1/checkout/sessions/{id}/line_items": {"data.price", "data.price.product"},
        "/v1/payment_intents": None,
        "/v1/payment_intents/{id}": None,
        "/v1/refunds": None,
        "/v1/refunds/{id}": None,
        "/v1/coupons": {"applies_to", "data.applies_to"},
        "/v1/coupons/{id}": {"applies_to"},
        "/v1/promotion_codes": {"promotion.coupon", "data.promotion.coupon"},
        "/v1/promotion_codes/{id}": {"promotion.coupon"},
        "/v1/prices": None,
        "/v1/prices/{id}": None,
    }
    routes = [
        endpoint(
            runtime,
            method,
            path,
            handler,
            expandable=self_checked.get(path, ()),
        )
        for method, path, handler in table
    ]
    routes.append(endpoint(runtime, "GET", "/v1/events", lambda c: _events_list(runtime, c), connected=True))
    routes.append(endpoint(runtime, "GET", "/v1/events/{id}", event_get, connected=True))
    routes.extend(connect_routes(runtime))

    async def unknown_route(request: Request) -> Response:
        """Answer Stripe's 404 for an API path the embedded Stripe lacks (401 first, as Stripe)."""
        headers = _headers(request, new_id("req", 14))
        try:
            authenticate(request, runtime.config.secret_key)
            headers.update(check_version(request.headers.get("stripe-version")))
        except StripeLocalError as exc:
            return error_response(exc, headers)
        missing = invalid_request(
            f"Unrecognized request URL ({request.method}: {request.url.path}).", status=404
        )
        return error_response(missing, headers)

    routes.append(Route("/v1/{rest:path}", unknown_route, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]))
    routes.extend(local_routes(runtime))
    return routes


def connect_routes(runtime: StripeLocal) -> list[Route]:
    """The Connect part of the API: accounts, links, transfers, fees, balance, payouts.

    Routes marked connected run for the account a ``Stripe-Account`` header
    names (balance, balance transactions, payouts, charges); the others are
    platform-only.
    """
    accounts = runtime.accounts
    transfers = runtime.transfers
    base = runtime.config.public_base_url

    def paged(url: str, result: tuple[list[dict[str, Any]], bool]) -> dict[str, Any]:
        return list_body(result[0], result[1], url)

    def whole(url: str, data: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        limit = get_int(params, "limit", minimum=1, maximum=100) or 10
        return list_body(data[:limit], len(data) > limit, url)

    platform: list[tuple[str, str, Handler]] = [
        ("POST", "/v1/accounts", lambda c: accounts.create(c.params, c.request)),
        ("GET", "/v1/accounts", lambda c: paged("/v1/accounts", accounts.list_accounts(c.params))),
        ("GET", "/v1/accounts/{id}", lambda c: accounts.retrieve(c.path["id"], c.params)),
        ("POST", "/v1/accounts/{id}", lambda c: accounts.update(c.path["id"], c.params, c.request)),
        ("DELETE", "/v1/accounts/{id}", lambda c: accounts.delete(c.path["id"], c.params, c.request)),
        (
            "POST",
            "/v1/accounts/{id}/login_links",
            lambda c: accounts.create_login_link(c.path["id"], c.params, base),
        ),
        ("POST", "/v1/account_links", lambda c: accounts.create_account_link(c.params, base)),
        ("POST", "/v1/transfers", lambda c: transfers.create_transfer(c.params, c.request)),
        ("GET", "/v1/transfers", lambda c: paged("/v1/transfers", transfers.list_transfers(c.params))),
        ("GET", "/v1/transfers/{id}", lambda c: transfers.retrieve_transfer(c.path["id"], c.params)),
        (
            "POST",
            "/v1/transfers/{id}",
            lambda c: transfers.update_transfer(c.path["id"], c.params, c.request),
        ),
        (
            "POST",
            "/v1/transfers/{id}/reversals",
            lambda c: transfers.create_reversal(c.path["id"], c.params, c.request),
        ),
        (
            "GET",
            "/v1/transfers/{id}/reversals",
            lambda c: whole(
                f"/v1/transfers/{c.path['id']}/reversals",
                transfers.list_reversals(c.path["id"], c.params),
                c.params,
            ),
        ),
        (
            "GET",
            "/v1/transfers/{id}/reversals/{reversal}",
            lambda c: transfers.retrieve_reversal(c.path["id"], c.path["reversal"]),
        ),
        (
            "GET",
            "/v1/application_fees",
            lambda c: paged("/v1/application_fees", transfers.list_fees(c.params)),
        ),
        ("GET", "/v1/application_fees/{id}", lambda c: transfers.retrieve_fee(c.path["id"], c.params)),
        (
            "POST",
            "/v1/application_fees/{id}/refunds",
            lambda c: transfers.create_fee_refund(c.path["id"], c.params, c.request),
        ),
        (
            "GET",
            "/v1/application_fees/{id}/refunds",
            lambda c: whole(
                f"/v1/application_fees/{c.path['id']}/refunds",
                transfers.list_fee_refunds(c.path["id"], c.params),
                c.params,
            ),
        ),
    ]

    def balance(call: ApiCall) -> dict[str, Any]:
        check_allowed(call.params, {"expand"})
        return transfers.balance(call.account)

    connected: list[tuple[str, str, Handler]] = [
        ("GET", "/v1/balance", balance),
        (
            "GET",
            "/v1/balance_transactions",
            lambda c: paged("/v1/balance_transactions", transfers.list_transactions(c.account, c.params)),
        ),
        (
            "GET",
            "/v1/balance_transactions/{id}",
            lambda c: transfers.retrieve_transaction(c.path["id"], c.account, c.params),
        ),
        ("GET", "/v1/payouts", lambda c: paged("/v1/payouts", transfers.list_payouts(c.account, c.params))),
        ("GET", "/v1/payouts/{id}", lambda c: transfers.retrieve_payout(c.path["id"], c.account, c.params)),
        ("GET", "/v1/charges", lambda c: paged("/v1/charges", transfers.list_charges(c.account, c.params))),
        ("GET", "/v1/charges/{id}", lambda c: transfers.retrieve_charge(c.path["id"], c.account, c.params)),
    ]
    routes = [endpoint(runtime, method, path, handler) for method, path, handler in platform]
    routes.extend(
        # A charge's handler checks its own expand[] paths.
        endpoint(
            runtime,
            method,
            path,
            handler,
            connected=True,
            expandable=None if path == "/v1/charges/{id}" else (),
        )
        for method, path, handler in connected
    )
    return routes


# -- /_local helpers (not part of Stripe's API) ---------------------------


def local_routes(runtime: StripeLocal) -> list[Route]:
    """Helpers for tests and load benchmarks (need the instance's secret key).

    ``POST /_local/checkout/{id}/pay`` pays a session without the HTML page.
    Form fields (all optional): ``card_number`` (default 4242424242424242),
    ``expiry`` (``12/34``), ``cvc`` (``123``), ``name`` (``Test Buyer``),
    ``email`` (the session's ``customer_email`` or ``buyer@example.com``),
    ``promotion_code``, ``three_d_secure`` (``complete`` | ``fail``, for
    3-D Secure cards). Answers JSON ``{outcome, message, error, redirect_url,
    session}`` with 200 (succeeded), 402 (declined), 400 (invalid field or
    promotion code), 409 (session not open).

    ``POST /_local/clock/advance`` (``seconds=N``) moves the instance's time
    forward and runs everything due (session expiry, fund availability,
    payouts, payout arrival): ``{offset, now, expired}``.

    ``POST /_local/accounts/{id}/onboard`` completes onboarding as the hosted
    form does, with Stripe's standard test data; any
    :class:`~.accounts.OnboardingForm` field overrides it (``dob=1900-01-01``
    rejects, ``id_number=111111111`` leaves a document due,
    ``account_number=000111111116`` makes payouts fail): ``{outcome, account}``.

    ``POST /_local/webhooks/flush?timeout=10`` waits for the delivery queue to
    empty: ``{"empty": bool, "pending": n}``. ``POST /_local/sweep`` expires
    overdue sessions now: ``{"expired": n}``.
    """

    async def pay(request: Request) -> Response:
        runtime.ensure_started()
        headers = {"Request-Id": new_id("req", 14)}
        try:
            authenticate(request, runtime.config.secret_key)
        except StripeLocalError as exc:
            return error_response(exc, headers)
        form = await request.form()
        session_id = request.path_params["id"]

        def run() -> tuple[int, dict[str, Any]]:
            record = checkout.get(session_id)
            if record is None:
                raise invalid_request(
                    f"No such checkout.session: '{session_id}'", status=404, code="resource_missing"
                )
            code = str(form.get("promotion_code") or "")
            if code:
                applied = checkout.apply_promotion_code(session_id, code)
                if not applied.ok:
                    return 400, {
                        "outcome": "promotion_invalid",
                        "message": applied.message,
                        "error": None,
                        "redirect_url": None,
                        "session": checkout.view(applied.session),
                    }
            payment = PaymentForm(
                email=str(form.get("email") or record.data["customer_email"] or "buyer@example.com"),
                card_number=str(form.get("card_number") or "4242424242424242"),
                expiry=str(form.get("expiry") or "12/34"),
                cvc=str(form.get("cvc") or "123"),
                name=str(form.get("name") or "Test Buyer"),
            )
            result = checkout.pay(session_id, payment)
            if result.outcome == "requires_action":
                result = checkout.authenticate(
                    session_id, complete=str(form.get("three_d_secure") or "complete") != "fail"
                )
            status = {"succeeded": 200, "declined": 402, "not_open": 409}.get(result.outcome, 400)
            return status, {
                "outcome": result.outcome,
                "message": result.message,
                "error": result.error,
                "redirect_url": result.redirect_url,
                "session": checkout.view(result.session),
            }

        try:
            status, body = await run_in_threadpool(run)
        except StripeLocalError as exc:
            return error_response(exc, headers)
        return JSONResponse(body, status_code=status, headers=headers)

    checkout = runtime.checkout

    async def flush(request: Request) -> Response:
        try:
            authenticate(request, runtime.config.secret_key)
        except StripeLocalError as exc:
            return error_response(exc, {"Request-Id": new_id("req", 14)})
        timeout = float(request.query_params.get("timeout", "10"))
        empty = await run_in_threadpool(runtime.flush_webhooks, timeout)
        return JSONResponse({"empty": empty, "pending": runtime.dispatcher.pending_count()})

    async def sweep(request: Request) -> Response:
        try:
            authenticate(request, runtime.config.secret_key)
        except StripeLocalError as exc:
            return error_response(exc, {"Request-Id": new_id("req", 14)})
        return JSONResponse({"expired": await run_in_threadpool(runtime.sweep_now)})

    async def advance_clock(request: Request) -> Response:
        headers = {"Request-Id": new_id("req", 14)}
        try:
            authenticate(request, runtime.config.secret_key)
            form = await request.form()
            raw = str(form.get("seconds") or request.query_params.get("seconds") or "")
            try:
                seconds = float(raw)
            except ValueError:
                seconds = 0.0
            if not seconds > 0 or seconds > 10 * 365 * 86400:
                raise invalid_request("`seconds` must be a positive number of seconds.", param="seconds")
        except StripeLocalError as exc:
            return error_response(exc, headers)
        return JSONResponse(await run_in_threadpool(runtime.advance_clock, seconds), headers=headers)

    async def onboard(request: Request) -> Response:
        headers = {"Request-Id": new_id("req", 14)}
        try:
            authenticate(request, runtime.config.secret_key)
            form = await request.form()
            fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
            unknown = set(fields) - set(OnboardingForm.__dataclass_fields__)
            if unknown:
                raise invalid_request(
                    f"Received unknown parameter: {sorted(unknown)[0]}", param=sorted(unknown)[0]
                )
            account = await run_in_threadpool(runtime.accounts.require, request.path_params["id"])
            onboarding = OnboardingForm.standard(email=account.data["email"], **fields)
            result = await run_in_threadpool(runtime.accounts.submit_onboarding, account.id, onboarding)
        except StripeLocalError as exc:
            return error_response(exc, headers)
        if not result.ok:
            field, message = next(iter(result.errors.items()))
            return error_response(invalid_request(message, param=field), headers)
        return JSONResponse({"outcome": result.outcome, "account": result.account}, headers=headers)

    return [
        Route("/_local/clock/advance", advance_clock, methods=["POST"]),
        Route("/_local/accounts/{id}/onboard", onboard, methods=["POST"]),
        Route("/_local/checkout/{id}/pay", pay, methods=["POST"]),
        Route("/_local/webhooks/flush", flush, methods=["POST"]),
        Route("/_local/sweep", sweep, methods=["POST"]),
    ]
