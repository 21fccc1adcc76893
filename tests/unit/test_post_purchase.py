"""Post-purchase rules at the service level: receipts queued once, download limits and the log,
seller resets/reissues, refunds (partial, full, too much, twice, foreign), disputes."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import stripe
from sqlalchemy import func
from sqlmodel import Session, select

from quantoxbay.models import (
    ChargeEvent,
    DownloadGrant,
    DownloadLog,
    MailOutbox,
    Order,
    Product,
    ProductFile,
    Role,
    SalesRollup,
)
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import (
    DomainError,
    NotFound,
    PermissionDenied,
    charge_events,
    downloads,
    fulfillment,
    library,
    notifier,
    receipts,
    refunds,
)
from quantoxbay.services import webhook_events as webhooks
from quantoxbay.services.downloads import LimitReached
from quantoxbay.services.refunds import RefundRefused
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session, event
from tests.support.fake_stripe import UnchargedPaymentIntents

SECRET = "test-secret"


class FakeRefunds:
    """Stands in for ``client.v1.refunds``: records calls, answers like Stripe."""

    def __init__(
        self,
        status: str = "succeeded",
        error: Exception | None = None,
        first_errors: tuple[Exception, ...] = (),
    ) -> None:
        self.calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.status, self.error = status, error
        self.first_errors = list(first_errors)  # raised by the first calls, one each

    def create(self, params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((params, options))
        if self.first_errors:
            raise self.first_errors.pop(0)
        if self.error:
            raise self.error
        return {"id": f"re_test_{uuid.uuid4().hex[:12]}", "object": "refund", "status": self.status, **params}


def fake_client(**kwargs: Any) -> Any:
    return SimpleNamespace(
        v1=SimpleNamespace(refunds=FakeRefunds(**kwargs), payment_intents=UnchargedPaymentIntents())
    )


@pytest.fixture
def sale(db: Session, storage):
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, price_cents=1000)
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=1000)
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    order = db.get(Order, result.order_id)
    file_id = db.exec(select(ProductFile.id).where(ProductFile.product_id == product.id)).one()
    return SimpleNamespace(seller=seller, buyer=buyer, product=product, order=order, cs=cs, file_id=file_id)


def _token(sale) -> str:
    # One link per sale: a token made a second later is another link (Range continuations
    # count once only on their own link).
    if not getattr(sale, "token", None):
        sale.token = downloads.make_download_token(
            secret=SECRET, user_id=sale.buyer.id, order_id=sale.order.id, file_id=sale.file_id
        )
    return sale.token


def _download(db: Session, sale, *, range_start: int = 0, user_id: int | None = None):
    return downloads.authorize_download(
        session=db,
        secret=SECRET,
        token=_token(sale),
        user_id=user_id or sale.buyer.id,
        max_age_seconds=600,
        ip="203.0.113.9",
        range_start=range_start,
    )


def _grant(db: Session, sale) -> DownloadGrant:
    grant = db.exec(select(DownloadGrant).where(DownloadGrant.order_id == sale.order.id)).one()
    db.refresh(grant)
    return grant


# --- receipts -----------------------------------------------------------------------


def test_paid_order_queues_one_receipt_however_often_fulfilment_runs(db: Session, sale) -> None:
    fulfillment.fulfill_checkout(session=db, checkout_session=sale.cs)
    fulfillment.fulfill_checkout(session=db, checkout_session=sale.cs)
    rows = db.exec(select(MailOutbox).where(MailOutbox.order_id == sale.order.id)).all()
    assert [(r.kind, r.to_email, r.status) for r in rows] == [("receipt", sale.buyer.email, "pending")]


def test_unpaid_order_queues_no_receipt(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller)
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, payment_status="unpaid")
    cs["status"] = "complete"
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert db.exec(select(MailOutbox).where(MailOutbox.order_id == result.order_id)).all() == []


def test_receipt_renders_text_and_html_with_amounts_and_library_link(db: Session, sale) -> None:
    row = db.exec(select(MailOutbox).where(MailOutbox.order_id == sale.order.id)).one()
    msg = receipts.render(session=db, row=row, public_url="http://shop.test", sender="shop@test")
    assert msg["To"] == sale.buyer.email and f"order #{sale.order.id}" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for body in (text, html):
        assert "$10.00" in body and "http://shop.test/library" in body and "file.txt" in body


def test_resend_is_refused_while_unsent_and_for_a_stranger(db: Session, sale) -> None:
    # Not an error for the buyer (the page shows it as information): the receipt is on its way.
    with pytest.raises(receipts.ReceiptOnItsWay, match=f"on its way to {sale.buyer.email}"):
        receipts.resend_receipt(session=db, buyer_id=sale.buyer.id, order_id=sale.order.id)
    with pytest.raises(NotFound):
        receipts.resend_receipt(session=db, buyer_id=sale.seller.id, order_id=sale.order.id)


def test_resend_queues_a_missing_receipt_once(db: Session, sale) -> None:
    """A paid order without a receipt row: a resend queues it (the same write as at payment), and a
    second one at the same moment queues nothing more."""
    row = db.exec(select(MailOutbox).where(MailOutbox.order_id == sale.order.id)).one()
    db.delete(row)
    db.flush()
    announcement = receipts.resend_receipt(session=db, buyer_id=sale.buyer.id, order_id=sale.order.id)
    assert announcement.kind == receipts.MAIL_QUEUED
    receipts.queue_receipts(db.connection(), [(sale.order.id, sale.buyer.id)], skip_queued=True)
    rows = db.exec(select(MailOutbox).where(MailOutbox.order_id == sale.order.id)).all()
    assert [(r.kind, r.to_email, r.status, r.attempts) for r in rows] == [
        ("receipt", sale.buyer.email, "pending", 0)
    ]


# --- downloads ----------------------------------------------------------------------


def test_download_is_logged_and_a_double_click_counts_once(db: Session, sale) -> None:
    _download(db, sale)
    _download(db, sale)  # a double click
    _download(db, sale, range_start=4096)  # a Range continuation
    assert _grant(db, sale).downloads_used == 1
    logs = db.exec(select(DownloadLog).where(DownloadLog.order_id == sale.order.id)).all()
    assert [(log.counted, log.ip, log.user_id) for log in logs] == [
        (True, "203.0.113.9", sale.buyer.id),
        (False, "203.0.113.9", sale.buyer.id),
        (False, "203.0.113.9", sale.buyer.id),
    ]


def test_download_limit_refuses_then_seller_resets_it(db: Session, sale) -> None:
    product = db.get(Product, sale.product.id)
    product.download_limit = 1
    db.add(product)
    db.flush()
    _download(db, sale)
    # Outside the repeat window: a new download.
    for log in db.exec(select(DownloadLog)).all():
        log.created_at = log.created_at.replace(year=2000)
        db.add(log)
    db.flush()
    with pytest.raises(LimitReached, match="used all 1 downloads"):
        _download(db, sale)
    with pytest.raises(NotFound):  # another seller cannot touch it
        downloads.reset_download_limit(session=db, actor=create_user(db, Role.SELLER), order_id=sale.order.id)
    assert downloads.reset_download_limit(session=db, actor=sale.seller, order_id=sale.order.id) == 1
    _download(db, sale)
    assert _grant(db, sale).downloads_used == 1


def test_links_are_bound_to_user_and_refused_after_expiry(db: Session, sale) -> None:
    with pytest.raises(PermissionDenied, match="another account"):
        _download(db, sale, user_id=sale.seller.id)
    with pytest.raises(downloads.LinkExpired):
        downloads.resolve_download(
            session=db, secret=SECRET, token=_token(sale), user_id=sale.buyer.id, max_age_seconds=-1
        )


def test_reissue_gives_a_revoked_grant_back_but_not_for_a_refunded_order(db: Session, sale) -> None:
    grant = _grant(db, sale)
    grant.revoked = True
    db.add(grant)
    db.flush()
    with pytest.raises(PermissionDenied):
        _download(db, sale)
    downloads.reissue_access(session=db, actor=sale.seller, order_id=sale.order.id)
    _download(db, sale)
    refunds.refund_order(
        session=db,
        gateway=StripeGateway(fake_client()),
        actor=sale.seller,
        order_id=sale.order.id,
        amount_cents=None,
    )
    with pytest.raises(DomainError, match="refunded"):
        downloads.reissue_access(session=db, actor=sale.seller, order_id=sale.order.id)


def test_replaced_file_keeps_access_and_notifies_buyers_once(db: Session, sale, storage) -> None:
    import io

    from quantoxbay.services import catalog

    catalog.replace_product_file(
        session=db,
        storage=storage,
        product_id=sale.product.id,
        file_id=sale.file_id,
        seller_id=sale.seller.id,
        filename="file-v2.txt",
        stream=io.BytesIO(b"version two"),
        max_bytes=1000,
    )
    assert _download(db, sale).filename == "file-v2.txt"
    assert receipts.notify_file_update(session=db, seller_id=sale.seller.id, file_id=sale.file_id) == 1
    assert receipts.notify_file_update(session=db, seller_id=sale.seller.id, file_id=sale.file_id) == 0
    with pytest.raises(NotFound):
        receipts.notify_file_update(session=db, seller_id=sale.buyer.id, file_id=sale.file_id)
    entries = library.list_library(session=db, buyer_id=sale.buyer.id)
    assert [f.filename for f in entries[0].files] == ["file-v2.txt"]


# --- refunds and disputes -----------------------------------------------------------


def test_partial_then_full_refund_and_the_refusals(db: Session, sale) -> None:
    client = fake_client()
    _refund, announcements = refunds.refund_order(
        session=db, gateway=StripeGateway(client), actor=sale.seller, order_id=sale.order.id, amount_cents=300
    )
    params, options = client.v1.refunds.calls[0]
    assert params["payment_intent"] == sale.order.stripe_payment_intent_id and params["amount"] == 300
    assert options["idempotency_key"].startswith("quantoxbay-refund-")
    db.refresh(sale.order)
    assert (sale.order.status, sale.order.refunded_cents) == ("partially_refunded", 300)
    assert announcements and announcements[0].kind == "order.partially_refunded"
    _download(db, sale)  # a partial refund keeps access

    with pytest.raises(RefundRefused, match=r"at most \$7.00"):
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(client),
            actor=sale.seller,
            order_id=sale.order.id,
            amount_cents=701,
        )
    with pytest.raises(RefundRefused, match="greater than zero"):
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(client),
            actor=sale.seller,
            order_id=sale.order.id,
            amount_cents=0,
        )
    refunds.refund_order(
        session=db, gateway=StripeGateway(client), actor=sale.seller, order_id=sale.order.id, amount_cents=700
    )
    db.refresh(sale.order)
    assert (sale.order.status, sale.order.refunded_cents) == ("refunded", 1000)
    with pytest.raises(PermissionDenied, match="withdrawn"):
        _download(db, sale)
    with pytest.raises(RefundRefused, match="already been refunded"):
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(client),
            actor=sale.seller,
            order_id=sale.order.id,
            amount_cents=None,
        )
    assert len(client.v1.refunds.calls) == 2  # the refusals never reached Stripe


def test_refund_notices_say_the_amount_with_its_currency_in_plain_words(db: Session, sale) -> None:
    client = fake_client()
    partial, _ = refunds.refund_order(
        session=db, gateway=StripeGateway(client), actor=sale.seller, order_id=sale.order.id, amount_cents=200
    )
    assert (
        refunds.refund_notice(session=db, refund_id=partial.id)
        == f"Refunded $2.00 of order #{sale.order.id}."
    )
    # Refunding the rest of an order ends its downloads: the notice says so.
    rest, _ = refunds.refund_order(
        session=db,
        gateway=StripeGateway(client),
        actor=sale.seller,
        order_id=sale.order.id,
        amount_cents=None,
    )
    assert refunds.refund_notice(session=db, refund_id=rest.id) == (
        f"Refunded $8.00 of order #{sale.order.id}. "
        "The order is refunded in full, so the buyer can no longer download its files."
    )


def test_a_pending_refund_notice_says_stripe_is_processing_it(db: Session, sale) -> None:
    refund, _ = refunds.refund_order(
        session=db,
        gateway=StripeGateway(fake_client(status="pending")),
        actor=sale.seller,
        order_id=sale.order.id,
        amount_cents=250,
    )
    assert refunds.refund_notice(session=db, refund_id=refund.id) == (
        f"Refunding $2.50 of order #{sale.order.id}: Stripe is processing it."
    )
    with pytest.raises(NotFound):
        refunds.refund_notice(session=db, refund_id=10**9)


def test_a_refusal_names_amounts_not_free(db: Session, sale) -> None:
    """Zero is "$0.00" in every amount: "Free" is only a product's price."""
    with pytest.raises(RefundRefused) as refused:
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(fake_client()),
            actor=sale.seller,
            order_id=sale.order.id,
            amount_cents=1001,
        )
    assert str(refused.value) == (
        f"You can refund at most $10.00 of order #{sale.order.id} (paid $10.00, already refunded $0.00)."
    )


