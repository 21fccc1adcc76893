"""Stripe Connect in the embedded Stripe, driven by the real stripe SDK over HTTP.

Express accounts and their hosted onboarding, destination charges in Checkout
(transfer, application fee, balance transactions), refunds that reverse the
transfer and the fee, disputes, the test clock (pending -> available ->
payout.created -> payout.paid), Connect webhooks signed with their own secret,
and Stripe-Account scoping. Each test makes its own accounts; the platform's
numbers are checked through the balance transactions of each charge.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from quantoxbay.stripe_local import StripeLocal, StripeLocalConfig, create_stripe_local_app
from tests.fixtures.stripe_object_fields import CONNECT_OBJECT_FIELDS
from tests.integration.test_stripe_local import (
    Receiver,
    ServerThread,
    form_token,
    parse,
    product_line_item,
    wait_for,
)
from tests.stripe_keys import bearer, stripe_local_key
from tests.support.servers import free_port

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec_test_platform"
CONNECT_SECRET = "whsec_test_connect"
DAY = 86_400


@dataclass
class Env:
    api_base: str
    client: stripe.StripeClient
    runtime: StripeLocal
    platform: Receiver
    connect: Receiver
    http: httpx.Client


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    platform, connect = Receiver(SECRET), Receiver(CONNECT_SECRET)
    config = StripeLocalConfig(
        db_path=tmp_path_factory.mktemp("stripe_local_connect") / "stripe_local.db",
        secret_key=stripe_local_key(),
        public_base_url=f"{base}/stripe-local",
        webhook_url=f"{base}/api/stripe/webhook",
        webhook_secret=SECRET,
        webhook_enabled_events=("*",),
        connect_webhook_url=f"{base}/api/stripe/connect-webhook",
        connect_webhook_secret=CONNECT_SECRET,
        webhook_backoff_base_seconds=0.1,
        webhook_backoff_max_seconds=5,
        webhook_max_attempts=8,
        sweep_interval_seconds=0.2,
        poll_interval_seconds=0.05,
        rate_limit_per_second=1000,
    )
    stripe_app = create_stripe_local_app(config)
    runtime: StripeLocal = stripe_app.state.stripe_local

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):  # type: ignore[no-untyped-def]
        runtime.start()
        yield
        runtime.dispatcher.stop()

    app = Starlette(
        routes=[
            Mount("/stripe-local", stripe_app),
            Route("/api/stripe/webhook", platform.endpoint, methods=["POST"]),
            Route("/api/stripe/connect-webhook", connect.endpoint, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    server = ServerThread(app, port).start()
    client = stripe.StripeClient(stripe_local_key(), base_addresses={"api": f"{base}/stripe-local"})
    with httpx.Client(timeout=10) as http:
        yield Env(f"{base}/stripe-local", client, runtime, platform, connect, http)
    server.stop()
    runtime.stop()


# -- helpers ------------------------------------------------------------------


def new_account(env: Env, **params: Any) -> stripe.Account:
    body: dict[str, Any] = {
        "type": "express",
        "country": "US",
        "email": "seller@example.com",
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"seller_id": "7"},
    }
    body.update(params)
    return env.client.v1.accounts.create(params=body)  # type: ignore[arg-type]


def onboard(env: Env, account_id: str, **fields: str) -> dict[str, Any]:
    response = env.http.post(
        f"{env.api_base}/_local/accounts/{account_id}/onboard", headers=bearer(), data=fields
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def onboarded(env: Env, **fields: str) -> stripe.Account:
    account = new_account(env)
    onboard(env, account.id, **fields)
    return account


def destination_session(env: Env, destination: str, fee: int, unit_amount: int = 10_000, **extra: Any) -> Any:
    product = env.client.v1.products.create(params={"name": "Course"})
    pi_data: dict[str, Any] = {
        "application_fee_amount": fee,
        "transfer_data": {"destination": destination},
        "metadata": {"order_id": "1"},
    }
    pi_data.update(extra.pop("payment_intent_data", {}))
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [product_line_item(product.id, unit_amount)],
        "success_url": "http://shop.test/ok",
        "cancel_url": "http://shop.test/cancel",
        "payment_intent_data": pi_data,
    }
    params.update(extra)
    return env.client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]


def pay(env: Env, session_id: str, card: str = "4242424242424242", **fields: str) -> dict[str, Any]:
    response = env.http.post(
        f"{env.api_base}/_local/checkout/{session_id}/pay",
        headers=bearer(),
        data={"card_number": card, **fields},
    )
    return {"status": response.status_code, **response.json()}


def paid_charge(env: Env, session_id: str) -> stripe.Charge:
    session = env.client.v1.checkout.sessions.retrieve(session_id, params={"expand": ["payment_intent"]})
    return env.client.v1.charges.retrieve(session.payment_intent.latest_charge)


def as_account(account_id: str) -> dict[str, Any]:
    return {"stripe_account": account_id}


def balance_of(env: Env, account_id: str) -> tuple[int, int]:
    balance = env.client.v1.balance.retrieve(options=as_account(account_id))  # type: ignore[arg-type]
    return balance.available[0].amount, balance.pending[0].amount


def advance(env: Env, seconds: int) -> dict[str, Any]:
    response = env.http.post(
        f"{env.api_base}/_local/clock/advance", headers=bearer(), data={"seconds": seconds}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def fields_of(obj: Any) -> set[str]:
    return set(obj.to_dict() if hasattr(obj, "to_dict") else obj)


# -- accounts -------------------------------------------------------------------


def test_create_account_shape_and_requirements(env: Env) -> None:
    account = new_account(env)
    assert account.id.startswith("acct_") and account.object == "account"
    assert account.type == "express"
    assert account.controller.stripe_dashboard.type == "express"
    assert account.details_submitted is False
    assert account.charges_enabled is False and account.payouts_enabled is False
    assert account.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}
    assert "external_account" in account.requirements.currently_due
    assert "tos_acceptance.date" in account.requirements.currently_due
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert account.metadata.to_dict() == {"seller_id": "7"}
    assert account.settings.payouts.schedule.to_dict() == {"delay_days": 2, "interval": "daily"}
    assert fields_of(account) == CONNECT_OBJECT_FIELDS["account"]

    same = env.client.v1.accounts.create(
        params={
            "controller": {
                "stripe_dashboard": {"type": "express"},
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
            },
            "capabilities": {"transfers": {"requested": True}},
        }
    )
    assert same.type == "express" and same.capabilities.to_dict() == {"transfers": "inactive"}


def test_account_errors(env: Env) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        env.client.v1.accounts.retrieve("acct_nope")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as no_transfers:
        env.client.v1.accounts.create(params={"type": "express"})
    assert no_transfers.value.param == "capabilities[transfers]"
    with pytest.raises(stripe.InvalidRequestError) as both:
        env.client.v1.accounts.create(
            params={"type": "express", "controller": {"stripe_dashboard": {"type": "express"}}}
        )
    assert both.value.param == "controller"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        env.client.v1.accounts.create(params={"type": "express", "colour": "red"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.code == "parameter_unknown"


def test_account_idempotent_create(env: Env) -> None:
    params: dict[str, Any] = {"type": "express", "capabilities": {"transfers": {"requested": True}}}
    first = env.client.v1.accounts.create(params=params, options={"idempotency_key": "acct-once"})  # type: ignore[arg-type]
    again = env.client.v1.accounts.create(params=params, options={"idempotency_key": "acct-once"})  # type: ignore[arg-type]
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        env.client.v1.accounts.create(
            params={**params, "email": "x@example.com"}, options={"idempotency_key": "acct-once"}
        )


def test_update_list_delete_account(env: Env) -> None:
    account = new_account(env)
    updated = env.client.v1.accounts.update(
        account.id,
        params={
            "metadata": {"tier": "gold", "seller_id": ""},
            "email": "new@example.com",
            "settings": {"payouts": {"schedule": {"interval": "weekly", "weekly_anchor": "friday"}}},
        },
    )
    assert updated.metadata.to_dict() == {"tier": "gold"}
    assert updated.email == "new@example.com"
    assert updated.settings.payouts.schedule.to_dict() == {
        "delay_days": 2,
        "interval": "weekly",
        "weekly_anchor": "friday",
    }
    listed = env.client.v1.accounts.list(params={"limit": 100})
    assert account.id in [a.id for a in listed.data]
    deleted = env.client.v1.accounts.delete(account.id)
    assert deleted.deleted is True and deleted.id == account.id
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.accounts.retrieve(account.id)


# -- onboarding ------------------------------------------------------------------


def onboarding_link(env: Env, account_id: str) -> stripe.AccountLink:
    return env.client.v1.account_links.create(
        params={
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": "http://shop.test/sell/refresh",
            "return_url": "http://shop.test/sell/return",
        }
    )


ONBOARDING_FORM = {
    "first_name": "Jenny",
    "last_name": "Rosen",
    "email": "jenny@example.com",
    "phone": "000 000 0000",
    "dob": "1901-01-01",
    "address_line1": "address_full_match",
    "city": "San Francisco",
    "state": "CA",
    "postal_code": "94111",
    "id_number": "0000",
    "business_url": "https://accessible.stripe.com",
    "routing_number": "110000000",
    "account_number": "000123456789",
}


def test_onboarding_through_the_hosted_form(env: Env) -> None:
    account = new_account(env)
    link = onboarding_link(env, account.id)
    assert fields_of(link) == CONNECT_OBJECT_FIELDS["account_link"]
    assert link.url.startswith(f"{env.api_base}/connect/onboarding/")
    assert 295 <= link.expires_at - link.created <= 300

    page = env.http.get(link.url)
    assert page.status_code == 200
    parsed = parse(page.text)
    assert "Agree and submit" in parsed.buttons
    assert {"First name", "Date of birth (YYYY-MM-DD)", "Routing number", "Account number"} <= set(
        parsed.labels
    )

    # The link is single-use: a second visit goes to refresh_url.
    again = env.http.get(link.url)
    assert again.status_code == 303 and again.headers["location"] == "http://shop.test/sell/refresh"

    token = form_token(page.text)
    bad = env.http.post(link.url, data={**ONBOARDING_FORM, "form_token": "0" * 32})
    assert bad.status_code == 403
    invalid = env.http.post(link.url, data={**ONBOARDING_FORM, "dob": "soon", "form_token": token})
    assert invalid.status_code == 400 and "YYYY-MM-DD" in invalid.text
    assert env.client.v1.accounts.retrieve(account.id).details_submitted is False

    done = env.http.post(link.url, data={**ONBOARDING_FORM, "form_token": token})
    assert done.status_code == 303 and done.headers["location"] == "http://shop.test/sell/return"
    fresh = env.client.v1.accounts.retrieve(account.id)
    assert fresh.details_submitted and fresh.charges_enabled and fresh.payouts_enabled
    assert fresh.requirements.currently_due == [] and fresh.requirements.disabled_reason is None
    assert fresh.capabilities.to_dict() == {"card_payments": "active", "transfers": "active"}
    assert fresh.external_accounts.data[0].last4 == "6789"

    # Submitted: the form cannot be posted again.
    replay = env.http.post(link.url, data={**ONBOARDING_FORM, "form_token": token})
    assert replay.status_code == 303 and replay.headers["location"] == "http://shop.test/sell/refresh"

    events = wait_for(lambda: env.connect.of(account.id, "account.updated"))
    assert events[-1]["account"] == account.id
    assert events[-1]["data"]["object"]["charges_enabled"] is True
    assert not env.platform.of(account.id, "account.updated")  # Connect events go to the Connect endpoint


def test_expired_link_redirects_to_refresh(env: Env) -> None:
    account = new_account(env)
    link = onboarding_link(env, account.id)
    advance(env, 301)
    response = env.http.get(link.url)
    assert response.status_code == 303 and response.headers["location"] == "http://shop.test/sell/refresh"


def test_magic_inputs_leave_requirements_or_disable(env: Env) -> None:
    document = new_account(env)
    result = onboard(env, document.id, id_number="111111111")
    assert result["outcome"] == "document_required"
    fresh = env.client.v1.accounts.retrieve(document.id)
    assert fresh.charges_enabled is True and fresh.payouts_enabled is False
    assert fresh.requirements.currently_due == ["individual.verification.document"]

    rejected = new_account(env)
    onboard(env, rejected.id, dob="1900-01-01")
    fresh = env.client.v1.accounts.retrieve(rejected.id)
    assert fresh.charges_enabled is False and fresh.payouts_enabled is False
    assert fresh.requirements.disabled_reason == "rejected.listed"

    # A rejected account cannot receive destination charges.
    with pytest.raises(stripe.InvalidRequestError) as refused:
        destination_session(env, rejected.id, fee=100)
    assert refused.value.code == "insufficient_capabilities_for_transfer"


def test_login_link_opens_the_express_dashboard(env: Env) -> None:
    pending = new_account(env)
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.accounts.login_links.create(pending.id)
    account = onboarded(env)
    link = env.client.v1.accounts.login_links.create(account.id)
    assert fields_of(link) == CONNECT_OBJECT_FIELDS["login_link"]
    page = env.http.get(link.url)
    assert page.status_code == 200 and "Express dashboard" in page.text


# -- destination charges ----------------------------------------------------------


def test_destination_charge_numbers(env: Env) -> None:
    account = onboarded(env)
    session = destination_session(env, account.id, fee=1_000)
    assert pay(env, session.id)["outcome"] == "succeeded"
    charge = paid_charge(env, session.id)
    assert charge.amount == 10_000
    assert charge.application_fee_amount == 1_000
    assert charge.transfer_data.destination == account.id
    assert charge.application_fee.startswith("fee_") and charge.transfer.startswith("tr_")

    txn = env.client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.type, txn.amount, txn.fee, txn.net, txn.status) == ("charge", 10_000, 320, 9_680, "pending")
    assert txn.available_on - txn.created == 2 * DAY
    assert fields_of(txn) == CONNECT_OBJECT_FIELDS["balance_transaction"]

    transfer = env.client.v1.transfers.retrieve(charge.transfer)
    assert transfer.amount == 9_000 and transfer.destination == account.id
    assert transfer.source_transaction == charge.id
    assert transfer.destination_payment.startswith("py_")
    assert fields_of(transfer) == CONNECT_OBJECT_FIELDS["transfer"]
    platform_transfer_txn = env.client.v1.balance_transactions.retrieve(transfer.balance_transaction)
    assert (platform_transfer_txn.type, platform_transfer_txn.amount) == ("transfer", -9_000)

    fee = env.client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.account, fee.amount, fee.charge) == (account.id, 1_000, charge.id)
    assert fee.originating_transaction == transfer.destination_payment
    assert fee.refunds.data == []
    assert fields_of(fee) == CONNECT_OBJECT_FIELDS["application_fee"]

    # The account sees a pending payment of the transfer amount.
    assert balance_of(env, account.id) == (0, 9_000)
    payments = env.client.v1.balance_transactions.list(options=as_account(account.id))  # type: ignore[arg-type]
    assert [(t.type, t.amount, t.status, t.source) for t in payments.data] == [
        ("payment", 9_000, "pending", transfer.destination_payment)
    ]
    charges = env.client.v1.charges.list(options=as_account(account.id))  # type: ignore[arg-type]
    assert [c.id for c in charges.data] == [transfer.destination_payment]
    assert charges.data[0].source_transfer == transfer.id

    balance = env.client.v1.balance.retrieve(options=as_account(account.id))  # type: ignore[arg-type]
    assert fields_of(balance) == CONNECT_OBJECT_FIELDS["balance"]

    transfer_created = wait_for(lambda: env.platform.of(transfer.id, "transfer.created"))[0]
    fee_created = wait_for(lambda: env.platform.of(fee.id, "application_fee.created"))[0]
    assert "account" not in transfer_created and "account" not in fee_created
    payment_event = wait_for(
        lambda: [
            e
            for e in env.runtime.store.db.find("event", "payment.created")
            if e.data["data"]["object"]["id"] == transfer.destination_payment
        ]
    )[0]
    assert payment_event.data["account"] == account.id


def test_destination_charge_validation(env: Env) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        destination_session(env, "acct_missing", fee=100)
    assert missing.value.param == "payment_intent_data[transfer_data][destination]"
    unboarded = new_account(env)
    with pytest.raises(stripe.InvalidRequestError) as inactive:
        destination_session(env, unboarded.id, fee=100)
    assert "transfers" in str(inactive.value.user_message)
    account = onboarded(env)
    with pytest.raises(stripe.InvalidRequestError) as too_big:
        destination_session(env, account.id, fee=10_001)
    assert too_big.value.param == "payment_intent_data[application_fee_amount]"
    product = env.client.v1.products.create(params={"name": "Solo"})
    with pytest.raises(stripe.InvalidRequestError) as fee_alone:
        env.client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [product_line_item(product.id)],  # type: ignore[list-item]
                "success_url": "http://shop.test/ok",
                "payment_intent_data": {"application_fee_amount": 100},
            }
        )
    assert fee_alone.value.param == "payment_intent_data[application_fee_amount]"


def test_discount_below_the_fee_refuses_the_payment(env: Env) -> None:
    account = onboarded(env)
    coupon = env.client.v1.coupons.create(params={"percent_off": 90, "duration": "once"})
    promo = env.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": f"BIG{int(time.time() * 1000)}"}
    )
    session = destination_session(env, account.id, fee=5_000, allow_promotion_codes=True)
    result = pay(env, session.id, promotion_code=promo.code)
    assert result["status"] == 400 and "application fee" in result["message"]
    assert env.client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_available_at_once_card_and_payouts_with_the_clock(env: Env) -> None:
    account = onboarded(env)
    session = destination_session(env, account.id, fee=500, unit_amount=5_000)
    assert pay(env, session.id, card="4000000000000077")["outcome"] == "succeeded"
    # 0077 makes the funds available at once; the first automatic payout comes a day after the
    # account opened (then daily), as Stripe schedules it.
    assert balance_of(env, account.id) == (4_500, 0)
    advance(env, 1)
    assert env.client.v1.payouts.list(options=as_account(account.id)).data == []  # type: ignore[arg-type]
    advance(env, DAY)
    payouts = env.client.v1.payouts.list(options=as_account(account.id))  # type: ignore[arg-type]
    assert len(payouts.data) == 1
    payout = payouts.data[0]
    assert (payout.amount, payout.status, payout.automatic) == (4_500, "in_transit", True)
    assert fields_of(payout) == CONNECT_OBJECT_FIELDS["payout"]
    assert balance_of(env, account.id) == (0, 0)
    in_payout = env.client.v1.balance_transactions.list(
        params={"payout": payout.id},
        options=as_account(account.id),  # type: ignore[arg-type]
    )
    assert sorted(t.type for t in in_payout.data) == ["payment", "payout"]

    advance(env, DAY)
    paid = env.client.v1.payouts.retrieve(payout.id, options=as_account(account.id))  # type: ignore[arg-type]
    assert paid.status == "paid"
    created = wait_for(lambda: env.connect.of(payout.id, "payout.created"))[0]
    done = wait_for(lambda: env.connect.of(payout.id, "payout.paid"))[0]
    assert created["account"] == done["account"] == account.id
    assert not env.platform.of(payout.id)


def test_pending_funds_become_available_then_paid_out(env: Env) -> None:
    account = onboarded(env)
    session = destination_session(env, account.id, fee=1_000)
    pay(env, session.id)
    assert balance_of(env, account.id) == (0, 9_000)
    advance(env, DAY)
    assert balance_of(env, account.id) == (0, 9_000)
    advance(env, DAY + 1)
    # Available after two days, and paid out at once on the daily schedule.
    payouts = env.client.v1.payouts.list(options=as_account(account.id))  # type: ignore[arg-type]
    assert [p.amount for p in payouts.data] == [9_000]
    available_events = wait_for(
        lambda: [
            e for e in env.connect.events if e["type"] == "balance.available" and e["account"] == account.id
        ]
    )
    assert available_events[0]["data"]["object"]["available"][0]["amount"] == 9_000
    advance(env, DAY)
    assert env.client.v1.payouts.retrieve(payouts.data[0].id, options=as_account(account.id)).status == "paid"  # type: ignore[arg-type]


def test_failing_bank_account_fails_the_payout(env: Env) -> None:
    account = onboarded(env, account_number="000111111116")
    session = destination_session(env, account.id, fee=0, unit_amount=2_000)
    pay(env, session.id, card="4000000000000077")
    advance(env, DAY)  # the first payout is created ...
    advance(env, DAY)  # ... and fails when it should have arrived
    payout = env.client.v1.payouts.list(options=as_account(account.id)).data[0]  # type: ignore[arg-type]
    assert (payout.status, payout.failure_code) == ("failed", "no_account")
    assert balance_of(env, account.id)[0] == 2_000  # the money is back
    event = wait_for(lambda: env.connect.of(payout.id, "payout.failed"))[0]
    assert event["account"] == account.id
    # Payouts stop until the seller gives another bank account.
    fresh = env.client.v1.accounts.retrieve(account.id)
    assert fresh.payouts_enabled is False and "external_account" in fresh.requirements.currently_due
    advance(env, DAY)
    assert len(env.client.v1.payouts.list(options=as_account(account.id)).data) == 1  # type: ignore[arg-type]


# -- refunds, reversals, fee refunds, disputes ---------------------------------------


def test_partial_refund_reverses_transfer_and_fee_proportionally(env: Env) -> None:
    account = onboarded(env)
    session = destination_session(env, account.id, fee=1_000)
    pay(env, session.id)
    charge = paid_charge(env, session.id)
    refund = env.client.v1.refunds.create(
        params={
            "charge": charge.id,
            "amount": 3_333,
            "reverse_transfer": True,
            "refund_application_fee": True,
            "expand": ["transfer_reversal"],
        }
    )
    reversal = refund.transfer_reversal
    # 3333 * 9000 / 10000 = 2999.7 -> 3000; 3333 * 1000 / 10000 = 333.3 -> 333.
    assert reversal.amount == 3_000 and reversal.source_refund == refund.id
    assert fields_of(reversal) == CONNECT_OBJECT_FIELDS["transfer_reversal"]
    fee = env.client.v1.application_fees.retrieve(charge.application_fee)
    assert fee.amount_refunded == 333 and fee.refunds.data[0].amount == 333
    assert fields_of(fee.refunds.data[0]) == CONNECT_OBJECT_FIELDS["fee_refund"]
    assert balance_of(env, account.id) == (-3_000, 9_000)

    rest = env.client.v1.refunds.create(
        params={"charge": charge.id, "reverse_transfer": True, "refund_application_fee": True}
    )
    assert rest.amount == 6_667
    transfer = env.client.v1.transfers.retrieve(charge.transfer)
    assert transfer.amount_reversed == 9_000 and transfer.reversed is True
    assert env.client.v1.application_fees.retrieve(charge.application_fee).amount_refunded == 1_000
    types = [t.type for t in env.client.v1.balance_transactions.list(options=as_account(account.id)).data]  # type: ignore[arg-type]
    assert types.count("payment_refund") == 2
    assert wait_for(lambda: env.platform.of(charge.transfer, "transfer.reversed"))


def test_the_payment_intent_expands_its_charge_and_the_charges_balance_transaction(env: Env) -> None:
    """What the shop's ledger reads back after a sale (``expand=latest_charge.balance_transaction``):
    the charge, its transfer and application fee, and Stripe's fee."""
    account = onboarded(env)
    session = destination_session(env, account.id, fee=1_000)
    pay(env, session.id)
    charge = paid_charge(env, session.id)
    intent = env.client.v1.payment_intents.retrieve(
        charge.payment_intent, {"expand": ["latest_charge.balance_transaction"]}
    )
    latest = intent.latest_charge
    assert latest.id == charge.id
    assert latest.transfer == charge.transfer and latest.application_fee == charge.application_fee
    assert latest.balance_transaction.object == "balance_transaction"
    assert latest.balance_transaction.fee == (10_000 * 29 + 500) // 1000 + 30
    plain = env.client.v1.payment_intents.retrieve(charge.payment_intent)
    assert plain.latest_charge == charge.id


