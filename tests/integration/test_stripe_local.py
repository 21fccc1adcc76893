"""The embedded Stripe (quantoxbay.stripe_local) driven by the real stripe SDK over HTTP.

One uvicorn server per module serves the embedded Stripe mounted at
``/stripe-local`` (as the shop mounts it) next to a tiny webhook receiver that
verifies every delivery with ``stripe.Webhook.construct_event``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from quantoxbay.settings import new_stripe_local_key
from quantoxbay.stripe_local import StripeLocal, StripeLocalConfig, create_stripe_local_app
from tests.stripe_keys import bearer, stripe_local_key
from tests.support.servers import free_port

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec_test_stripe_local"
GOOD_CARD = "4242424242424242"

# -- helpers shared with test_stripe_local_webhooks.py -----------------------


class ServerThread:
    """A uvicorn server on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it; without it every response waits ~40 ms for a delayed ACK.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@dataclass
class Receiver:
    """A webhook endpoint that verifies signatures and can fail on purpose."""

    secret: str
    events: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, tuple[str, str]] = field(default_factory=dict)  # event id -> (body, signature)
    attempts: list[tuple[float, str, str]] = field(default_factory=list)
    rejected: int = 0
    fail_first: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode()
        header = request.headers.get("stripe-signature", "")
        try:
            event = stripe.Webhook.construct_event(body, header, self.secret, tolerance=300)
        except (stripe.SignatureVerificationError, ValueError):
            with self.lock:
                self.rejected += 1
            return Response("bad signature", status_code=400)
        assert isinstance(event, stripe.Event)
        assert request.headers["content-type"].startswith("application/json")
        payload = json.loads(body)
        with self.lock:
            self.attempts.append((time.monotonic(), header, payload["id"]))
            object_id = payload["data"]["object"].get("id")
            if self.fail_first.get(object_id, 0) > 0:
                self.fail_first[object_id] -= 1
                return Response("try later", status_code=500)
            self.events.append(payload)
            self.raw[payload["id"]] = (body, header)
        return Response("ok")

    def of(self, object_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e
                for e in self.events
                if e["data"]["object"].get("id") == object_id
                and (event_type is None or e["type"] == event_type)
            ]


def build_app(config: StripeLocalConfig, receiver: Receiver) -> tuple[Starlette, StripeLocal]:
    """The shop's layout: the embedded Stripe at /stripe-local, the webhook at /api/stripe/webhook."""
    stripe_app = create_stripe_local_app(config)
    runtime: StripeLocal = stripe_app.state.stripe_local

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        runtime.start()  # a mounted app's lifespan does not run: the host starts it
        yield
        runtime.dispatcher.stop()

    app = Starlette(
        routes=[
            Mount("/stripe-local", stripe_app),
            Route("/api/stripe/webhook", receiver.endpoint, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    return app, runtime


def session_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1999,
                    "product_data": {
                        "name": "Python Ebook",
                        "metadata": {"product_id": "42"},
                        "images": ["https://example.com/cover.png"],
                    },
                },
                "quantity": 1,
            },
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 500,
                    "product_data": {"name": "Icon pack", "metadata": {"product_id": "7"}},
                },
                "quantity": 2,
            },
        ],
        "success_url": "http://shop.test/checkout/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://shop.test/products/42",
        "client_reference_id": "order-123",
        "metadata": {"order_id": "123"},
        "payment_intent_data": {"metadata": {"order_id": "123"}},
    }
    params.update(overrides)
    return params


def product_line_item(product_id: str, unit_amount: int = 1999, quantity: int = 1) -> dict[str, Any]:
    """A line item whose price names a stored Product (``price_data[product]``)."""
    return {
        "price_data": {"currency": "usd", "unit_amount": unit_amount, "product": product_id},
        "quantity": quantity,
    }


