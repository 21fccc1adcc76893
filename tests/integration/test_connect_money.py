"""Sellers get paid: the money of a sale, refund and dispute, from checkout to reconciliation,
against the embedded Stripe over HTTP (the real SDK), with Stripe's own events fed back.

Each test gets its own embedded Stripe (a fresh SQLite file), as in tests/unit/test_promotions.py.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from quantoxbay.models import LedgerTask, LedgerTaskStatus, Order, Role, SellerAccount
from quantoxbay.services import DomainError, checkout, connect, ledger, refunds, webhook_events
from quantoxbay.services.accounts import UserPublic
from quantoxbay.settings import get_settings
from tests.factories import create_published_product, create_user
from tests.support.connect import onboard_seller
from tests.support.local_stripe import LocalStripe, serve_local_stripe

pytestmark = pytest.mark.timeout(120)

DISPUTE_CARD = "4000000000000259"


@pytest.fixture
def local_stripe(tmp_path: Path) -> Iterator[LocalStripe]:
    yield from serve_local_stripe(tmp_path)


@dataclass
class Shop:
    seller: UserPublic
    buyer: UserPublic
    account: SellerAccount


@pytest.fixture
def shop(db: Session, local_stripe: LocalStripe) -> Shop:
    seller = create_user(db, Role.SELLER)
    account = onboard_seller(db, local_stripe.gateway, seller.id, local_stripe.base)
    return Shop(seller, create_user(db, Role.BUYER), account)


def _in(db: Session) -> ledger.Transaction:
    return lambda: contextlib.nullcontext(db)


def _buy(db: Session, ls: LocalStripe, shop: Shop, product_id: int, **pay: str) -> Order:
    start = checkout.start_checkout(
        session=db,
        gateway=ls.gateway,
        settings=get_settings(),
        buyer_id=shop.buyer.id,
        product_id=product_id,
        public_url="http://shop.test",
    )
    paid = ls.pay(start.session_id, **pay)
    assert paid.status_code == 200, paid.text
    done = checkout.confirm_checkout(
        session=db, gateway=ls.gateway, stripe_session_id=start.session_id, buyer_id=shop.buyer.id
    )
    assert done is not None and done.order_id is not None, done
    order = db.get(Order, done.order_id)
    assert order is not None
    return order


def _feed(db: Session, events: list[dict[str, Any]]) -> None:
    """Deliver events to the shop as its webhook route would (recorded once by id)."""
    for event in events:
        webhook_events.process_event(session=db, event=event, raw=json.dumps(event))


def _reconciled(db: Session, ls: LocalStripe) -> ledger.ReconcileReport:
    report = ledger.reconcile(session=db, gateway=ls.gateway)
    assert report.ok, [str(d) for d in report.drifts] + report.unavailable
    return report


def test_a_sale_is_a_destination_charge_and_its_money_is_recorded(
    db: Session, storage, local_stripe: LocalStripe, shop: Shop
) -> None:
    product = create_published_product(db, storage, shop.seller, price_cents=2599)
    order = _buy(db, local_stripe, shop, product.id)  # type: ignore[arg-type]
    # 10% of 25.99 is 2.599: 260 cents to the platform, the rest to the seller.
    assert (order.total_cents, order.platform_fee_cents, order.seller_share_cents) == (2599, 260, 2339)
    assert order.application_fee_cents == 260 and order.seller_account_id == shop.account.stripe_account_id
    assert order.stripe_fee_cents is None and order.ledger_synced_at is None

    assert ledger.sync_order(gateway=local_stripe.gateway, order_id=order.id, transaction=_in(db))  # type: ignore[arg-type]
    db.refresh(order)
    # Stripe's fee comes from the charge's balance transaction (2.9% + 30 cents on the embedded one).
    assert order.stripe_fee_cents == (2599 * 29 + 500) // 1000 + 30
    assert order.stripe_charge_id and order.stripe_transfer_id and order.stripe_application_fee_id
    transfer = local_stripe.client.v1.transfers.retrieve(order.stripe_transfer_id)
    assert (transfer.amount, transfer.destination) == (2339, shop.account.stripe_account_id)
    # The seller's share waits on their account as pending until Stripe makes it available.
    balance = local_stripe.client.v1.balance.retrieve(
        options={"stripe_account": shop.account.stripe_account_id}
    )
    assert [(b.amount, b.currency) for b in balance.pending] == [(2339, "usd")]
    assert _reconciled(db, local_stripe).orders == 1


def test_refunds_take_back_the_sellers_share_and_return_the_fee_in_proportion(
    db: Session, storage, local_stripe: LocalStripe, shop: Shop
) -> None:
    product = create_published_product(db, storage, shop.seller, price_cents=2000)
    order = _buy(db, local_stripe, shop, product.id)  # type: ignore[arg-type]
    ledger.sync_order(gateway=local_stripe.gateway, order_id=order.id, transaction=_in(db))  # type: ignore[arg-type]
    db.refresh(order)
    assert (order.platform_fee_cents, order.seller_share_cents) == (200, 1800)

    refunds.refund_order(
        session=db, gateway=local_stripe.gateway, actor=shop.seller, order_id=order.id, amount_cents=500
    )  # type: ignore[arg-type]
    db.refresh(order)
    # A quarter of the charge: a quarter of the transfer back from the seller, of the fee to the buyer.
    assert (order.refunded_cents, order.transfer_reversed_cents, order.fee_refunded_cents) == (500, 450, 50)
    _reconciled(db, local_stripe)

    admin = create_user(db, Role.ADMIN)
    refunds.refund_order(
        session=db, gateway=local_stripe.gateway, actor=admin, order_id=order.id, amount_cents=None
    )  # type: ignore[arg-type]
    db.refresh(order)
    assert (order.status, order.refunded_cents) == ("refunded", 2000)
    assert (order.transfer_reversed_cents, order.fee_refunded_cents) == (1800, 200)
    # Stripe's own charge.refunded events change nothing more.
    _feed(db, local_stripe.events("charge.refunded"))
    db.refresh(order)
    assert (order.refunded_cents, order.transfer_reversed_cents) == (2000, 1800)
    _reconciled(db, local_stripe)


def test_a_code_typed_on_the_hosted_page_leaves_the_fee_on_what_was_paid(
    db: Session, storage, local_stripe: LocalStripe, shop: Shop
) -> None:
    """The fee is set when the session is made (on the full price); a code typed on Stripe's page
    lowers the total afterwards, so the seller gets the difference by a transfer of its own."""
    from quantoxbay.services import promotions

    product = create_published_product(db, storage, shop.seller, price_cents=4000)
    promotions.create_promotion(
        session=db, gateway=local_stripe.gateway, seller_id=shop.seller.id, code="HALF", percent_off=50
    )
    order = _buy(db, local_stripe, shop, product.id, promotion_code="HALF")  # type: ignore[arg-type]
    assert (order.total_cents, order.application_fee_cents, order.platform_fee_cents) == (2000, 400, 200)
    assert order.seller_share_cents == 1800
    ledger.sync_order(gateway=local_stripe.gateway, order_id=order.id, transaction=_in(db))  # type: ignore[arg-type]
    # Synced once: a second pass makes no second adjustment.
    ledger.sync_pending_orders(gateway=local_stripe.gateway, transaction=_in(db))
    db.refresh(order)
    assert order.fee_adjusted_cents == 200
    assert order.transfer_group is not None
    transfers = local_stripe.client.v1.transfers.list({"transfer_group": order.transfer_group}).data
    assert sorted(t.amount for t in transfers) == [200, 1600]  # the charge's own, and the adjustment
    assert (ledger.platform_fee_kept_cents(order), ledger.seller_net_cents(order)) == (200, 1800)
    _reconciled(db, local_stripe)

    # A refund takes back the same share of both transfers, and the fee kept stays 10% of what is left.
    refunds.refund_order(
        session=db, gateway=local_stripe.gateway, actor=shop.seller, order_id=order.id, amount_cents=500
    )  # type: ignore[arg-type]
    db.refresh(order)
    assert (order.fee_refunded_cents, order.adjustment_reversed_cents, order.transfer_reversed_cents) == (
        100,
        50,
        450,
    )
    assert (ledger.platform_fee_kept_cents(order), ledger.seller_net_cents(order)) == (150, 1350)
    _reconciled(db, local_stripe)
    refunds.refund_order(
        session=db, gateway=local_stripe.gateway, actor=shop.seller, order_id=order.id, amount_cents=None
    )  # type: ignore[arg-type]
    db.refresh(order)
    assert (ledger.platform_fee_kept_cents(order), ledger.seller_net_cents(order)) == (0, 0)
    _reconciled(db, local_stripe)


def test_a_dispute_takes_the_share_back_and_a_won_dispute_returns_it_once(
    db: Session, storage, local_stripe: LocalStripe, shop: Shop
) -> None:
    product = create_published_product(db, storage, shop.seller, price_cents=3000)
    order = _buy(db, local_stripe, shop, product.id, card_number=DISPUTE_CARD)  # type: ignore[arg-type]
    ledger.sync_order(gateway=local_stripe.gateway, order_id=order.id, transaction=_in(db))  # type: ignore[arg-type]
    opened = local_stripe.events("charge.dispute.created")
    assert len(opened) == 1
    _feed(db, opened + opened)  # a repeat delivery owes nothing more
    db.refresh(order)
    assert order.status == "disputed"
    [task] = db.exec(select(LedgerTask).where(LedgerTask.order_id == order.id)).all()
    assert (task.kind, task.status) == ("dispute_reversal", "pending")

    assert ledger.run_due_tasks(gateway=local_stripe.gateway, transaction=_in(db)) == 1
    assert ledger.run_due_tasks(gateway=local_stripe.gateway, transaction=_in(db)) == 0
    db.refresh(order)
    assert order.transfer_reversed_cents == order.seller_share_cents == 2700
    _reconciled(db, local_stripe)

    dispute_id = opened[0]["data"]["object"]["id"]
    local_stripe.client.v1.disputes.update(
        dispute_id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    closed = local_stripe.events("charge.dispute.closed")
    _feed(db, closed)
    ledger.run_due_tasks(gateway=local_stripe.gateway, transaction=_in(db))
    _feed(db, closed)  # replayed after the return was made: no second return
    ledger.run_due_tasks(gateway=local_stripe.gateway, transaction=_in(db))
    db.refresh(order)
    assert order.status == "paid" and order.transfer_returned_cents == 2700
    tasks = db.exec(select(LedgerTask).where(LedgerTask.order_id == order.id)).all()
    assert sorted((t.kind, t.status, t.amount_cents) for t in tasks) == [
        ("dispute_return", LedgerTaskStatus.DONE.value, 2700),
        ("dispute_reversal", LedgerTaskStatus.DONE.value, 2700),
    ]
    _reconciled(db, local_stripe)


def test_a_won_dispute_seen_before_its_reversal_waits_for_it(
    db: Session, storage, local_stripe: LocalStripe, shop: Shop
) -> None:
    """Events in any order: the return is owed only once the reversal is made; the worker runs
    them in whatever order it finds them, and the seller ends with the share exactly once."""
    product = create_published_product(db, storage, shop.seller, price_cents=1000)
    order = _buy(db, local_stripe, shop, product.id, card_number=DISPUTE_CARD)  # type: ignore[arg-type]
    ledger.sync_order(gateway=local_stripe.gateway, order_id=order.id, transaction=_in(db))  # type: ignore[arg-type]
    dispute_id = local_stripe.events("charge.dispute.created")[0]["data"]["object"]["id"]
    local_stripe.client.v1.disputes.update(
        dispute_id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    events = local_stripe.events("charge.dispute.created") + local_stripe.events("charge.dispute.closed")
    random.Random(7).shuffle(events)
    _feed(db, events)
    reversal, return_ = (
        db.exec(select(LedgerTask).where(LedgerTask.kind == kind, LedgerTask.order_id == order.id)).one()
        for kind in ("dispute_reversal", "dispute_return")
    )
    # The return runs first and finds the reversal not made yet: it is retried later.
    return_.next_attempt_at = reversal.next_attempt_at = reversal.created_at
    db.add_all([return_, reversal])
    db.flush()
    ledger.run_due_tasks(gateway=local_stripe.gateway, transaction=_in(db))
    db.refresh(return_)
    db.refresh(reversal)
    if return_.status != LedgerTaskStatus.DONE.value:  # the return came first: due again later
        assert return_.attempts == 1 and "reversal" in return_.last_error
        return_.next_attempt_at = reversal.created_at
        db.add(return_)
        db.flush()
        ledger.run_due_tasks(gateway=local_stripe.gateway, transaction=_in(db))
    db.refresh(order)
    assert (order.transfer_reversed_cents, order.transfer_returned_cents) == (900, 900)
    _reconciled(db, local_stripe)


def test_reconcile_reports_money_the_ledger_does_not_know(
    db: Session, storage, local_stripe: LocalStripe, shop: Shop
) -> None:
    product = create_published_product(db, storage, shop.seller, price_cents=1000)
    order = _buy(db, local_stripe, shop, product.id)  # type: ignore[arg-type]
    ledger.sync_order(gateway=local_stripe.gateway, order_id=order.id, transaction=_in(db))  # type: ignore[arg-type]
    db.refresh(order)
    # Someone reverses part of the transfer in Stripe's dashboard.
    local_stripe.client.v1.transfers.reversals.create(order.stripe_transfer_id, {"amount": 100})  # type: ignore[arg-type]
    report = ledger.reconcile(session=db, gateway=local_stripe.gateway)
    assert not report.ok and report.drift_cents == 100
    assert [d.what for d in report.drifts] == ["reversed from the seller"]


def test_a_seller_whose_account_cannot_take_charges_cannot_be_bought_from(
    db: Session, storage, local_stripe: LocalStripe
) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    account = onboard_seller(db, local_stripe.gateway, seller.id, local_stripe.base)
    product = create_published_product(db, storage, seller, price_cents=1500)
    # Stripe disables the account (an account.updated on the Connect endpoint says so).
    connect.apply_account_update(
        session=db,
        account={"id": account.stripe_account_id, "charges_enabled": False, "payouts_enabled": False,
                 "details_submitted": True, "requirements": {"disabled_reason": "rejected.fraud"}},
        stripe_updated=account.stripe_updated + 1,
    )  # fmt: skip
    with pytest.raises(DomainError, match="Set up payouts before selling priced products"):
        checkout.start_checkout(
            session=db,
            gateway=local_stripe.gateway,
            settings=get_settings(),
            buyer_id=buyer.id,
            product_id=product.id,  # type: ignore[arg-type]
            public_url="http://shop.test",
        )
    status = connect.payout_status(session=db, seller_id=seller.id)
    assert status.label == connect.ACTION_REQUIRED and "rejected fraud" in status.needs[0]


def test_orders_that_were_never_charged_leave_the_ledgers_queue(
    db: Session, local_stripe: LocalStripe
) -> None:
    """A failed (or expired) destination charge has nothing to read back: it is marked done
    without asking Stripe, so it neither stays in the partial index nor crowds out real sales."""
    from quantoxbay.models import OrderStatus
    from tests.factories import create_connect_order

    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    failed = create_connect_order(db, seller, buyer, status=OrderStatus.FAILED)
    pending = create_connect_order(db, seller, buyer, status=OrderStatus.PENDING)
    asked: list[str] = []
    gateway = local_stripe.gateway
    gateway.retrieve_payment_intent_charge = lambda pi: asked.append(pi)  # type: ignore[method-assign,assignment,return-value]
    assert ledger.sync_pending_orders(gateway=gateway, transaction=_in(db)) == 0
    db.refresh(failed)
    db.refresh(pending)
    assert failed.ledger_synced_at is not None and pending.ledger_synced_at is None and asked == []