def test_refund_without_transfer_is_refused_for_reverse_transfer(env: Env) -> None:
    product = env.client.v1.products.create(params={"name": "Plain"})
    session = env.client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [product_line_item(product.id)],  # type: ignore[list-item]
            "success_url": "http://shop.test/ok",
        }
    )
    pay(env, session.id)
    charge = paid_charge(env, session.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        env.client.v1.refunds.create(params={"charge": charge.id, "reverse_transfer": True})
    assert refused.value.param == "reverse_transfer"


def test_dispute_then_transfer_reversal(env: Env) -> None:
    account = onboarded(env)
    session = destination_session(env, account.id, fee=1_000)
    pay(env, session.id, card="4000000000000259")
    charge = paid_charge(env, session.id)

    def dispute_created() -> list[dict[str, Any]]:
        return [
            e
            for e in env.platform.events
            if e["type"] == "charge.dispute.created" and e["data"]["object"]["charge"] == charge.id
        ]

    dispute = wait_for(dispute_created)[0]["data"]["object"]
    debit = dispute["balance_transactions"][0]
    assert (debit["amount"], debit["fee"], debit["net"]) == (-10_000, 1_500, -11_500)

    reversal = env.client.v1.transfers.reversals.create(
        charge.transfer, params={"amount": 9_000, "metadata": {"why": "dispute"}}
    )
    assert reversal.amount == 9_000 and reversal.metadata.to_dict() == {"why": "dispute"}
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.transfers.reversals.create(charge.transfer, params={"amount": 1})
    listed = env.client.v1.transfers.reversals.list(charge.transfer)
    assert [r.id for r in listed.data] == [reversal.id]


def test_transfers_api(env: Env) -> None:
    account = onboarded(env)
    # Funds for a plain transfer: a charge with the available-at-once card.
    product = env.client.v1.products.create(params={"name": "Top-up"})
    session = env.client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [product_line_item(product.id, 50_000)],  # type: ignore[list-item]
            "success_url": "http://shop.test/ok",
        }
    )
    pay(env, session.id, card="4000000000000077")
    transfer = env.client.v1.transfers.create(
        params={
            "amount": 1_234,
            "currency": "usd",
            "destination": account.id,
            "metadata": {"order": "9"},
            "transfer_group": "order-9",
        }
    )
    assert transfer.amount == 1_234 and transfer.metadata.to_dict() == {"order": "9"}
    listed = env.client.v1.transfers.list(params={"destination": account.id})
    assert [t.id for t in listed.data] == [transfer.id]
    partial = env.client.v1.transfers.reversals.create(transfer.id, params={"amount": 234})
    assert partial.amount == 234
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        env.client.v1.transfers.reversals.create(transfer.id, params={"amount": 1_001})
    assert too_much.value.code == "amount_too_large"
    assert env.client.v1.transfers.retrieve(transfer.id).amount_reversed == 234
    with pytest.raises(stripe.InvalidRequestError) as broke:
        env.client.v1.transfers.create(params={"amount": 10**9, "currency": "usd", "destination": account.id})
    assert broke.value.code == "balance_insufficient"


