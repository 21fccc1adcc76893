"""Receipts through the outbox to a real SMTP server (aiosmtpd on 127.0.0.1): sent once per
order, retried after an SMTP failure, .eml files without SMTP_URL, resend from the library."""

from __future__ import annotations

import email
import email.policy
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from quantoxbay.models import MailOutbox, Order, Role
from quantoxbay.services import fulfillment, receipts
from quantoxbay.services.mail import FileMailer, SmtpMailer, make_mailer
from quantoxbay.storage import get_storage
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session
from tests.support.servers import free_port


class Sink:
    def __init__(self, port: int) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[Sink]:
    sink = Sink(free_port())
    sink.controller.start()
    yield sink
    sink.controller.stop()


def _paid_order(engine: Engine) -> tuple[int, str]:
    with Session(engine, expire_on_commit=False) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product = create_published_product(s, get_storage(), seller, title="Field Guide", price_cents=1200)
        cs = checkout_session(s, buyer_id=buyer.id, product_id=product.id, amount=1200)
        order_id = fulfillment.fulfill_checkout(session=s, checkout_session=cs).order_id
        s.commit()
    return order_id, buyer.email  # type: ignore[return-value]


def _drain(engine: Engine, mailer) -> receipts.DrainResult:
    return receipts.drain_outbox(
        engine=engine, mailer=mailer, public_url="http://shop.test", sender="shop@test"
    )


def _row(engine: Engine, order_id: int) -> MailOutbox:
    with Session(engine) as s:
        return s.exec(select(MailOutbox).where(MailOutbox.order_id == order_id)).one()


def _make_due(engine: Engine, order_id: int) -> None:
    with Session(engine) as s:
        row = s.exec(select(MailOutbox).where(MailOutbox.order_id == order_id)).one()
        row.next_attempt_at = row.next_attempt_at - timedelta(hours=2)
        if row.sent_at is not None:
            row.sent_at = row.sent_at - timedelta(hours=2)
        s.add(row)
        s.commit()


def test_receipt_is_sent_once_over_smtp(engine: Engine, smtp: Sink) -> None:
    order_id, buyer_email = _paid_order(engine)
    mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp.controller.port}")
    _drain(engine, mailer)
    _drain(engine, mailer)
    mine = [m for m in smtp.messages if m["To"] == buyer_email]
    assert len(mine) == 1
    message = mine[0]
    assert message["Subject"] == f"Your QuantoxBay receipt for order #{order_id}"
    assert "$12.00" in message.get_body(("plain",)).get_content()
    assert "http://shop.test/library" in message.get_body(("html",)).get_content()
    row = _row(engine, order_id)
    assert (row.status, row.attempts, row.send_count) == ("sent", 1, 1)
    with Session(engine) as s:
        assert s.get(Order, order_id).receipt_sent_at is not None


