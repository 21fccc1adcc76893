"""Log lines at the state changes that matter (order paid, refund, dispute, download refused,
log-in locked or throttled): one line per change, its facts as ``key=value``, never a secret."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import Session, select

from quantoxbay.logs import LINE_FORMAT, KeyValueFormatter, configure_logging
from quantoxbay.models import Order, ProductFile, Role, utcnow
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import accounts, downloads, fulfillment, refunds
from quantoxbay.services.accounts import AccountError
from quantoxbay.settings import get_settings
from tests.factories import PASSWORD, create_published_product, create_user, random_email
from tests.stripe_payloads import checkout_session
from tests.support.fake_stripe import UnchargedPaymentIntents

SECRET = "test-secret"
FORMATTER = KeyValueFormatter(LINE_FORMAT)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="quantoxbay")
    return caplog


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == name]


def _facts(record: logging.LogRecord, *names: str) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _lines(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(FORMATTER.format(r) for r in caplog.records)


@pytest.fixture
def shop(db: Session, storage):
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller, price_cents=1000)
    return SimpleNamespace(seller=seller, buyer=buyer, product=product)


@pytest.fixture
def sale(db: Session, shop):
    cs = checkout_session(db, buyer_id=shop.buyer.id, product_id=shop.product.id, amount=1000)
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    order = db.get(Order, result.order_id)
    file_id = db.exec(select(ProductFile.id).where(ProductFile.product_id == shop.product.id)).one()
    return SimpleNamespace(**vars(shop), cs=cs, order=order, file_id=file_id)


# --- order paid ------------------------------------------------------------------------

PAID_FACTS = ("order_id", "buyer_id", "amount_cents", "currency", "payment_intent")


def test_a_paid_order_is_logged_once_with_its_facts(db: Session, shop, logs) -> None:
    cs = checkout_session(db, buyer_id=shop.buyer.id, product_id=shop.product.id, amount=1000)
    result = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    fulfillment.fulfill_checkout(session=db, checkout_session=cs)  # a redelivery changes nothing
    [paid] = _events(logs, "order.paid")
    assert paid.levelno == logging.INFO and paid.name == "quantoxbay.services.fulfillment"
    assert _facts(paid, *PAID_FACTS) == {
        "order_id": result.order_id,
        "buyer_id": shop.buyer.id,
        "amount_cents": 1000,
        "currency": "usd",
        "payment_intent": cs["payment_intent"],
    }


def test_the_batch_path_logs_each_order_as_the_single_path_does(db: Session, shop, logs) -> None:
    sessions = [
        checkout_session(db, buyer_id=shop.buyer.id, product_id=shop.product.id, amount=1000)
        for _ in range(3)
    ]
    results = fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=sessions)
    paid = _events(logs, "order.paid")
    assert sorted(r.order_id for r in paid) == sorted(r.order_id for r in results.values())  # type: ignore[attr-defined]
    by_intent = {cs["payment_intent"]: results[cs["id"]].order_id for cs in sessions}
    for record in paid:
        facts = _facts(record, *PAID_FACTS)
        assert facts["order_id"] == by_intent[facts["payment_intent"]]
        assert (facts["buyer_id"], facts["amount_cents"], facts["currency"]) == (shop.buyer.id, 1000, "usd")


def test_a_pending_order_that_gets_paid_is_logged_when_it_is_paid(db: Session, shop, logs) -> None:
    cs = checkout_session(db, buyer_id=shop.buyer.id, product_id=shop.product.id, payment_status="unpaid")
    pending = fulfillment.fulfill_checkout(session=db, checkout_session=cs)
    assert pending.status == "pending" and _events(logs, "order.paid") == []
    fulfillment.fulfill_checkout(session=db, checkout_session={**cs, "payment_status": "paid"})
    [paid] = _events(logs, "order.paid")
    assert _facts(paid, "order_id", "buyer_id", "amount_cents") == (
        {"order_id": pending.order_id, "buyer_id": shop.buyer.id, "amount_cents": 999}
    )


def test_the_hot_path_does_no_log_work_when_info_is_off(
    db: Session, shop, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="quantoxbay")
    built: list[object] = []
    monkeypatch.setattr(fulfillment, "_log_paid", lambda *args: built.append(args))
    sessions = [
        checkout_session(db, buyer_id=shop.buyer.id, product_id=shop.product.id, amount=1000)
        for _ in range(2)
    ]
    assert len(fulfillment.fulfill_new_paid_checkouts(session=db, checkout_sessions=sessions)) == 2
    assert built == [] and caplog.records == []


# --- refunds and disputes ---------------------------------------------------------------


class FakeRefunds:
    def __init__(self, status: str = "succeeded") -> None:
        self.status = status

    def create(self, params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"re_test_{uuid.uuid4().hex[:12]}", "object": "refund", "status": self.status, **params}


def test_a_refund_is_logged_when_requested_and_when_stripe_confirms_it(db: Session, sale, logs) -> None:
    client: Any = SimpleNamespace(
        v1=SimpleNamespace(refunds=FakeRefunds(), payment_intents=UnchargedPaymentIntents())
    )
    refund, _ = refunds.refund_order(
        session=db, gateway=StripeGateway(client), actor=sale.seller, order_id=sale.order.id, amount_cents=300
    )
    [requested] = _events(logs, "refund.requested")
    assert _facts(requested, "order_id", "refund_id", "amount_cents", "currency", "actor_id", "reason") == {
        "order_id": sale.order.id,
        "refund_id": refund.id,
        "amount_cents": 300,
        "currency": "usd",
        "actor_id": sale.seller.id,
        "reason": "requested_by_customer",
    }
    assert _events(logs, "refund.confirmed") == []
    charge = {
        "object": "charge",
        "payment_intent": sale.order.stripe_payment_intent_id,
        "amount_refunded": 300,
    }
    refunds.on_charge_refunded(session=db, charge=charge)
    [confirmed] = _events(logs, "refund.confirmed")
    assert _facts(confirmed, "order_id", "refunded_cents", "order_status") == {
        "order_id": sale.order.id,
        "refunded_cents": 300,
        "order_status": "partially_refunded",
    }
    # A charge that is not one of the shop's is not logged as a refund of ours.
    refunds.on_charge_refunded(session=db, charge={**charge, "payment_intent": "pi_other"})
    assert len(_events(logs, "refund.confirmed")) == 1


def test_a_refused_refund_is_not_logged_as_requested(db: Session, sale, logs) -> None:
    client: Any = SimpleNamespace(
        v1=SimpleNamespace(refunds=FakeRefunds(), payment_intents=UnchargedPaymentIntents())
    )
    with pytest.raises(refunds.RefundRefused):
        refunds.refund_order(
            session=db,
            gateway=StripeGateway(client),
            actor=sale.seller,
            order_id=sale.order.id,
            amount_cents=5000,
        )
    assert _events(logs, "refund.requested") == []


def test_a_dispute_is_logged_when_opened_and_when_closed(db: Session, sale, logs) -> None:
    dispute = {
        "id": "dp_test_1",
        "object": "dispute",
        "payment_intent": sale.order.stripe_payment_intent_id,
        "reason": "fraudulent",
        "status": "needs_response",
    }
    refunds.on_dispute_created(session=db, dispute=dispute)
    refunds.on_dispute_created(session=db, dispute=dispute)  # already disputed: no second line
    [opened] = _events(logs, "dispute.opened")
    assert opened.levelno == logging.WARNING
    assert _facts(opened, "order_id", "dispute", "dispute_reason") == {
        "order_id": sale.order.id,
        "dispute": "dp_test_1",
        "dispute_reason": "fraudulent",
    }
    refunds.on_dispute_closed(session=db, dispute={**dispute, "status": "won"})
    [closed] = _events(logs, "dispute.closed")
    assert _facts(closed, "order_id", "dispute", "outcome", "order_status") == {
        "order_id": sale.order.id,
        "dispute": "dp_test_1",
        "outcome": "won",
        "order_status": "paid",
    }


# --- downloads -------------------------------------------------------------------------


def _download(db: Session, sale, token: str, user_id: int | None, max_age: int = 600):
    return downloads.authorize_download(
        session=db, secret=SECRET, token=token, user_id=user_id, max_age_seconds=max_age, ip="203.0.113.9"
    )


def test_refused_downloads_are_logged_with_a_reason_and_never_the_link(db: Session, sale, logs) -> None:
    token = downloads.make_download_token(
        secret=SECRET, user_id=sale.buyer.id, order_id=sale.order.id, file_id=sale.file_id
    )
    stranger = create_user(db)
    refusals = [
        (stranger.id, 600, downloads.PermissionDenied),
        (sale.buyer.id, -1, downloads.LinkExpired),
    ]
    for user_id, max_age, error in refusals:
        with pytest.raises(error):
            _download(db, sale, token, user_id, max_age)
    with pytest.raises(downloads.NotFound):
        _download(db, sale, token + "x", sale.buyer.id)
    _download(db, sale, token, sale.buyer.id)  # let through: not logged as refused
    refunds.on_dispute_created(
        session=db, dispute={"object": "dispute", "payment_intent": sale.order.stripe_payment_intent_id}
    )
    with pytest.raises(downloads.PermissionDenied):
        _download(db, sale, token, sale.buyer.id)
    refused = _events(logs, "download.refused")
    assert [(r.reason, r.user_id) for r in refused] == [  # type: ignore[attr-defined]
        ("other_account", stranger.id),
        ("expired", sale.buyer.id),
        ("bad_signature", sale.buyer.id),
        ("withdrawn", sale.buyer.id),
    ]
    assert _facts(refused[-1], "order_id", "file_id", "order_status") == {
        "order_id": sale.order.id,
        "file_id": sale.file_id,
        "order_status": "disputed",
    }
    assert token not in _lines(logs)


def test_a_download_past_the_limit_is_logged_as_refused(db: Session, sale, logs) -> None:
    sale.product.download_limit = 1
    db.add(sale.product)
    db.flush()
    target = downloads.DownloadTarget(
        storage_key="k", filename="f", size_bytes=1, content_type="text/plain", order_id=sale.order.id,
        file_id=sale.file_id, grant_id=_grant_id(db, sale.order.id), link_id="a",
    )  # fmt: skip
    downloads.record_download(session=db, target=target, user_id=sale.buyer.id)
    later = downloads.DownloadTarget(**{**vars(target), "link_id": "b"})
    with pytest.raises(downloads.LimitReached):
        downloads.record_download(session=db, target=later, user_id=sale.buyer.id, range_start=10)
    [refused] = _events(logs, "download.refused")
    assert _facts(refused, "reason", "user_id", "order_id", "file_id") == {
        "reason": "limit_reached",
        "user_id": sale.buyer.id,
        "order_id": sale.order.id,
        "file_id": sale.file_id,
    }


def _grant_id(db: Session, order_id: int) -> int:
    from quantoxbay.models import DownloadGrant

    grant_id = db.exec(select(DownloadGrant.id).where(DownloadGrant.order_id == order_id)).one()
    assert grant_id is not None
    return grant_id


# --- log-in ----------------------------------------------------------------------------


@pytest.fixture
def strict_logins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(get_settings(), "login_max_failures", 2)
    monkeypatch.setattr(get_settings(), "login_ip_max_failures", 3)
    yield


def test_a_locked_account_and_a_throttled_attempt_are_logged_without_the_email(
    db: Session, logs, strict_logins
) -> None:
    user, now = create_user(db), utcnow()
    for _ in range(2):
        with pytest.raises(AccountError):
            accounts.authenticate(session=db, email=user.email, password="wrong-password", now=now)
    [locked] = _events(logs, "login.locked")
    assert locked.levelno == logging.WARNING
    assert _facts(locked, "scope", "user_id", "lockout_seconds") == {
        "scope": "account",
        "user_id": user.id,
        "lockout_seconds": get_settings().login_lockout_seconds,
    }
    assert _events(logs, "login.throttled") == []
    with pytest.raises(AccountError):
        accounts.authenticate(session=db, email=user.email, password=PASSWORD, now=now + timedelta(seconds=1))
    [throttled] = _events(logs, "login.throttled")
    assert _facts(throttled, "user_id") == {"user_id": user.id}
    lines = _lines(logs)
    assert user.email not in lines and PASSWORD not in lines and "wrong-password" not in lines


def test_an_address_locked_across_accounts_is_logged_with_the_address(
    db: Session, logs, strict_logins
) -> None:
    now = utcnow()
    for _ in range(3):  # one guess at each of three unknown accounts: only the address fills up
        with pytest.raises(AccountError):
            accounts.authenticate(
                session=db, email=random_email(), password="wrong-password", client_ip="203.0.113.9", now=now
            )
    [locked] = _events(logs, "login.locked")
    assert _facts(locked, "scope", "client_ip", "user_id") == {
        "scope": "ip",
        "client_ip": "203.0.113.9",
        "user_id": None,
    }


# --- the line format -------------------------------------------------------------------


def test_extra_fields_print_as_key_value_and_cannot_forge_a_line() -> None:
    record = logging.makeLogRecord(
        {"name": "quantoxbay.services.x", "levelno": logging.INFO, "levelname": "INFO", "msg": "order.paid"}
    )
    record.order_id, record.note, record.empty = 7, "two words\nFAKE order.paid order_id=8", ""
    line = FORMATTER.format(record)
    assert line.endswith(
        ' INFO quantoxbay.services.x order.paid order_id=7 note="two words\\nFAKE order.paid order_id=8" empty=""'
    )
    assert "\n" not in line
    plain = logging.makeLogRecord({"msg": "webhook refused: %s", "args": ("bad signature",)})
    assert FORMATTER.format(plain).endswith(" webhook refused: bad signature")


def test_configure_logging_prints_the_shops_info_lines_once_and_respects_a_setup() -> None:
    root, shop = logging.getLogger(), logging.getLogger("quantoxbay")
    saved = root.handlers[:], shop.level
    try:
        root.handlers.clear()
        shop.setLevel(logging.NOTSET)
        configure_logging()
        configure_logging()
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, KeyValueFormatter)
        assert shop.getEffectiveLevel() == logging.INFO
        assert root.level == logging.WARNING  # other libraries' INFO lines stay off
        # A process with its own handler is left as it is.
        own = logging.NullHandler()
        root.handlers[:] = [own]
        shop.setLevel(logging.NOTSET)
        configure_logging()
        assert root.handlers == [own] and shop.level == logging.NOTSET
    finally:
        root.handlers[:] = saved[0]
        shop.setLevel(saved[1])