class PageParser(HTMLParser):
    """Collects what a test (or a screen reader) needs from the hosted page."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.inputs: dict[str, dict[str, str]] = {}
        self.buttons: list[str] = []
        self.links: dict[str, str] = {}
        self.alerts: list[str] = []
        self.forms: list[str] = []
        self._label_for: str | None = None
        self._capture: str | None = None
        self._text: list[str] = []
        self._href: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "label":
            self._label_for, self._capture, self._text = a.get("for"), "label", []
        elif tag == "input":
            self.inputs[a.get("name", "")] = a
        elif tag == "button":
            self._capture, self._text = "button", []
        elif tag == "a":
            self._capture, self._text, self._href = "a", [], a.get("href", "")
        elif a.get("role") == "alert":
            self._capture, self._text = "alert", []
        elif tag == "form":
            self.forms.append(a.get("action", ""))

    def handle_data(self, data: str) -> None:
        if self._capture:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._text).split())
        if tag == "label" and self._capture == "label":
            self.labels[text] = self._label_for or ""
        elif tag == "button" and self._capture == "button":
            self.buttons.append(text)
        elif tag == "a" and self._capture == "a":
            self.links[text] = self._href
        elif tag == "div" and self._capture == "alert":
            self.alerts.append(text)
        else:
            return
        self._capture = None


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def form_token(html: str) -> str:
    match = re.search(r'name="form_token" value="([0-9a-f]+)"', html)
    assert match, "the page has no form token"
    return match.group(1)


def pay_on_page(http: httpx.Client, url: str, card: str = GOOD_CARD, **fields: str) -> httpx.Response:
    page = http.get(url)
    assert page.status_code == 200, page.text
    data = {
        "form_token": form_token(page.text),
        "email": "buyer@example.com",
        "card_number": card,
        "expiry": "12/34",
        "cvc": "123",
        "name": "Ada Buyer",
        "action": "pay",
    }
    data.update(fields)
    return http.post(url, data=data)


# -- fixtures -----------------------------------------------------------------


@dataclass
class Env:
    base_url: str
    api_base: str
    client: stripe.StripeClient
    runtime: StripeLocal
    receiver: Receiver
    http: httpx.Client


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver(SECRET)
    config = StripeLocalConfig(
        db_path=tmp_path_factory.mktemp("stripe_local") / "stripe_local.db",
        secret_key=stripe_local_key(),
        public_base_url=f"{base}/stripe-local",
        webhook_url=f"{base}/api/stripe/webhook",
        webhook_secret=SECRET,
        webhook_backoff_base_seconds=0.1,
        webhook_max_attempts=4,
        webhook_timeout_seconds=5,
        webhook_enabled_events=("*",),
        sweep_interval_seconds=0.2,
        poll_interval_seconds=0.05,
        rate_limit_per_second=1000,
    )
    app, runtime = build_app(config, receiver)
    server = ServerThread(app, port).start()
    client = stripe.StripeClient(stripe_local_key(), base_addresses={"api": f"{base}/stripe-local"})
    with httpx.Client(timeout=10) as http:
        yield Env(base, f"{base}/stripe-local", client, runtime, receiver, http)
    server.stop()
    runtime.stop()


def wait_for(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# -- API: checkout sessions ---------------------------------------------------


def test_create_and_retrieve_session(env: Env) -> None:
    before = int(time.time())
    session = env.client.v1.checkout.sessions.create(params=session_params(customer_email="a@b.co"))
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.mode == "payment" and session.livemode is False
    assert session.amount_subtotal == 2999 and session.amount_total == 2999
    assert session.total_details.amount_discount == 0
    assert session.currency == "usd"
    assert session.client_reference_id == "order-123"
    assert session.metadata.to_dict() == {"order_id": "123"}
    assert session.customer_email == "a@b.co"
    assert session.payment_intent is None  # created when the buyer pays
    assert session.url == f"{env.api_base}/checkout/{session.id}"
    assert before + 24 * 3600 - 5 <= session.expires_at <= before + 24 * 3600 + 5
    assert session.success_url.endswith("session_id={CHECKOUT_SESSION_ID}")

    fetched = env.client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items", "line_items.data.price.product"]}
    )
    items = fetched.line_items.data
    assert [i.description for i in items] == ["Python Ebook", "Icon pack"]
    assert [i.amount_total for i in items] == [1999, 1000]
    assert items[1].quantity == 2 and items[1].price.unit_amount == 500
    assert items[0].price.product.metadata["product_id"] == "42"

    listed = env.client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 1})
    assert listed.object == "list" and listed.has_more is True
    assert listed.url == f"/v1/checkout/sessions/{session.id}/line_items"
    assert [i.id for i in listed.auto_paging_iter()] == [i.id for i in items]


def test_missing_session_is_invalid_request_error(env: Env) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.retrieve("cs_test_doesnotexist")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert "cs_test_doesnotexist" in str(info.value.user_message)


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"expires_at": int(time.time()) + 600}, "expires_at"),
        ({"expires_at": int(time.time()) + 25 * 3600}, "expires_at"),
        ({"line_items": []}, "line_items"),
        ({"mode": "subscription"}, "mode"),
        ({"bogus": "1"}, "bogus"),
        ({"success_url": "not a url"}, "success_url"),
        ({"allow_promotion_codes": True, "discounts": [{"coupon": "X"}]}, "discounts"),
        ({"discounts": [{"coupon": "no-such-coupon"}]}, "discounts[0][coupon]"),
    ],
)
def test_create_session_validation(env: Env, overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(params=session_params(**overrides))
    assert info.value.param == param
    assert info.value.http_status in (400, 404)


def test_missing_line_item_fields_name_the_param(env: Env) -> None:
    params = session_params()
    del params["line_items"][0]["price_data"]["unit_amount"]
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(params=params)
    assert info.value.param == "line_items[0][price_data][unit_amount]"
    assert info.value.code == "parameter_missing"


def test_expires_at_within_window_is_kept(env: Env) -> None:
    expires_at = int(time.time()) + 3600
    session = env.client.v1.checkout.sessions.create(params=session_params(expires_at=expires_at))
    assert session.expires_at == expires_at


def test_authentication_errors(env: Env) -> None:
    for key in ("sk_live_abc123", "pk_test_abc123"):
        bad = stripe.StripeClient(key, base_addresses={"api": env.api_base})
        with pytest.raises(stripe.AuthenticationError) as info:
            bad.v1.checkout.sessions.retrieve("cs_test_x")
        assert info.value.http_status == 401
    response = env.http.get(f"{env.api_base}/v1/events")
    assert response.status_code == 401
    assert response.headers["request-id"].startswith("req_")
    assert response.json()["error"]["message"].startswith("You did not provide an API key")


# Each API and helper route, called as an attacker on the network would: with a key of their own.
GUARDED_ROUTES = [
    ("GET", "/v1/checkout/sessions"),
    ("POST", "/v1/checkout/sessions"),
    ("GET", "/v1/checkout/sessions/cs_test_x"),
    ("POST", "/v1/checkout/sessions/cs_test_x/expire"),
    ("POST", "/v1/refunds"),
    ("POST", "/v1/coupons"),
    ("POST", "/v1/promotion_codes"),
    ("POST", "/v1/products/prod_x"),
    ("GET", "/v1/events"),
    ("GET", "/v1/customers"),
    ("GET", "/v1/subscriptions"),  # not served: still 401 before 404, as on Stripe
    # Connect and the rest of the API the embedded Stripe grew since
    ("POST", "/v1/accounts"),
    ("GET", "/v1/accounts/acct_x"),
    ("DELETE", "/v1/accounts/acct_x"),
    ("POST", "/v1/accounts/acct_x/login_links"),
    ("POST", "/v1/account_links"),
    ("POST", "/v1/transfers"),
    ("POST", "/v1/transfers/tr_x/reversals"),
    ("POST", "/v1/application_fees/fee_x/refunds"),
    ("GET", "/v1/balance"),
    ("GET", "/v1/balance_transactions"),
    ("GET", "/v1/payouts"),
    ("POST", "/v1/prices"),
    ("POST", "/v1/webhook_endpoints"),
    ("GET", "/v1/webhook_endpoints"),
    ("POST", "/_local/checkout/cs_test_x/pay"),
    ("POST", "/_local/webhooks/flush"),
    ("POST", "/_local/sweep"),
    ("POST", "/_local/clock/advance"),
    ("POST", "/_local/accounts/acct_x/onboard"),
]


@pytest.mark.parametrize(("method", "path"), GUARDED_ROUTES)
def test_only_the_install_key_opens_the_api_and_helpers(env: Env, method: str, path: str) -> None:
    url = f"{env.api_base}{path}"
    other_install = new_stripe_local_key()
    for headers, message in [
        ({"Authorization": "Bearer sk_test_anything"}, "Invalid API Key provided: sk_test_****hing"),
        (
            {"Authorization": f"Bearer {other_install}"},
            f"Invalid API Key provided: sk_test_****{other_install[-4:]}",
        ),
        ({"Authorization": f"Bearer {stripe_local_key()}x"}, "Invalid API Key provided: sk_test_****"),
        ({}, "You did not provide an API key."),
    ]:
        response = env.http.request(method, url, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith(message)
        assert stripe_local_key() not in response.text
        assert response.headers["request-id"].startswith("req_")
    # Basic auth (the key as user name) is held to the same key.
    wrong_basic = env.http.request(method, url, auth=("sk_test_anything", ""))
    assert wrong_basic.status_code == 401
    right = env.http.request(method, url, headers=bearer())
    assert right.status_code != 401, right.text


def test_the_sdk_with_another_key_gets_an_authentication_error(env: Env) -> None:
    for key in ("sk_test_anything", new_stripe_local_key()):
        other = stripe.StripeClient(key, base_addresses={"api": env.api_base})
        with pytest.raises(stripe.AuthenticationError) as info:
            other.v1.checkout.sessions.list()
        assert info.value.http_status == 401
        assert info.value.json_body["error"]["message"] == f"Invalid API Key provided: sk_test_****{key[-4:]}"
    right = stripe.StripeClient(
        stripe_local_key(), base_addresses={"api": env.api_base}, max_network_retries=0
    )
    assert right.v1.checkout.sessions.list(params={"limit": 1}).object == "list"
    basic = env.http.get(f"{env.api_base}/v1/events", auth=(stripe_local_key(), ""), params={"limit": 1})
    assert basic.status_code == 200


def test_nobody_without_the_key_renames_a_product_on_the_hosted_page(env: Env) -> None:
    product = env.client.v1.products.create(params={"name": "Python Ebook", "metadata": {"shop_id": "42"}})
    renamed = env.http.post(
        f"{env.api_base}/v1/products/{product.id}",
        headers={"Authorization": "Bearer sk_test_anything"},
        data={"name": "Pwned", "images[0]": "https://evil.test/x.png"},
    )
    assert renamed.status_code == 401
    session = env.client.v1.checkout.sessions.create(
        params=session_params(line_items=[product_line_item(product.id)], allow_promotion_codes=True)
    )
    # The public page's own forms, with every product or line-item field an attacker might add.
    page = env.http.get(session.url)
    token = form_token(page.text)
    smuggled = {
        "name": "Ada Buyer",
        "product": "Pwned",
        "product_name": "Pwned",
        "line_items[0][price_data][product_data][name]": "Pwned",
        "line_items[0][price_data][unit_amount]": "1",
        "amount_total": "1",
        "metadata[shop_id]": "666",
    }
    for action in ("apply", "remove"):
        env.http.post(
            session.url, data={"form_token": token, "action": action, "promotion_code": "X", **smuggled}
        )
    unchanged = env.client.v1.products.retrieve(product.id)
    assert (
        unchanged.name == "Python Ebook" and unchanged.images == [] and unchanged.metadata["shop_id"] == "42"
    )
    after = env.http.get(session.url).text
    assert "Python Ebook" in after and "Pwned" not in after
    paid = pay_on_page(env.http, session.url, **smuggled)
    assert paid.status_code == 303
    done = env.client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert done.amount_total == 1999 and done.metadata.to_dict() == {"order_id": "123"}
    assert [item.description for item in done.line_items.data] == ["Python Ebook"]


def test_a_sessions_page_acts_on_that_session_only(env: Env) -> None:
    mine = env.client.v1.checkout.sessions.create(params=session_params())
    theirs = env.client.v1.checkout.sessions.create(params=session_params())
    my_token = form_token(env.http.get(mine.url).text)
    for url in (theirs.url, f"{theirs.url}/authenticate"):
        response = env.http.post(
            url,
            data={
                "form_token": my_token,
                "email": "buyer@example.com",
                "card_number": GOOD_CARD,
                "expiry": "12/34",
                "cvc": "123",
                "name": "Mallory",
                "action": "pay",
            },
        )
        assert response.status_code == 403
    assert env.client.v1.checkout.sessions.retrieve(theirs.id).status == "open"
    # No other method or path under the page does anything.
    assert env.http.delete(mine.url).status_code == 405
    assert env.http.post(f"{mine.url}/pay", data={"form_token": my_token}).status_code == 404
    assert env.client.v1.checkout.sessions.retrieve(mine.id).status == "open"


def test_idempotency_replays_and_rejects_other_params(env: Env) -> None:
    options = {"idempotency_key": f"key-{time.time_ns()}"}
    first = env.client.v1.checkout.sessions.create(params=session_params(), options=options)
    again = env.client.v1.checkout.sessions.create(params=session_params(), options=options)
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError) as info:
        env.client.v1.checkout.sessions.create(
            params=session_params(client_reference_id="other"), options=options
        )
    assert info.value.http_status == 400
    # A request that failed validation keeps nothing: the key can be used once fixed.
    key2 = {"idempotency_key": f"key2-{time.time_ns()}"}
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.checkout.sessions.create(params=session_params(mode="setup"), options=key2)
    assert env.client.v1.checkout.sessions.create(params=session_params(), options=key2).id


def test_rate_limit_per_endpoint(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    env.runtime.set_rate_limit(5, account_per_second=1000)
    try:
        with pytest.raises(stripe.RateLimitError) as info:
            for _ in range(20):
                env.client.v1.checkout.sessions.retrieve(session.id)
        assert info.value.http_status == 429
        assert info.value.json_body["error"]["code"] == "rate_limit"
        # Another endpoint has its own bucket; the same endpoint with another id does not.
        env.client.v1.events.list(params={"limit": 1})
        with pytest.raises(stripe.RateLimitError):
            env.client.v1.checkout.sessions.retrieve("cs_test_other")
        time.sleep(0.5)  # the bucket refills
        env.client.v1.checkout.sessions.retrieve(session.id)
    finally:
        env.runtime.set_rate_limit(1000, account_per_second=1000)


def test_account_wide_rate_limit_spans_endpoints(env: Env) -> None:
    """Stripe's sandbox allows 25 requests/s per account whatever the endpoints."""
    env.runtime.set_rate_limit(1000, account_per_second=5)
    try:
        paths = ["/v1/events", "/v1/products", "/v1/prices", "/v1/coupons/none", "/v1/checkout/sessions"]
        statuses = []
        for i in range(20):
            response = env.http.get(f"{env.api_base}{paths[i % len(paths)]}", headers=bearer())
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
                assert response.json()["error"]["code"] == "rate_limit"
        assert 429 in statuses
    finally:
        env.runtime.set_rate_limit(1000, account_per_second=1000)