def test_application_fee_refunds_api(env: Env) -> None:
    account = onboarded(env)
    session = destination_session(env, account.id, fee=1_000)
    pay(env, session.id)
    charge = paid_charge(env, session.id)
    refund = env.client.v1.application_fees.refunds.create(charge.application_fee, params={"amount": 400})
    assert refund.amount == 400 and refund.fee == charge.application_fee
    listed = env.client.v1.application_fees.refunds.list(charge.application_fee)
    assert [r.id for r in listed.data] == [refund.id]
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.application_fees.refunds.create(charge.application_fee, params={"amount": 601})
    fees = env.client.v1.application_fees.list(params={"charge": charge.id})
    assert [f.amount_refunded for f in fees.data] == [400]
    assert balance_of(env, account.id) == (400, 9_000)


# -- Stripe-Account scoping ------------------------------------------------------------


def test_stripe_account_header_scoping(env: Env) -> None:
    with pytest.raises(stripe.PermissionError) as unknown:
        env.client.v1.balance.retrieve(options=as_account("acct_unknown"))  # type: ignore[arg-type]
    assert unknown.value.json_body["error"]["code"] == "account_invalid"  # type: ignore[index]
    first, second = onboarded(env), onboarded(env)
    session = destination_session(env, first.id, fee=100, unit_amount=1_000)
    pay(env, session.id)
    first_txn = env.client.v1.balance_transactions.list(options=as_account(first.id)).data[0]  # type: ignore[arg-type]
    assert env.client.v1.balance_transactions.list(options=as_account(second.id)).data == []  # type: ignore[arg-type]
    with pytest.raises(stripe.InvalidRequestError) as foreign:
        env.client.v1.balance_transactions.retrieve(first_txn.id, options=as_account(second.id))  # type: ignore[arg-type]
    assert foreign.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.balance_transactions.retrieve(first_txn.id)  # not the platform's
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.products.create(params={"name": "x"}, options=as_account(first.id))  # type: ignore[arg-type]
    # Events: each account lists its own; the platform's list leaves them out.
    own = env.client.v1.events.list(params={"type": "account.updated"}, options=as_account(first.id))  # type: ignore[arg-type]
    assert own.data and {e.account for e in own.data} == {first.id}
    platform = env.client.v1.events.list(params={"type": "account.updated", "limit": 100})
    assert platform.data == []


