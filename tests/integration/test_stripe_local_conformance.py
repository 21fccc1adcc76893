"""Every object the embedded Stripe serves carries exactly the fields of Stripe's example object
for its type (tests/fixtures/stripe_object_fields.py), and the routes the SDK exposes for the
resources served answer as Stripe does (lists, updates, deletes, customers, payment methods)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from tests.fixtures.stripe_object_fields import OBJECT_FIELDS
from tests.integration import test_stripe_local
from tests.integration.test_stripe_local import Env, session_params, wait_for
from tests.stripe_keys import bearer

env = test_stripe_local.env  # the module-scoped embedded Stripe (a fixture of its own here)

pytestmark = pytest.mark.timeout(60)

DISPUTE_CARD = "4000000000000259"


def fields_of(obj: Any) -> set[str]:
    return set(obj.to_dict() if isinstance(obj, stripe.StripeObject) else obj)


def paid_session(env: Env, card: str = "4242424242424242", **overrides: Any) -> stripe.checkout.Session:
    session = env.client.v1.checkout.sessions.create(params=session_params(**overrides))
    response = env.http.post(
        f"{env.api_base}/_local/checkout/{session.id}/pay",
        headers=bearer(),
        data={"card_number": card, "email": overrides.get("customer_email") or "buyer@example.com"},
    )
    assert response.status_code == 200, response.text
    return env.client.v1.checkout.sessions.retrieve(session.id)


# -- conformance, one test per type ---------------------------------------------


def test_checkout_session_fields(env: Env) -> None:
    open_session = env.client.v1.checkout.sessions.create(params=session_params())
    assert fields_of(open_session) == OBJECT_FIELDS["checkout.session"]
    assert open_session.automatic_tax.enabled is False and open_session.custom_fields == []
    assert open_session.shipping_options == [] and open_session.custom_text.submit is None
    assert fields_of(paid_session(env)) == OBJECT_FIELDS["checkout.session"]


def test_line_item_fields(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    item = env.client.v1.checkout.sessions.line_items.list(session.id).data[0]
    assert fields_of(item) == OBJECT_FIELDS["item"] and item.adjustable_quantity is None


def test_payment_intent_fields(env: Env) -> None:
    session = paid_session(env)
    intent = env.client.v1.payment_intents.retrieve(str(session.payment_intent))
    assert fields_of(intent) == OBJECT_FIELDS["payment_intent"]
    assert intent.statement_descriptor is None and intent.setup_future_usage is None


def test_charge_fields(env: Env) -> None:
    session = paid_session(env)
    intent = env.client.v1.payment_intents.retrieve(str(session.payment_intent))
    charge = env.client.v1.charges.retrieve(str(intent.latest_charge))
    # ``refunds`` is includable (sent on expand only since API 2022-11-15); ``transfer`` is
    # sent on destination charges only: neither is sent here.
    assert fields_of(charge) == OBJECT_FIELDS["charge"] - {"refunds"}
    assert charge.receipt_number is None and charge.fraud_details.to_dict() == {}
    env.client.v1.refunds.create(params={"charge": charge.id, "amount": 100})
    expanded = env.client.v1.charges.retrieve(charge.id, params={"expand": ["refunds"]})
    assert fields_of(expanded) == OBJECT_FIELDS["charge"]
    assert [r.amount for r in expanded.refunds.data] == [100]


def test_refund_fields(env: Env) -> None:
    session = paid_session(env)
    refund = env.client.v1.refunds.create(params={"payment_intent": str(session.payment_intent)})
    # ``failure_reason`` is sent on failed refunds only, never as null.
    assert fields_of(refund) == OBJECT_FIELDS["refund"]
    assert refund.payment_method and refund.payment_method.startswith("pm_")


def test_coupon_and_promotion_code_fields(env: Env) -> None:
    coupon = env.client.v1.coupons.create(params={"percent_off": 15})
    # ``applies_to`` is includable: left out (never null) for a coupon of every product,
    # sent when expanded.
    assert fields_of(coupon) == OBJECT_FIELDS["coupon"]
    expanded = env.client.v1.coupons.retrieve(coupon.id, params={"expand": ["applies_to"]})
    assert fields_of(expanded) == OBJECT_FIELDS["coupon"] | {"applies_to"} and expanded.applies_to is None
    code = env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": f"C{time.time_ns()}"}
    )
    assert fields_of(code) == OBJECT_FIELDS["promotion_code"]


def test_event_fields(env: Env) -> None:
    event = env.client.v1.events.list(params={"limit": 1}).data[0]
    assert fields_of(event) == OBJECT_FIELDS["event"]


def test_dispute_fields(env: Env) -> None:
    session = paid_session(env, DISPUTE_CARD)
    intent = env.client.v1.payment_intents.retrieve(str(session.payment_intent))
    event = env.client.v1.events.list(params={"type": "charge.dispute.created", "limit": 100})
    [created] = [e for e in event.data if e.data.object["charge"] == intent.latest_charge]
    dispute = env.client.v1.disputes.retrieve(created.data.object["id"])
    assert fields_of(dispute) == OBJECT_FIELDS["dispute"]
    assert dispute.payment_method_details.type == "card"


def test_dispute_updated_carries_previous_attributes(env: Env) -> None:
    session = paid_session(env, DISPUTE_CARD)
    intent = env.client.v1.payment_intents.retrieve(str(session.payment_intent))
    events = env.client.v1.events.list(params={"type": "charge.dispute.created", "limit": 100})
    [created] = [e for e in events.data if e.data.object["charge"] == intent.latest_charge]
    dispute_id = created.data.object["id"]
    env.client.v1.disputes.update(dispute_id, params={"evidence": {"uncategorized_text": "receipt"}})
    event = wait_for(lambda: env.receiver.of(dispute_id, "charge.dispute.updated"))[-1]
    previous = event["data"]["previous_attributes"]
    assert previous["status"] == "needs_response"
    assert previous["evidence"]["uncategorized_text"] is None


def test_payment_method_fields(env: Env) -> None:
    session = paid_session(env)
    intent = env.client.v1.payment_intents.retrieve(str(session.payment_intent))
    method = env.client.v1.payment_methods.retrieve(str(intent.payment_method))
    assert fields_of(method) == OBJECT_FIELDS["payment_method"]
    assert method.card.last4 == "4242" and method.billing_details.email == "buyer@example.com"
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.payment_methods.retrieve("pm_missing")
    assert info.value.http_status == 404


def test_customer_fields(env: Env) -> None:
    customer = env.client.v1.customers.create(params={"email": "ada@example.com", "name": "Ada"})
    assert fields_of(customer) == OBJECT_FIELDS["customer"]
    deleted = env.client.v1.customers.delete(customer.id)
    assert fields_of(deleted) == OBJECT_FIELDS["deleted_customer"] and deleted.deleted is True


def test_errors_leave_out_empty_fields(env: Env) -> None:
    missing = env.http.get(f"{env.api_base}/v1/coupons/nope", headers=bearer()).json()["error"]
    assert missing["code"] == "resource_missing" and missing["param"] == "id"
    assert "decline_code" not in missing
    no_param = env.http.get(f"{env.api_base}/v1/subscriptions", headers=bearer()).json()["error"]
    assert set(no_param) == {"type", "message", "request_log_url"}


# -- routes -------------------------------------------------------------------------


def test_list_and_update_refunds(env: Env) -> None:
    session = paid_session(env)
    pi_id = str(session.payment_intent)
    first = env.client.v1.refunds.create(params={"payment_intent": pi_id, "amount": 100})
    second = env.client.v1.refunds.create(params={"payment_intent": pi_id, "amount": 200})
    by_pi = env.client.v1.refunds.list(params={"payment_intent": pi_id})
    assert [r.id for r in by_pi.data] == [second.id, first.id]
    by_charge = env.client.v1.refunds.list(params={"charge": first.charge, "limit": 1})
    assert [r.id for r in by_charge.data] == [second.id] and by_charge.has_more is True
    updated = env.client.v1.refunds.update(first.id, params={"metadata": {"why": "late"}})
    assert updated.metadata.to_dict() == {"why": "late"}
    event = wait_for(lambda: env.receiver.of(first.id, "refund.updated"))[-1]
    assert event["data"]["previous_attributes"] == {"metadata": {"why": None}}
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.refunds.update(first.id, params={"amount": 5})  # type: ignore[typeddict-unknown-key]
    assert info.value.param == "amount"


def test_refund_expand_paths(env: Env) -> None:
    session = paid_session(env)
    refund = env.client.v1.refunds.create(
        params={"payment_intent": str(session.payment_intent), "expand": ["charge"]}
    )
    assert isinstance(refund.charge, stripe.Charge) and refund.charge.amount_refunded == refund.amount
    again = env.client.v1.refunds.retrieve(refund.id, params={"expand": ["payment_intent", "charge"]})
    assert isinstance(again.payment_intent, stripe.PaymentIntent) and again.transfer_reversal is None
    listed = env.client.v1.refunds.list(params={"charge": refund.charge.id, "expand": ["data.charge"]})
    assert isinstance(listed.data[0].charge, stripe.Charge)
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.refunds.retrieve(refund.id, params={"expand": ["customer"]})
    assert "This property cannot be expanded (customer)" in str(info.value.user_message)


def test_list_update_and_delete_coupons(env: Env) -> None:
    coupon = env.client.v1.coupons.create(params={"amount_off": 500, "currency": "usd", "name": "Five"})
    assert coupon.id in [c.id for c in env.client.v1.coupons.list(params={"limit": 100}).data]
    updated = env.client.v1.coupons.update(coupon.id, params={"name": "Five off", "metadata": {"k": "v"}})
    assert updated.name == "Five off" and updated.metadata.to_dict() == {"k": "v"}
    event = wait_for(lambda: env.receiver.of(coupon.id, "coupon.updated"))[-1]
    assert event["data"]["previous_attributes"] == {"name": "Five", "metadata": {"k": None}}
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.coupons.update(coupon.id, params={"amount_off": 1})  # type: ignore[typeddict-unknown-key]
    assert info.value.param == "amount_off"
    code = env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": f"D{time.time_ns()}"}
    )
    deleted = env.client.v1.coupons.delete(coupon.id)
    assert fields_of(deleted) == OBJECT_FIELDS["deleted_coupon"] and deleted.deleted is True
    assert wait_for(lambda: env.receiver.of(coupon.id, "coupon.deleted"))
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.coupons.retrieve(coupon.id)
    assert info.value.http_status == 404
    assert coupon.id not in [c.id for c in env.client.v1.coupons.list(params={"limit": 100}).data]
    # A code of a deleted coupon no longer discounts.
    session = env.client.v1.checkout.sessions.create(params=session_params())
    applied = env.runtime.checkout.apply_promotion_code(session.id, code.code)
    assert not applied.ok


def test_promotion_code_updated_carries_previous_attributes(env: Env) -> None:
    coupon = env.client.v1.coupons.create(params={"percent_off": 5})
    code = env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": f"P{time.time_ns()}"}
    )
    env.client.v1.promotion_codes.update(code.id, params={"active": False})
    event = wait_for(lambda: env.receiver.of(code.id, "promotion_code.updated"))[-1]
    assert event["data"]["previous_attributes"] == {"active": True}


def test_list_payment_intents_and_charges_of_the_platform(env: Env) -> None:
    since = int(time.time()) - 1
    session = paid_session(env)
    intents = env.client.v1.payment_intents.list(params={"created": {"gte": since}, "limit": 100})
    assert str(session.payment_intent) in [p.id for p in intents.data]
    intent = env.client.v1.payment_intents.retrieve(str(session.payment_intent))
    charges = env.client.v1.charges.list(params={"payment_intent": intent.id})
    assert [c.id for c in charges.data] == [intent.latest_charge]
    later = env.client.v1.charges.list(params={"created": {"gt": int(time.time()) + 3600}})
    assert later.data == []


def test_update_session_metadata(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    updated = env.client.v1.checkout.sessions.update(
        session.id, params={"metadata": {"order_id": "", "n": "1"}}
    )
    assert updated.metadata.to_dict() == {"n": "1"}
    assert env.client.v1.checkout.sessions.retrieve(session.id).metadata.to_dict() == {"n": "1"}


def test_customers(env: Env) -> None:
    email = f"c{time.time_ns()}@example.com"
    customer = env.client.v1.customers.create(
        params={"email": email, "name": "Grace", "metadata": {"plan": "a"}}
    )
    assert customer.id.startswith("cus_") and customer.email == email and customer.name == "Grace"
    assert env.client.v1.customers.retrieve(customer.id).metadata.to_dict() == {"plan": "a"}
    assert [c.id for c in env.client.v1.customers.list(params={"email": email}).data] == [customer.id]
    env.client.v1.customers.update(customer.id, params={"name": "Grace H."})
    event = wait_for(lambda: env.receiver.of(customer.id, "customer.updated"))[-1]
    assert event["data"]["previous_attributes"] == {"name": "Grace"}
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.customers.create(params={"email": "not-an-email"})
    assert info.value.param == "email"
    env.client.v1.customers.delete(customer.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.customers.retrieve(customer.id)
    assert info.value.http_status == 404


# -- list filters --------------------------------------------------------------------


def test_session_list_filters(env: Env) -> None:
    email = f"s{time.time_ns()}@example.com"
    since = int(time.time()) - 1
    paid = paid_session(env, customer_email=email)
    other = env.client.v1.checkout.sessions.create(params=session_params())
    by_email = env.client.v1.checkout.sessions.list(params={"customer_details": {"email": email}})
    assert [s.id for s in by_email.data] == [paid.id]
    complete = env.client.v1.checkout.sessions.list(
        params={"status": "complete", "created": {"gte": since}, "limit": 100}
    )
    assert paid.id in [s.id for s in complete.data] and other.id not in [s.id for s in complete.data]
    by_pi = env.client.v1.checkout.sessions.list(params={"payment_intent": str(paid.payment_intent)})
    assert [s.id for s in by_pi.data] == [paid.id]
    future = env.client.v1.checkout.sessions.list(params={"created": {"gt": int(time.time()) + 3600}})
    assert future.data == []
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.list(params={"status": "paid"})  # type: ignore[typeddict-item]
    assert info.value.param == "status"


def test_event_list_delivery_success(env: Env) -> None:
    product = env.client.v1.products.create(params={"name": "Delivered"})
    assert env.runtime.flush_webhooks(10)
    delivered = env.client.v1.events.list(params={"delivery_success": True, "limit": 100})
    assert any(e.data.object["id"] == product.id for e in delivered.data)
    pending = env.client.v1.events.list(params={"delivery_success": False, "limit": 100})
    assert all(e.data.object.get("id") != product.id for e in pending.data)