def test_default_rate_limits_follow_stripe_sandbox(tmp_path: Any) -> None:
    config = StripeLocalConfig(
        db_path=tmp_path / "s.db", secret_key=stripe_local_key(), webhook_secret=SECRET
    )
    runtime = StripeLocal(config)
    try:
        assert runtime.rate_limiter.rate == 25
        assert runtime.account_rate_limiter.rate == 25
    finally:
        runtime.stop()


def test_unknown_api_path_is_404(env: Env) -> None:
    response = env.http.get(f"{env.api_base}/v1/subscriptions", headers=bearer())
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


# -- products -----------------------------------------------------------------


def test_create_retrieve_and_update_a_product(env: Env) -> None:
    before = int(time.time())
    product = env.client.v1.products.create(
        params={
            "name": "Python Ebook",
            "description": "Learn Python",
            "images": ["https://example.com/cover.png"],
            "metadata": {"product_id": "42", "shelf": "b3"},
        }
    )
    assert isinstance(product, stripe.Product)
    assert re.fullmatch(r"prod_[A-Za-z0-9]{14}", product.id)
    assert product.object == "product" and product.active is True and product.livemode is False
    assert product.name == "Python Ebook" and product.description == "Learn Python"
    assert product.images == ["https://example.com/cover.png"]
    assert product.metadata.to_dict() == {"product_id": "42", "shelf": "b3"}
    assert before <= product.created == product.updated <= int(time.time())

    fetched = env.client.v1.products.retrieve(product.id, params={"expand": []})
    assert fetched.to_dict() == product.to_dict()

    with env.runtime.db.transaction() as conn:  # travel in time so `updated` visibly moves
        conn.execute(
            "UPDATE objects SET data = json_set(data, '$.updated', ?) WHERE id = ?",
            (product.created - 100, product.id),
        )
    updated = env.client.v1.products.update(
        product.id,
        params={
            "name": "Python Ebook (2nd edition)",
            "description": "",
            "metadata": {"shelf": "", "edition": "2"},
            "active": False,
        },
    )
    assert updated.name == "Python Ebook (2nd edition)" and updated.description is None
    assert updated.metadata.to_dict() == {"product_id": "42", "edition": "2"}  # merged; "" removes
    assert updated.active is False and updated.images == ["https://example.com/cover.png"]
    assert updated.created == product.created and updated.updated >= before
    assert env.client.v1.products.retrieve(product.id).to_dict() == updated.to_dict()
    cleared = env.client.v1.products.update(product.id, params={"metadata": "", "active": True})
    assert cleared.metadata.to_dict() == {} and cleared.active is True

    events = env.client.v1.events.list(params={"type": "product.*", "limit": 100}).data
    assert {e.type for e in events if e.data.object.id == product.id} == {
        "product.created",
        "product.updated",
    }