def test_other_sellers_cannot_refund_but_admins_can(db: Session, sale) -> None:
    with pytest.raises(NotFound):
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(fake_client()),
            actor=create_user(db, Role.SELLER),
            order_id=sale.order.id,
            amount_cents=100,
        )
    refunds.refund_order(
        session=db,
        gateway=StripeGateway(fake_client()),
        actor=create_user(db, Role.ADMIN),
        order_id=sale.order.id,
        amount_cents=100,
    )
    db.refresh(sale.order)
    assert sale.order.refunded_cents == 100


def test_stripe_refusal_writes_nothing(db: Session, sale) -> None:
    error = stripe.InvalidRequestError("Charge ch_1 has been charged back; cannot issue a refund.", "charge")
    with pytest.raises(RefundRefused, match="charged back"):
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(fake_client(error=error)),
            actor=sale.seller,
            order_id=sale.order.id,
            amount_cents=100,
        )
    db.refresh(sale.order)
    assert (sale.order.status, sale.order.refunded_cents) == ("paid", 0)
    assert refunds.refundable_cents(session=db, order_id=sale.order.id) == 1000


def test_a_rate_limited_refund_is_retried_with_the_same_idempotency_key(
    db: Session, sale, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe answers 429 under load: the refund is asked again (after a backoff), not given up."""
    monkeypatch.setattr("quantoxbay.payments.retry.time.sleep", lambda _seconds: None)
    rate_limited = stripe.RateLimitError("Too many requests", http_status=429)
    client = fake_client(first_errors=(rate_limited,))
    refund, _announcements = refunds.refund_order(
        session=db, gateway=StripeGateway(client), actor=sale.seller, order_id=sale.order.id, amount_cents=300
    )
    [(_, first), (params, again)] = client.v1.refunds.calls
    assert params["amount"] == 300 and first["idempotency_key"] == again["idempotency_key"]
    assert refund.stripe_refund_id and refund.status == "succeeded"
    db.refresh(sale.order)
    assert (sale.order.status, sale.order.refunded_cents) == ("partially_refunded", 300)


def test_charge_refunded_event_sets_status_and_never_lowers_the_figure(db: Session, sale) -> None:
    pi = sale.order.stripe_payment_intent_id
    charge = {"object": "charge", "payment_intent": pi, "amount": 1000, "amount_refunded": 400}
    assert refunds.on_charge_refunded(session=db, charge=charge)[0].kind == "order.partially_refunded"
    assert (
        refunds.on_charge_refunded(session=db, charge={**charge, "amount_refunded": 200}) == []
    )  # late, older
    db.refresh(sale.order)
    assert (sale.order.status, sale.order.refunded_cents) == ("partially_refunded", 400)
    refunds.on_charge_refunded(session=db, charge={**charge, "amount_refunded": 1000})
    db.refresh(sale.order)
    assert sale.order.status == "refunded" and _grant(db, sale).revoked
    assert refunds.on_charge_refunded(session=db, charge={**charge, "payment_intent": "pi_other"}) == []


def test_dispute_freezes_access_and_a_won_dispute_restores_it(db: Session, sale) -> None:
    dispute = {
        "object": "dispute",
        "payment_intent": sale.order.stripe_payment_intent_id,
        "status": "needs_response",
    }
    assert refunds.on_dispute_created(session=db, dispute=dispute)[0].kind == "order.disputed"
    db.refresh(sale.order)
    assert sale.order.status == "disputed"
    with pytest.raises(PermissionDenied):
        _download(db, sale)
    with pytest.raises(RefundRefused, match="disputed"):
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(fake_client()),
            actor=sale.seller,
            order_id=sale.order.id,
            amount_cents=1,
        )
    refunds.on_dispute_closed(session=db, dispute={**dispute, "status": "won"})
    db.refresh(sale.order)
    assert sale.order.status == "paid"
    _download(db, sale)


def test_lost_dispute_counts_as_refunded(db: Session, sale) -> None:
    dispute = {"object": "dispute", "payment_intent": sale.order.stripe_payment_intent_id}
    refunds.on_dispute_created(session=db, dispute={**dispute, "status": "needs_response"})
    refunds.on_dispute_closed(session=db, dispute={**dispute, "status": "lost"})
    db.refresh(sale.order)
    assert (sale.order.status, sale.order.refunded_cents) == ("refunded", 1000)
    with pytest.raises(PermissionDenied):
        _download(db, sale)


def test_seller_orders_lists_only_their_orders(db: Session, sale) -> None:
    rows = refunds.list_seller_orders(session=db, seller_id=sale.seller.id)
    assert [(r["order_id"], r["buyer"], r["refundable_cents"]) for r in rows] == [
        (sale.order.id, sale.buyer.email, 1000)
    ]
    assert refunds.list_seller_orders(session=db, seller_id=sale.buyer.id) == []


# --- refund and dispute events in any order (services.charge_events) -------------------


def _charge_event(type_: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {**event(obj, type_=type_), "created": created}


def _refunded(pi: str, amount_refunded: int, created: int = 1_800_000_000) -> dict[str, Any]:
    charge = {"id": f"ch_{pi}", "object": "charge", "payment_intent": pi, "amount": 1000,
              "amount_refunded": amount_refunded, "refunded": amount_refunded >= 1000}  # fmt: skip
    return _charge_event("charge.refunded", charge, created)


def _dispute(pi: str, kind: str, status: str, created: int, dispute_id: str = "dp_1") -> dict[str, Any]:
    dispute = {"id": f"{dispute_id}_{pi}", "object": "dispute", "payment_intent": pi, "charge": f"ch_{pi}",
               "amount": 1000, "reason": "fraudulent", "status": status}  # fmt: skip
    return _charge_event(f"charge.dispute.{kind}", dispute, created)


def _deliver(db: Session, *events: dict[str, Any]) -> None:
    for evt in events:
        outcome = webhooks.process_event(session=db, event=evt, raw=json.dumps(evt))
        assert outcome.outcome == "processed" and not outcome.duplicate


def _end_state(db: Session, order_id: int) -> tuple[str, int, tuple[bool, ...]]:
    order = db.get(Order, order_id)
    assert order is not None
    db.refresh(order)
    grants = db.exec(select(DownloadGrant.revoked).where(DownloadGrant.order_id == order_id)).all()
    return order.status, order.refunded_cents, tuple(grants)


@pytest.fixture
def unsold(db: Session, storage):
    """A paid Checkout Session whose order does not exist yet."""
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, price_cents=1000)
    cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=1000)
    return SimpleNamespace(seller=seller, cs=cs, pi=cs["payment_intent"])


def _fulfil(db: Session, cs: dict[str, Any], path: str) -> int:
    if path == "one":
        order_id = fulfillment.fulfill_checkout(session=db, checkout_session=cs).order_id
    else:  # the webhook's batch path
        order_id = fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=[cs])[
            cs["id"]
        ].order_id
    assert order_id is not None
    return order_id


def _kept(db: Session, pi: str) -> list[str]:
    return list(db.exec(select(ChargeEvent.status).where(ChargeEvent.stripe_payment_intent_id == pi)).all())


@pytest.mark.parametrize("path", ["one", "batch"])
def test_refund_before_the_order_is_kept_then_applied(db: Session, unsold, path: str) -> None:
    _deliver(db, _refunded(unsold.pi, 1000))
    assert db.exec(select(Order).where(Order.stripe_payment_intent_id == unsold.pi)).first() is None
    assert _kept(db, unsold.pi) == ["kept"]
    assert [e["payment_intent"] for e in charge_events.kept_events(session=db)] == [unsold.pi]
    order_id = _fulfil(db, unsold.cs, path)
    assert _end_state(db, order_id) == ("refunded", 1000, (True,))
    assert _kept(db, unsold.pi) == ["applied"]
    assert charge_events.kept_events(session=db) == []


@pytest.mark.parametrize("path", ["one", "batch"])
def test_partial_refund_before_the_order(db: Session, unsold, path: str) -> None:
    _deliver(db, _refunded(unsold.pi, 300))
    order_id = _fulfil(db, unsold.cs, path)
    assert _end_state(db, order_id) == ("partially_refunded", 300, (False,))
    rollup = db.exec(
        select(func.sum(SalesRollup.refunded_cents)).where(SalesRollup.seller_id == unsold.seller.id)
    )
    assert rollup.one() == 300


@pytest.mark.parametrize("path", ["one", "batch"])
def test_dispute_before_the_order_freezes_access(db: Session, unsold, path: str) -> None:
    _deliver(db, _dispute(unsold.pi, "created", "needs_response", 1_800_000_000))
    order_id = _fulfil(db, unsold.cs, path)
    assert _end_state(db, order_id) == ("disputed", 0, (True,))
    # Applied once: the same event again (a redelivery) changes nothing.
    again = _dispute(unsold.pi, "created", "needs_response", 1_800_000_000)
    assert charge_events.on_event(session=db, event=again) == []
    assert _end_state(db, order_id) == ("disputed", 0, (True,))


@pytest.mark.parametrize("path", ["one", "batch"])
def test_dispute_closed_won_before_created_before_the_order(db: Session, unsold, path: str) -> None:
    _deliver(
        db,
        _dispute(unsold.pi, "closed", "won", 1_800_000_500),
        _dispute(unsold.pi, "created", "needs_response", 1_800_000_000),
    )
    order_id = _fulfil(db, unsold.cs, path)
    assert _end_state(db, order_id) == ("paid", 0, (False,))


def test_dispute_closed_won_then_a_late_created_does_not_freeze_again(db: Session, sale) -> None:
    pi = sale.order.stripe_payment_intent_id
    _deliver(db, _dispute(pi, "created", "needs_response", 1_800_000_000))
    assert _end_state(db, sale.order.id) == ("disputed", 0, (True,))
    _deliver(db, _dispute(pi, "closed", "won", 1_800_000_500))
    assert _end_state(db, sale.order.id) == ("paid", 0, (False,))
    # Stripe may make a second Event for one change, or deliver an old one late.
    _deliver(db, _dispute(pi, "created", "needs_response", 1_800_000_000))
    assert _end_state(db, sale.order.id) == ("paid", 0, (False,))


def test_dispute_closed_won_first_then_created_with_the_order_there(db: Session, sale) -> None:
    pi = sale.order.stripe_payment_intent_id
    _deliver(db, _dispute(pi, "closed", "won", 1_800_000_500))
    _deliver(db, _dispute(pi, "created", "needs_response", 1_800_000_000))
    assert _end_state(db, sale.order.id) == ("paid", 0, (False,))


def test_dispute_closed_lost_first_still_takes_the_money_back(db: Session, sale) -> None:
    pi = sale.order.stripe_payment_intent_id
    _deliver(db, _dispute(pi, "closed", "lost", 1_800_000_500))
    _deliver(db, _dispute(pi, "created", "needs_response", 1_800_000_000))
    assert _end_state(db, sale.order.id) == ("refunded", 1000, (True,))


def test_partial_refund_then_dispute_won_before_the_order_in_any_order(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, price_cents=1000)
    ends = set()
    for order_of_delivery in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        cs = checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=1000)
        pi = cs["payment_intent"]
        events = [
            _refunded(pi, 400, 1_800_000_000),
            _dispute(pi, "created", "needs_response", 1_800_000_100),
            _dispute(pi, "closed", "won", 1_800_000_100),  # same second: closing sorts after opening
        ]
        _deliver(db, *(events[i] for i in order_of_delivery))
        ends.add(_end_state(db, _fulfil(db, cs, "batch")))
    assert ends == {("partially_refunded", 400, (False,))}


def test_an_event_for_a_payment_not_ours_stays_kept(db: Session, sale) -> None:
    _deliver(db, _refunded("pi_not_ours", 1000))
    assert _kept(db, "pi_not_ours") == ["kept"]
    assert _end_state(db, sale.order.id) == ("paid", 0, (False,))


@pytest.mark.parametrize("path", ["one", "batch"])
def test_a_kept_refund_applied_at_fulfilment_is_announced_after_the_commit(
    db: Session, unsold, path: str
) -> None:
    """The kept event's handler runs on a savepoint session; its announcement must reach the
    caller's session, which publishes after its commit (live pages see the refund)."""
    _deliver(db, _refunded(unsold.pi, 1000))
    before = len(notifier.queued(db))
    _fulfil(db, unsold.cs, path)
    kinds = [a.kind for a in notifier.queued(db)[before:]]
    assert "order.paid" in kinds and "order.refunded" in kinds
