"""The Stripe gateway: every call retries rate limits, keeps its idempotency key, and turns the
SDK's errors into the shop's (PaymentRefused: Stripe said no; PaymentsUnavailable: try later)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import stripe

from quantoxbay.errors import DomainError, PaymentRefused, PaymentsUnavailable
from quantoxbay.payments.gateway import StripeGateway


class FlakyResource:
    """Answers each method with the next of ``outcomes`` (an exception is raised), recording calls."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, method: str):
        def call(*args: Any) -> Any:
            self.calls.append((method, args))
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return call


def _gateway(**resources: FlakyResource) -> StripeGateway:
    v1 = SimpleNamespace(checkout=SimpleNamespace(sessions=resources.pop("sessions", None)), **resources)
    return StripeGateway(SimpleNamespace(v1=v1))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("quantoxbay.payments.retry.time.sleep", lambda _seconds: None)


def _rate_limited() -> stripe.RateLimitError:
    return stripe.RateLimitError("Too many requests", http_status=429)


def test_every_call_retries_a_rate_limit_with_the_same_idempotency_key() -> None:
    done = SimpleNamespace(id="x", url="u", status="open")
    calls = {
        "sessions": lambda g: g.create_checkout_session({"mode": "payment"}, idempotency_key="k"),
        "products": lambda g: g.create_product(
            product_id=7, name="Ebook", created_at=datetime(2026, 1, 1, tzinfo=UTC)
        ),
        "refunds": lambda g: g.create_refund(
            payment_intent="pi_1", amount_cents=100, reason="duplicate", order_id=3, refund_row_id=9
        ),
        "coupons": lambda g: g.create_coupon({"percent_off": 10}),
        "promotion_codes": lambda g: g.deactivate_promotion_code("promo_1"),
    }
    for name, call in calls.items():
        resource = FlakyResource(_rate_limited(), _rate_limited(), done)
        assert call(_gateway(**{name: resource})) in (done, None), name
        assert len(resource.calls) == 3, name
        assert len({repr(args) for _method, args in resource.calls}) == 1, f"{name}: same request each time"


def test_the_idempotency_keys_keep_their_scheme() -> None:
    refunds, products = FlakyResource({"id": "re_1"}), FlakyResource(SimpleNamespace(id="prod_1"))
    gateway = _gateway(refunds=refunds, products=products)
    gateway.create_refund(
        payment_intent="pi_1", amount_cents=100, reason="duplicate", order_id=3, refund_row_id=9
    )
    gateway.create_product(product_id=7, name="Ebook", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    [(_, (params, options))] = refunds.calls
    assert options == {"idempotency_key": "quantoxbay-refund-3-9"}
    assert params["metadata"] == {"order_id": "3", "refund_row": "9"} and params["amount"] == 100
    [(_, (params, options))] = products.calls
    assert options["idempotency_key"] == f"qb-product-7-{datetime(2026, 1, 1, tzinfo=UTC).timestamp():.6f}"


def test_stripe_errors_become_domain_errors() -> None:
    refused = stripe.InvalidRequestError("Promotion code exists.", "code", code="resource_already_exists")
    with pytest.raises(PaymentRefused) as info:
        _gateway(promotion_codes=FlakyResource(refused)).create_promotion_code({"code": "X"})
    assert isinstance(info.value, DomainError)
    assert info.value.code == "resource_already_exists" and "Promotion code exists." in info.value.detail

    for error in (
        stripe.APIConnectionError("no route to host"),
        stripe.AuthenticationError("bad key"),
        _rate_limited(),  # still limited after every retry
    ):
        resource = FlakyResource(*([error] * 5))
        with pytest.raises(PaymentsUnavailable, match="Payments are unavailable"):
            _gateway(sessions=resource).retrieve_checkout_session("cs_1")