def test_product_custom_id_conflict_and_missing_product(env: Env) -> None:
    custom_id = f"qb-product-{time.time_ns()}"
    made = env.client.v1.products.create(params={"id": custom_id, "name": "Custom"})
    assert made.id == custom_id
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.products.create(params={"id": custom_id, "name": "Another"})
    assert info.value.http_status == 400
    assert info.value.code == "resource_already_exists" and info.value.param == "id"
    assert env.client.v1.products.retrieve(custom_id).name == "Custom"

    for call in (
        lambda: env.client.v1.products.retrieve("prod_doesnotexist"),
        lambda: env.client.v1.products.update("prod_doesnotexist", params={"name": "X"}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as info:
            call()
        assert info.value.http_status == 404 and info.value.code == "resource_missing"
        assert info.value.user_message == "No such product: 'prod_doesnotexist'"
        assert info.value.param == "id"


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({}, "name", "parameter_missing"),
        ({"name": "x" * 251}, "name", None),
        ({"name": "Many", "images": [f"https://example.com/{i}.png" for i in range(9)]}, "images", None),
        ({"name": "Odd", "price": "price_123"}, "price", "parameter_unknown"),
    ],
)
def test_product_validation(env: Env, params: dict[str, Any], param: str, code: str | None) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.products.create(params=params)
    assert info.value.http_status == 400
    assert info.value.param == param and info.value.code == code


def test_product_create_is_idempotent(env: Env) -> None:
    options = {"idempotency_key": f"product-{time.time_ns()}"}
    first = env.client.v1.products.create(params={"name": "Once"}, options=options)
    again = env.client.v1.products.create(params={"name": "Once"}, options=options)
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        env.client.v1.products.create(params={"name": "Twice"}, options=options)


def test_checkout_line_item_uses_a_stored_product(env: Env) -> None:
    product = env.client.v1.products.create(
        params={
            "name": "Rust Ebook",
            "description": "Learn Rust",
            "images": ["https://example.com/rust.png"],
            "metadata": {"product_id": "77"},
        }
    )
    session = env.client.v1.checkout.sessions.create(
        params=session_params(line_items=[product_line_item(product.id, 2500, 2)])
    )
    assert session.amount_total == 5000
    fetched = env.client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items", "line_items.data.price.product"]}
    )
    [item] = fetched.line_items.data
    assert item.description == "Rust Ebook" and item.amount_total == 5000
    shown = item.price.product
    assert shown.object == "product" and shown.id == product.id
    assert shown.name == "Rust Ebook" and shown.description == "Learn Rust"
    assert shown.images == ["https://example.com/rust.png"]
    assert shown.metadata.to_dict() == {"product_id": "77"} and shown.created == product.created
    plain = env.client.v1.checkout.sessions.line_items.list(session.id).data
    assert plain[0].price.product == product.id

    page = env.http.get(session.url)
    assert page.status_code == 200
    assert "Rust Ebook" in page.text and "$50.00" in page.text


@pytest.mark.parametrize(
    ("price_data", "status", "param", "code"),
    [
        (
            {"product": "PRODUCT", "product_data": {"name": "Both"}},
            400,
            "line_items[0][price_data]",
            None,
        ),
        ({}, 400, "line_items[0][price_data]", "parameter_missing"),
        ({"product": "prod_doesnotexist"}, 404, "line_items[0][price_data][product]", "resource_missing"),
        ({"product": "INACTIVE"}, 400, "line_items[0][price_data][product]", None),
    ],
    ids=["both", "neither", "unknown", "inactive"],
)
def test_checkout_line_item_product_is_checked(
    env: Env, price_data: dict[str, Any], status: int, param: str, code: str | None
) -> None:
    product = env.client.v1.products.create(params={"name": "Active"})
    inactive = env.client.v1.products.create(params={"name": "Archived", "active": False})
    ids = {"PRODUCT": product.id, "INACTIVE": inactive.id}
    if "product" in price_data:
        price_data = {**price_data, "product": ids.get(price_data["product"], price_data["product"])}
    line = {"price_data": {"currency": "usd", "unit_amount": 1000, **price_data}, "quantity": 1}
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(params=session_params(line_items=[line]))
    assert info.value.http_status == status
    assert info.value.param == param and info.value.code == code
    if code == "resource_missing":
        assert info.value.user_message == "No such product: 'prod_doesnotexist'"
    if price_data.get("product") == inactive.id:
        assert inactive.id in str(info.value.user_message)