def test_concurrent_drains_send_each_receipt_once(engine: Engine, smtp: Sink) -> None:
    orders = [_paid_order(engine) for _ in range(3)]
    mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp.controller.port}")
    threads = [threading.Thread(target=_drain, args=(engine, mailer)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for _, buyer_email in orders:
        assert sum(m["To"] == buyer_email for m in smtp.messages) == 1


def test_smtp_failure_is_retried_later(engine: Engine) -> None:
    order_id, buyer_email = _paid_order(engine)
    port = free_port()  # nothing listens here yet
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
    result = _drain(engine, mailer)
    assert result.failed >= 1
    row = _row(engine, order_id)
    assert (row.status, row.attempts) == ("pending", 1) and "127.0.0.1" in row.last_error
    assert _drain(engine, mailer).sent == 0  # not due yet: backoff
    sink = Sink(port)
    sink.controller.start()
    try:
        _make_due(engine, order_id)
        _drain(engine, mailer)
        assert [m["To"] for m in sink.messages].count(buyer_email) == 1
    finally:
        sink.controller.stop()
    assert _row(engine, order_id).status == "sent"


def test_a_row_that_raises_is_retried_with_backoff_then_failed_while_the_others_are_sent(
    engine: Engine, smtp: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receipts, "MAX_ATTEMPTS", 3)
    (bad_address_order, _), (order_b, email_b), (order_c, email_c) = [_paid_order(engine) for _ in range(3)]
    with Session(engine) as s:
        # Both bad rows are due first, ahead of the good ones.
        bad = s.exec(select(MailOutbox).where(MailOutbox.order_id == bad_address_order)).one()
        bad.to_email += "\r\nBcc: someone@example.com"  # a malformed address: the header refuses it
        bad.next_attempt_at -= timedelta(hours=1)
        broken = MailOutbox(order_id=order_b, kind="update:broken", to_email=email_b)  # a template error
        broken.next_attempt_at -= timedelta(hours=1)
        s.add_all([bad, broken])
        s.commit()
        bad_ids = [bad.id, broken.id]
    mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp.controller.port}")

    def bad_rows() -> list[MailOutbox]:
        with Session(engine) as s:
            return [s.get(MailOutbox, i) for i in bad_ids]  # type: ignore[misc]

    result = _drain(engine, mailer)
    assert (result.sent, result.failed) == (2, 2)
    assert sorted(m["To"] for m in smtp.messages) == sorted([email_b, email_c])
    assert _row(engine, order_c).status == "sent"
    for row in bad_rows():
        assert (row.status, row.attempts, row.locked_until) == ("pending", 1, None)
        assert "ValueError" in row.last_error
        assert row.next_attempt_at > receipts.utcnow() + timedelta(seconds=20)  # backoff
    assert (_drain(engine, mailer).sent, _drain(engine, mailer).failed) == (0, 0)  # not due yet
    for attempt in (2, 3):
        with Session(engine) as s:
            for row_id in bad_ids:
                row = s.get(MailOutbox, row_id)
                row.next_attempt_at -= timedelta(hours=2)
                s.add(row)
            s.commit()
        assert _drain(engine, mailer).failed == 2
        assert [(r.status, r.attempts) for r in bad_rows()] == [
            ("failed" if attempt == 3 else "pending", attempt)
        ] * 2
    assert len(smtp.messages) == 2


def test_without_smtp_url_messages_are_eml_files(engine: Engine, tmp_path: Path) -> None:
    order_id, buyer_email = _paid_order(engine)
    mailer = make_mailer(smtp_url=None, outbox_dir=tmp_path / "outbox")
    assert isinstance(mailer, FileMailer)
    _drain(engine, mailer)
    files = list((tmp_path / "outbox").glob("*.eml"))
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert [m["Subject"] for m in parsed if m["To"] == buyer_email] == [
        f"Your QuantoxBay receipt for order #{order_id}"
    ]


def test_eml_files_and_the_outbox_directory_are_private_whatever_the_umask(
    engine: Engine, tmp_path: Path
) -> None:
    _paid_order(engine)
    old = os.umask(0)
    try:
        _drain(engine, FileMailer(tmp_path / "outbox"))
    finally:
        os.umask(old)
    files = list((tmp_path / "outbox").iterdir())
    assert files and all(f.suffix == ".eml" and stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700


def test_buyer_can_resend_after_a_minute(engine: Engine, smtp: Sink) -> None:
    order_id, buyer_email = _paid_order(engine)
    mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp.controller.port}")
    _drain(engine, mailer)
    with Session(engine) as s:
        buyer_id = s.get(Order, order_id).buyer_id
        with pytest.raises(
            receipts.ReceiptOnItsWay, match=f"sent your receipt to {buyer_email} a moment ago"
        ):
            receipts.resend_receipt(session=s, buyer_id=buyer_id, order_id=order_id)
    _make_due(engine, order_id)
    with Session(engine) as s:
        announcement = receipts.resend_receipt(session=s, buyer_id=buyer_id, order_id=order_id)
        s.commit()
    assert announcement.kind == "mail.queued"
    _drain(engine, mailer)
    assert [m["To"] for m in smtp.messages].count(buyer_email) == 2
    assert _row(engine, order_id).send_count == 2


def test_worker_thread_sends_when_woken(engine: Engine, smtp: Sink) -> None:
    _, buyer_email = _paid_order(engine)
    worker = receipts.OutboxWorker(
        engine=engine,
        mailer=SmtpMailer(f"smtp://127.0.0.1:{smtp.controller.port}"),
        public_url="http://shop.test",
        sender="shop@test",
    )
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(m["To"] == buyer_email for m in smtp.messages):
            time.sleep(0.05)
    finally:
        worker.stop()
    assert any(m["To"] == buyer_email for m in smtp.messages)