def test_connect_events_are_signed_with_the_connect_secret(env: Env) -> None:
    account = onboarded(env)
    event = wait_for(lambda: env.connect.of(account.id, "account.updated"))[0]
    body, header = env.connect.raw[event["id"]]
    verified = stripe.Webhook.construct_event(body, header, CONNECT_SECRET)
    assert verified.account == account.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, SECRET)


def test_clock_advance_needs_the_key_and_expires_sessions(env: Env) -> None:
    refused = env.http.post(f"{env.api_base}/_local/clock/advance", data={"seconds": 10})
    assert refused.status_code == 401
    bad = env.http.post(f"{env.api_base}/_local/clock/advance", headers=bearer(), data={"seconds": "-5"})
    assert bad.status_code == 400
    product = env.client.v1.products.create(params={"name": "Later"})
    session = env.client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [product_line_item(product.id)],  # type: ignore[list-item]
            "success_url": "http://shop.test/ok",
        }
    )
    before = advance(env, 60)
    assert env.client.v1.checkout.sessions.retrieve(session.id).status == "open"
    after = advance(env, DAY)
    assert after["now"] - before["now"] >= DAY and after["expired"] >= 1
    assert env.client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert wait_for(lambda: env.platform.of(session.id, "checkout.session.expired"))