# -- hosted checkout page -----------------------------------------------------


def test_hosted_page_has_the_accessible_names(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    response = env.http.get(session.url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = parse(response.text)
    for name in ("Email", "Card number", "Expiry (MM/YY)", "CVC", "Name on card", "Promotion code"):
        assert name in page.labels, name
        assert any(i.get("id") == page.labels[name] for i in page.inputs.values()), name
    assert page.buttons == ["Apply", "Pay"]
    assert page.links["← Back"] == "http://shop.test/products/42"
    assert f"/stripe-local/checkout/{session.id}" in page.forms
    assert "$29.99" in response.text and "$19.99" in response.text and "Icon pack" in response.text
    without_promo = env.client.v1.checkout.sessions.create(params=session_params())
    assert "Promotion code" not in parse(env.http.get(without_promo.url).text).labels
    assert env.http.get(f"{env.api_base}/checkout/cs_test_nope").status_code == 404


def test_good_card_pays_redirects_and_delivers_signed_event(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    response = pay_on_page(env.http, session.url)
    assert response.status_code == 303
    assert response.headers["location"] == (f"http://shop.test/checkout/success?session_id={session.id}")
    paid = env.client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert paid.status == "complete" and paid.payment_status == "paid"
    assert paid.url is None
    assert paid.customer_details.email == "buyer@example.com"
    assert paid.customer_details.name == "Ada Buyer"
    intent = paid.payment_intent
    assert intent.id.startswith("pi_test_") and intent.status == "succeeded"
    assert intent.amount == intent.amount_received == 2999
    assert intent.metadata["order_id"] == "123"
    assert intent.latest_charge.startswith("ch_test_")
    pi = env.client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert pi.latest_charge.paid is True and pi.latest_charge.payment_method_details.card.last4 == "4242"

    assert env.runtime.flush_webhooks(10)
    [event] = env.receiver.of(session.id, "checkout.session.completed")
    assert event["id"].startswith("evt_") and event["object"] == "event"
    assert event["livemode"] is False and event["api_version"] == stripe.api_version
    obj = event["data"]["object"]
    assert obj["amount_total"] == 2999 and obj["client_reference_id"] == "order-123"
    assert obj["metadata"] == {"order_id": "123"} and obj["payment_intent"] == intent.id
    assert obj["payment_status"] == "paid"
    stored = env.client.v1.events.retrieve(event["id"])
    assert stored.type == "checkout.session.completed" and stored.pending_webhooks == 0
    assert stored.request.id is None

    # Paying again shows a clear page and charges nothing.
    again = env.http.get(session.url)
    assert again.status_code == 200 and "already paid" in again.text
    repeat = post_payment(env, session.id)
    assert repeat.status_code == 200 and "already paid" in repeat.text
    assert env.client.v1.payment_intents.retrieve(intent.id).amount_received == 2999


@pytest.mark.parametrize(
    ("card", "message", "decline_code"),
    [
        ("4000000000000002", "Your card was declined.", "generic_decline"),
        ("4000000000009995", "Your card has insufficient funds.", "insufficient_funds"),
        ("4000000000009987", "Your card was declined.", "lost_card"),
        ("4000000000009979", "Your card was declined.", "stolen_card"),
        ("4000000000000069", "Your card has expired.", "expired_card"),
        ("4000000000000127", "Your card's security code is incorrect.", "incorrect_cvc"),
        ("4000000000000119", "An error occurred while processing your card.", "processing_error"),
        ("4100000000000019", "Your card was declined.", "fraudulent"),
    ],
)
def test_declines_show_message_and_allow_retry(env: Env, card: str, message: str, decline_code: str) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    response = pay_on_page(env.http, session.url, card)
    assert response.status_code == 402
    page = parse(response.text)
    assert any(message in alert for alert in page.alerts), page.alerts
    assert page.buttons[-1] == "Pay"
    still = env.client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert still.status == "open" and still.payment_status == "unpaid"
    assert still.payment_intent.status == "requires_payment_method"
    assert still.payment_intent.last_payment_error.decline_code == decline_code
    retry = pay_on_page(env.http, session.url)
    assert retry.status_code == 303
    done = env.client.v1.checkout.sessions.retrieve(session.id)
    assert done.payment_status == "paid" and done.payment_intent == still.payment_intent.id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"card_number": "4242424242424241"}, "Your card number is incorrect."),
        ({"card_number": "4242 4242"}, "Your card number is incomplete."),
        ({"card_number": "4111111111111112"}, "Your card number is incorrect."),
        ({"expiry": "01/20"}, "Your card's expiration year is in the past."),
        ({"expiry": "13/30"}, "Your card's expiration month is invalid."),
        ({"expiry": "1230"}, "Your card's expiration date is incomplete."),
        ({"cvc": "12"}, "Your card's security code is incomplete."),
        ({"email": "not-an-email"}, "Your email address is invalid."),
    ],
)
def test_malformed_fields_are_refused_without_a_charge(
    env: Env, fields: dict[str, str], message: str
) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    response = pay_on_page(env.http, session.url, **fields)
    assert response.status_code == 400
    assert message in parse(response.text).alerts
    assert env.client.v1.checkout.sessions.retrieve(session.id).payment_status == "unpaid"


def test_other_luhn_valid_numbers_succeed(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    assert pay_on_page(env.http, session.url, "5555555555554444").status_code == 303


def test_form_token_is_required(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    response = env.http.post(
        session.url, data={"form_token": "0" * 32, "card_number": GOOD_CARD, "action": "pay"}
    )
    assert response.status_code == 403
    assert env.client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_three_d_secure_complete_and_fail(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    response = pay_on_page(env.http, session.url, "4000002500003155")
    assert response.status_code == 303
    auth_url = f"{env.base_url}{response.headers['location']}"
    assert auth_url.endswith(f"/stripe-local/checkout/{session.id}/authenticate")
    step = env.http.get(auth_url)
    assert parse(step.text).buttons == ["Complete authentication", "Fail authentication"]
    pi = env.client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert pi.payment_intent.status == "requires_action"

    failed = env.http.post(auth_url, data={"form_token": form_token(step.text), "action": "fail"})
    assert failed.status_code == 402
    assert any("unable to authenticate" in a for a in parse(failed.text).alerts)
    assert env.client.v1.checkout.sessions.retrieve(session.id).status == "open"

    response = pay_on_page(env.http, session.url, "4000002500003155")
    step = env.http.get(f"{env.base_url}{response.headers['location']}")
    done = env.http.post(auth_url, data={"form_token": form_token(step.text), "action": "complete"})
    assert done.status_code == 303 and session.id in done.headers["location"]
    assert env.client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_three_d_secure_then_declined(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    response = pay_on_page(env.http, session.url, "4000008400001629")
    auth_url = f"{env.base_url}{response.headers['location']}"
    step = env.http.get(auth_url)
    declined = env.http.post(auth_url, data={"form_token": form_token(step.text), "action": "complete"})
    assert declined.status_code == 402
    assert "Your card was declined." in parse(declined.text).alerts
    assert env.client.v1.checkout.sessions.retrieve(session.id).payment_status == "unpaid"


def test_dispute_card_pays_then_opens_a_dispute(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    assert pay_on_page(env.http, session.url, "4000000000000259").status_code == 303
    paid = env.client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    charge_id = paid.payment_intent.latest_charge
    assert env.runtime.flush_webhooks(10)
    [event] = [
        e
        for e in env.receiver.events
        if e["type"] == "charge.dispute.created" and e["data"]["object"]["charge"] == charge_id
    ]
    dispute = event["data"]["object"]
    assert dispute["status"] == "needs_response" and dispute["reason"] == "fraudulent"
    assert dispute["amount"] == 2999
    assert env.client.v1.charges.retrieve(charge_id).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.refunds.create(params={"payment_intent": paid.payment_intent.id})
    assert info.value.code == "charge_disputed"
    closed = env.client.v1.disputes.update(
        dispute["id"], params={"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    assert closed.status == "won"


def test_local_pay_helper(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    url = f"{env.api_base}/_local/checkout/{session.id}/pay"
    assert env.http.post(url).status_code == 401
    auth = bearer()
    declined = env.http.post(url, headers=auth, data={"card_number": "4000000000009995"})
    assert declined.status_code == 402 and declined.json()["error"]["decline_code"] == "insufficient_funds"
    ok = env.http.post(url, headers=auth, data={"email": "helper@example.com"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["outcome"] == "succeeded" and body["session"]["payment_status"] == "paid"
    assert body["redirect_url"].endswith(session.id)
    assert env.http.post(url, headers=auth).status_code == 409


# -- expiry ---------------------------------------------------------------------


def test_expire_endpoint(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    expired = env.client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.checkout.sessions.expire(session.id)
    page = env.http.get(session.url)
    assert page.status_code == 410 and "expired" in page.text
    assert post_payment(env, session.id).status_code == 410
    assert env.runtime.flush_webhooks(10)
    [event] = env.receiver.of(session.id, "checkout.session.expired")
    assert event["request"]["id"].startswith("req_")


def post_payment(env: Env, session_id: str) -> httpx.Response:
    """Post the payment form of a session whose page no longer shows it."""
    return env.http.post(
        f"{env.api_base}/checkout/{session_id}",
        data={
            "form_token": env.runtime.form_token(session_id),
            "card_number": GOOD_CARD,
            "expiry": "12/34",
            "cvc": "123",
            "name": "A",
            "email": "a@b.co",
            "action": "pay",
        },
    )


def test_sweeper_expires_overdue_sessions(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    with env.runtime.db.transaction() as conn:  # travel in time: make it overdue
        conn.execute(
            "UPDATE objects SET data = json_set(data, '$.expires_at', ?) WHERE id = ?",
            (int(time.time()) - 1, session.id),
        )
    wait_for(lambda: env.receiver.of(session.id, "checkout.session.expired"), timeout=5)
    assert env.client.v1.checkout.sessions.retrieve(session.id).status == "expired"


# -- promotion codes and coupons ------------------------------------------------


def test_coupons_and_promotion_codes_api(env: Env) -> None:
    coupon = env.client.v1.coupons.create(
        params={"percent_off": 25, "duration": "once", "name": "Launch", "max_redemptions": 10}
    )
    assert coupon.object == "coupon" and coupon.percent_off == 25 and coupon.valid is True
    assert env.client.v1.coupons.retrieve(coupon.id).name == "Launch"
    code = f"LAUNCH{time.time_ns() % 100000}"
    promo = env.client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": code,
            "max_redemptions": 2,
            "restrictions": {"first_time_transaction": False},
        }
    )
    assert promo.object == "promotion_code" and promo.id.startswith("promo_")
    assert promo.promotion.type == "coupon" and promo.promotion.coupon == coupon.id
    assert promo.active is True and promo.times_redeemed == 0 and promo.max_redemptions == 2
    expanded = env.client.v1.promotion_codes.retrieve(promo.id, params={"expand": ["promotion.coupon"]})
    assert expanded.promotion.coupon.percent_off == 25
    with pytest.raises(stripe.InvalidRequestError) as info:  # unique among active, any case
        env.client.v1.promotion_codes.create(
            params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": code.lower()}
        )
    assert info.value.param == "code"
    found = env.client.v1.promotion_codes.list(params={"code": code.lower(), "active": True})
    assert [p.id for p in found.data] == [promo.id]
    env.client.v1.promotion_codes.update(promo.id, params={"active": False})
    assert env.client.v1.promotion_codes.list(params={"code": code, "active": True}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.coupons.create(params={"amount_off": 500})  # currency missing
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": "nope"}})


def apply_code(env: Env, url: str, code: str) -> httpx.Response:
    page = env.http.get(url)
    return env.http.post(
        url,
        data={
            "form_token": form_token(page.text),
            "promotion_code": code,
            "email": "promo@example.com",
            "action": "apply",
        },
    )


def test_promotion_code_on_the_hosted_page(env: Env) -> None:
    coupon = env.client.v1.coupons.create(params={"percent_off": 20})
    code = f"SAVE{time.time_ns() % 100000}"
    promo = env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": code, "max_redemptions": 1}
    )
    session = env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))

    bad = apply_code(env, session.url, "NOPE-NOT-A-CODE")
    assert bad.status_code == 400 and "This code is invalid." in parse(bad.text).alerts

    applied = apply_code(env, session.url, code.lower())
    assert applied.status_code == 200
    assert "Promotion code applied." in applied.text and "$23.99" in applied.text
    assert f"Discount ({code})" in applied.text
    assert 'value="promo@example.com"' in applied.text  # what the buyer typed is kept
    current = env.client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert current.amount_total == 2399 and current.total_details.amount_discount == 600
    assert current.discounts[0].promotion_code == promo.id
    assert sum(i.amount_discount for i in current.line_items.data) == 600

    assert pay_on_page(env.http, session.url).status_code == 303
    assert env.client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
    assert env.client.v1.coupons.retrieve(coupon.id).times_redeemed == 1
    assert env.runtime.flush_webhooks(10)
    [event] = env.receiver.of(session.id, "checkout.session.completed")
    assert event["data"]["object"]["amount_total"] == 2399

    other = env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    exhausted = apply_code(env, other.url, code)
    assert "This code has reached its redemption limit." in parse(exhausted.text).alerts
    assert env.client.v1.checkout.sessions.retrieve(other.id).amount_total == 2999


def test_a_code_the_merchant_attached_is_named_by_its_coupon_not_shown(env: Env) -> None:
    """A once-per-buyer code lives in Stripe under a hidden code only the shop's server attaches;
    showing it on the hosted page would let anyone type it into the next checkout."""
    coupon = env.client.v1.coupons.create(params={"percent_off": 25, "name": "WELCOME"})
    hidden = f"QB-{time.time_ns():x}"
    promo = env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": hidden}
    )
    session = env.client.v1.checkout.sessions.create(
        params=session_params(discounts=[{"promotion_code": promo.id}])
    )
    page = env.http.get(session.url)
    assert page.status_code == 200
    assert hidden not in page.text and hidden.lower() not in page.text.lower()
    assert "Discount (WELCOME)" in page.text and "Promotion code" not in page.text
    nameless = env.client.v1.coupons.create(params={"amount_off": 100, "currency": "usd"})
    other = env.client.v1.checkout.sessions.create(params=session_params(discounts=[{"coupon": nameless.id}]))
    assert ">Discount<" in env.http.get(other.url).text


def test_expired_code_and_product_restricted_coupon(env: Env) -> None:
    coupon = env.client.v1.coupons.create(params={"percent_off": 50})
    code = f"SOON{time.time_ns() % 100000}"
    promo = env.client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": code,
            "expires_at": int(time.time()) + 60,
        }
    )
    with env.runtime.db.transaction() as conn:
        conn.execute(
            "UPDATE objects SET data = json_set(data, '$.expires_at', ?) WHERE id = ?",
            (int(time.time()) - 1, promo.id),
        )
    session = env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    assert "This code has expired." in parse(apply_code(env, session.url, code).text).alerts

    # applies_to[products] holds Product ids and matches line items using those products.
    ebook = env.client.v1.products.create(params={"name": "Python Ebook"})
    icons = env.client.v1.products.create(params={"name": "Icon pack"})
    with_products = [product_line_item(ebook.id, 1999, 1), product_line_item(icons.id, 500, 2)]
    only_icons = env.client.v1.coupons.create(
        params={"amount_off": 300, "currency": "usd", "applies_to": {"products": [icons.id]}}
    )
    assert only_icons.applies_to.products == [icons.id]
    discounted = env.client.v1.checkout.sessions.create(
        params=session_params(line_items=with_products, discounts=[{"coupon": only_icons.id}])
    )
    assert discounted.amount_total == 2999 - 300
    items = env.client.v1.checkout.sessions.line_items.list(discounted.id).data
    assert [i.amount_discount for i in items] == [0, 300]
    assert discounted.discounts[0].coupon == only_icons.id

    # An inline product_data line item is another product, whatever its metadata says.
    inline_icons = session_params()
    inline_icons["line_items"][1]["price_data"]["product_data"]["metadata"] = {"product_id": icons.id}
    inline_icons["discounts"] = [{"coupon": only_icons.id}]
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(params=inline_icons)
    assert info.value.param == "discounts[0][coupon]"

    # A coupon for a product that is not in the order discounts nothing: refused.
    stickers = env.client.v1.products.create(params={"name": "Stickers"})
    nothing_matches = env.client.v1.coupons.create(
        params={"percent_off": 10, "applies_to": {"products": [stickers.id]}}
    )
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(
            params=session_params(line_items=with_products, discounts=[{"coupon": nothing_matches.id}])
        )
    assert info.value.param == "discounts[0][coupon]"
    assert "doesn't apply to any item" in str(info.value.user_message)

    # On the hosted page the same rules hold for a promotion code.
    icons_code = f"ICONS{time.time_ns() % 100000}"
    env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": only_icons.id}, "code": icons_code}
    )
    page_session = env.client.v1.checkout.sessions.create(
        params=session_params(line_items=with_products, allow_promotion_codes=True)
    )
    applied = apply_code(env, page_session.url, icons_code)
    assert applied.status_code == 200 and "$26.99" in applied.text
    only_ebook = env.client.v1.checkout.sessions.create(
        params=session_params(line_items=with_products[:1], allow_promotion_codes=True)
    )
    refused = apply_code(env, only_ebook.url, icons_code)
    assert "This code doesn't apply to any item in your order." in parse(refused.text).alerts
    assert env.client.v1.checkout.sessions.retrieve(only_ebook.id).amount_total == 1999


def test_coupon_for_an_unknown_product_is_refused(env: Env) -> None:
    known = env.client.v1.products.create(params={"name": "Known"})
    coupon_id = f"ghost-{time.time_ns()}"
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.coupons.create(
            params={
                "id": coupon_id,
                "percent_off": 10,
                "applies_to": {"products": [known.id, "prod_doesnotexist"]},
            }
        )
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"
    assert info.value.param == "applies_to[products]"
    assert info.value.user_message == "No such product: 'prod_doesnotexist'"
    with pytest.raises(stripe.InvalidRequestError) as missing:  # nothing was created
        env.client.v1.coupons.retrieve(coupon_id)
    assert missing.value.http_status == 404
    # A shop's own product id is not a Stripe Product id either.
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.coupons.create(params={"percent_off": 10, "applies_to": {"products": ["42"]}})
    assert info.value.param == "applies_to[products]"


# -- refunds ----------------------------------------------------------------------


def paid_session(env: Env, card: str = GOOD_CARD) -> stripe.checkout.Session:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    assert pay_on_page(env.http, session.url, card).status_code == 303
    return env.client.v1.checkout.sessions.retrieve(session.id)


def test_partial_and_full_refunds(env: Env) -> None:
    session = paid_session(env)
    partial = env.client.v1.refunds.create(
        params={
            "payment_intent": session.payment_intent,
            "amount": 999,
            "reason": "requested_by_customer",
            "metadata": {"why": "test"},
        }
    )
    assert partial.object == "refund" and partial.id.startswith("re_test_")
    assert partial.status == "succeeded" and partial.amount == 999
    assert env.client.v1.refunds.retrieve(partial.id).metadata["why"] == "test"
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.refunds.create(params={"payment_intent": session.payment_intent, "amount": 5000})
    assert info.value.param == "amount"
    charge_id = env.client.v1.payment_intents.retrieve(session.payment_intent).latest_charge
    rest = env.client.v1.refunds.create(params={"charge": charge_id})
    assert rest.amount == 2000
    charge = env.client.v1.charges.retrieve(charge_id)
    assert charge.amount_refunded == 2999 and charge.refunded is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.refunds.create(params={"charge": charge_id})
    assert info.value.code == "charge_already_refunded"

    assert env.runtime.flush_webhooks(10)
    refunded = env.receiver.of(charge_id, "charge.refunded")
    assert sorted(
        (e["data"]["object"]["amount_refunded"], e["data"]["object"]["refunded"]) for e in refunded
    ) == [(999, False), (2999, True)]
    assert env.receiver.of(partial.id, "refund.created") and env.receiver.of(rest.id, "refund.created")


def test_refund_needs_a_paid_payment(env: Env) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.refunds.create(params={"payment_intent": "pi_test_missing"})
    session = env.client.v1.checkout.sessions.create(params=session_params())
    pay_on_page(env.http, session.url, "4000000000000002")  # declined: a PaymentIntent without money
    pi = env.client.v1.checkout.sessions.retrieve(session.id).payment_intent
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.refunds.create(params={"payment_intent": pi})


# -- events -------------------------------------------------------------------------


def test_events_list_filters_and_paginates(env: Env) -> None:
    for _ in range(3):
        paid_session(env)
    page = env.client.v1.events.list(params={"type": "checkout.session.completed", "limit": 2})
    assert page.object == "list" and page.url == "/v1/events" and len(page.data) == 2
    assert page.has_more is True
    assert all(e.type == "checkout.session.completed" for e in page.data)
    assert page.data[0].created >= page.data[1].created
    nxt = env.client.v1.events.list(
        params={"type": "checkout.session.completed", "limit": 2, "starting_after": page.data[-1].id}
    )
    assert not {e.id for e in nxt.data} & {e.id for e in page.data}
    wildcard = env.client.v1.events.list(params={"type": "checkout.session.*", "limit": 100})
    assert {e.type for e in wildcard.data} <= {"checkout.session.completed", "checkout.session.expired"}
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.events.retrieve("evt_missing")


# -- concurrency and restrictions ---------------------------------------------------


def local_pay(env: Env, session_id: str, **fields: str) -> httpx.Response:
    return env.http.post(
        f"{env.api_base}/_local/checkout/{session_id}/pay",
        headers=bearer(),
        data=fields,
    )


def test_concurrent_payments_never_over_redeem_a_code(env: Env) -> None:
    coupon = env.client.v1.coupons.create(params={"amount_off": 100, "currency": "usd"})
    code = f"RUSH{time.time_ns() % 100000}"
    promo = env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": code, "max_redemptions": 3}
    )
    sessions = [
        env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
        for _ in range(12)
    ]
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda s: local_pay(env, s.id, promotion_code=code), sessions))
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["promotion_invalid"] * 9 + ["succeeded"] * 3
    assert env.client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 3
    paid = [r.json()["session"] for r in responses if r.status_code == 200]
    assert all(s["amount_total"] == 2899 for s in paid)
    refused = next(r.json() for r in responses if r.status_code == 400)
    assert "redemption limit" in refused["message"]


def test_first_time_and_minimum_amount_restrictions(env: Env) -> None:
    coupon = env.client.v1.coupons.create(params={"percent_off": 10})
    first_code = f"FIRST{time.time_ns() % 100000}"
    env.client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": first_code,
            "restrictions": {"first_time_transaction": True},
        }
    )
    email = f"returning{time.time_ns()}@example.com"
    earlier = env.client.v1.checkout.sessions.create(params=session_params())
    assert local_pay(env, earlier.id, email=email).status_code == 200
    later = env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    refused = local_pay(env, later.id, email=email, promotion_code=first_code)
    assert refused.status_code == 400
    assert "first-time customers" in refused.json()["message"]
    assert refused.json()["session"]["amount_total"] == 2999  # the discount was removed
    newcomer = env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    ok = local_pay(env, newcomer.id, email=f"new{time.time_ns()}@example.com", promotion_code=first_code)
    assert ok.status_code == 200 and ok.json()["session"]["amount_total"] == 2699

    big_code = f"BIG{time.time_ns() % 100000}"
    env.client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": big_code,
            "restrictions": {"minimum_amount": 5000, "minimum_amount_currency": "usd"},
        }
    )
    small = env.client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes=True))
    page = apply_code(env, small.url, big_code)
    assert "This code requires a minimum order of $50.00." in parse(page.text).alerts


def test_refund_test_cards_pending_and_failing(env: Env) -> None:
    pending = paid_session(env, "4000000000007726")
    refund = env.client.v1.refunds.create(params={"payment_intent": pending.payment_intent})
    assert refund.status == "pending"
    wait_for(lambda: env.client.v1.refunds.retrieve(refund.id).status == "succeeded", timeout=8)

    failing = paid_session(env, "4000000000005126")
    refund = env.client.v1.refunds.create(params={"payment_intent": failing.payment_intent})
    assert refund.status == "succeeded"
    wait_for(lambda: env.client.v1.refunds.retrieve(refund.id).status == "failed", timeout=8)
    charge = env.client.v1.charges.retrieve(refund.charge)
    assert charge.amount_refunded == 0 and charge.refunded is False
    assert env.runtime.flush_webhooks(10)
    assert env.receiver.of(refund.id, "refund.failed")


def test_fully_discounted_session_needs_no_payment(env: Env) -> None:
    free = env.client.v1.coupons.create(params={"percent_off": 100})
    session = env.client.v1.checkout.sessions.create(params=session_params(discounts=[{"coupon": free.id}]))
    assert session.amount_total == 0 and session.total_details.amount_discount == 2999
    response = local_pay(env, session.id, card_number="not a card")
    assert response.status_code == 200
    done = env.client.v1.checkout.sessions.retrieve(session.id)
    assert done.status == "complete" and done.payment_status == "no_payment_required"
    assert done.payment_intent is None
    assert env.runtime.flush_webhooks(10)
    assert env.receiver.of(session.id, "checkout.session.completed")
