"""E-mail receipts (and file-update notices, and sellers' product notices) through a transactional outbox.

Fulfilment writes one ``mail_outbox`` row per (order, kind) in its own transaction, so a
receipt is queued exactly when the order becomes paid, and never twice (unique constraint).
A background worker (``OutboxWorker``, started from the app's lifespan) sends due rows off
the webhook's critical path: each row is claimed with a conditional UPDATE (a lease), sent,
then marked sent. Any failure of one row (SMTP, a malformed address, a template error)
schedules that row's retry with backoff, and after ``MAX_ATTEMPTS`` marks it failed; the
other rows of the pass are sent all the same. ``drain_outbox`` does one pass and is what
tests call.

Delivery is at least once only if the process dies between the SMTP hand-over and marking the
row sent; otherwise a row is sent exactly once.
"""

from __future__ import annotations

import html
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import Connection, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from quantoxbay import routes
from quantoxbay.db import Lookup, insert_rows
from quantoxbay.models import (
    AdminAction,
    DownloadGrant,
    MailOutbox,
    MailStatus,
    Order,
    OrderItem,
    Product,
    ProductFile,
    User,
    utcnow,
)
from quantoxbay.services import DomainError, NotFound, notifier
from quantoxbay.services.mail import Mailer, MailError
from quantoxbay.services.money import format_amount
from quantoxbay.services.notifier import Announcement, buyer_topic

logger = logging.getLogger(__name__)

RECEIPT = "receipt"
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)
RESEND_COOLDOWN = timedelta(seconds=60)
IDLE_WAKE_SECONDS = 30.0
#: Announced after a commit that queued mail outside a sale (a resend, an update notice).
MAIL_QUEUED = "mail.queued"
#: Announcements that mean "there may be mail to send now".
WAKE_KINDS = frozenset({"order.paid", MAIL_QUEUED})


def backoff(attempts: int) -> timedelta:
    """Delay before retry number ``attempts`` (1, 2, ...): 30 s doubling, capped at 1 h."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def _enqueue(session: Session, *, order_id: int | None, kind: str, to_email: str) -> bool:
    """Insert the outbox row in a savepoint; False when it already exists."""
    try:
        with session.begin_nested():
            session.add(MailOutbox(order_id=order_id, kind=kind, to_email=to_email))
            session.flush()
    except IntegrityError:
        return False
    return True


# A receipt row's column values from the model's defaults (NULLs left out: PostgreSQL cannot type
# a bare NULL parameter), computed once: building a MailOutbox object costs ~0.1 ms.
_RECEIPT_TEMPLATE = MailOutbox(order_id=0, kind=RECEIPT, to_email="").model_dump(exclude={"id", "to_email"})
_NEW_RECEIPT = {k: v for k, v in _RECEIPT_TEMPLATE.items() if v is not None}
_NEW_RECEIPT_TIMES = [n for n, f in MailOutbox.model_fields.items() if f.default_factory is utcnow]


_OUTBOX = MailOutbox.__table__  # type: ignore[attr-defined]
_BUYER_EMAIL = Lookup("to_email", User.__table__, "email", "id")  # type: ignore[attr-defined]


def queue_receipts(conn: Connection, orders: list[tuple[int, int]], *, skip_queued: bool = False) -> None:
    """Queue the receipts of orders, given as (order id, buyer id), in the caller's transaction:
    one multi-row INSERT that reads the buyers' e-mail addresses itself (fulfillment's ``_grant``,
    for orders that have just become paid: nothing can have queued them yet). ``skip_queued``
    leaves out an order whose receipt row exists already (a buyer asking twice at once)."""
    now = utcnow()
    times = {n: now for n in _NEW_RECEIPT_TIMES}
    rows = [
        _NEW_RECEIPT | times | {"order_id": order_id, "to_email": buyer_id} for order_id, buyer_id in orders
    ]
    insert_rows(
        conn,
        _OUTBOX,
        rows,
        lookups=(_BUYER_EMAIL,),
        skip_conflicts_on=("order_id", "kind") if skip_queued else (),
    )


class ReceiptOnItsWay(DomainError):
    """The receipt is not queued again because it is being sent, or was a moment ago: nothing is
    wrong (the buyer's wish is met), so pages show this as information, not as an error."""


def resend_receipt(*, session: Session, buyer_id: int, order_id: int) -> Announcement:
    """The buyer asks for the receipt again (library). Not queued again while one is being sent or
    was sent a moment ago (``ReceiptOnItsWay``)."""
    order = session.get(Order, order_id)
    if order is None or order.buyer_id != buyer_id:
        raise NotFound("This order is not in your library.")
    if order.paid_at is None:
        raise DomainError("This order has not been paid, so there is no receipt yet.")
    row = session.exec(
        select(MailOutbox).where(MailOutbox.order_id == order_id, MailOutbox.kind == RECEIPT)
    ).first()
    if row is None:
        queue_receipts(session.connection(), [(order_id, buyer_id)], skip_queued=True)
    elif row.status == MailStatus.PENDING.value and row.send_count == 0:
        raise ReceiptOnItsWay(f"Your receipt is on its way to {row.to_email}; it should arrive in a minute.")
    elif row.sent_at is not None and utcnow() - row.sent_at < RESEND_COOLDOWN:
        raise ReceiptOnItsWay(
            f"We sent your receipt to {row.to_email} a moment ago. Please check your inbox (and spam folder)."
        )
    else:
        row.status, row.attempts, row.next_attempt_at, row.locked_until = (
            MailStatus.PENDING.value,
            0,
            utcnow(),
            None,
        )
        session.add(row)
        session.flush()
    announcement = Announcement(
        kind=MAIL_QUEUED, topics=(buyer_topic(buyer_id),), data={"order_id": order_id}
    )
    notifier.queue(session, announcement)  # after the commit: wakes the mail worker
    return announcement


def notify_file_update(*, session: Session, seller_id: int, file_id: int) -> int:
    """A seller tells every buyer with live access that a file has a new version (one click,
    opt-in). One notice per buyer and version: clicking twice queues nothing more."""
    found = session.exec(
        select(ProductFile, Product)
        .join(Product, col(Product.id) == ProductFile.product_id)
        .where(ProductFile.id == file_id)
    ).first()
    if found is None or found[1].seller_id != seller_id:
        raise NotFound("This file does not exist.")
    product_file, product = found
    from quantoxbay.services.checkout import ACTIVE_ORDER_STATUSES  # local: checkout imports fulfilment

    rows = session.exec(
        select(Order.id, User.email)
        .join(DownloadGrant, col(DownloadGrant.order_id) == Order.id)
        .join(User, col(User.id) == Order.buyer_id)
        .where(
            DownloadGrant.product_id == product.id,
            DownloadGrant.revoked == False,  # noqa: E712
            col(Order.status).in_(ACTIVE_ORDER_STATUSES),
        )
    ).all()
    kind = f"update:{product.id}:{product_file.id}:{product_file.version}"
    queued = sum(_enqueue(session, order_id=oid, kind=kind, to_email=email) for oid, email in rows if oid)
    if queued:  # after the commit: wake the mail worker now rather than at its next poll
        notifier.queue(session, Announcement(kind=MAIL_QUEUED, topics=()))
    return queued


#: A seller's notice that an admin took their product down, or restored it: the kind is
#: "<prefix>:<admin_action id>", so each admin action mails once and renders what was decided then.
PRODUCT_REMOVED = "product.removed"
PRODUCT_RESTORED = "product.restored"


def queue_product_notice(*, session: Session, action: AdminAction, product: Product) -> None:
    """Queue the e-mail telling a product's seller what an admin did to it (``action``: a flushed
    ``product.unpublish`` or ``product.restore`` row), in the caller's transaction."""
    prefix = PRODUCT_RESTORED if action.action == "product.restore" else PRODUCT_REMOVED
    seller = session.get(User, product.seller_id)
    if seller is None or action.id is None:
        return
    _enqueue(session, order_id=None, kind=f"{prefix}:{action.id}", to_email=seller.email)
    notifier.queue(session, Announcement(kind=MAIL_QUEUED, topics=()))  # after the commit: wake the worker


# --- rendering ---------------------------------------------------------------------


def _message(*, to: str, sender: str, subject: str, text: str, html_body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="quantoxbay.local")
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    return message


def render_receipt(*, session: Session, row: MailOutbox, public_url: str, sender: str) -> EmailMessage:
    order = session.get(Order, row.order_id)
    if order is None:
        raise NotFound(f"order {row.order_id} is gone")
    items = session.exec(select(OrderItem).where(OrderItem.order_id == order.id)).all()
    library_url = f"{public_url}{routes.LIBRARY}"
    money = lambda cents: format_amount(cents, order.currency)  # noqa: E731
    lines = []
    for item in items:
        files = session.exec(
            select(ProductFile.filename).where(ProductFile.product_id == item.product_id)
        ).all()
        lines.append((item.title, money(item.total_cents), list(files)))
    paid = (order.paid_at or order.created_at).strftime("%d %b %Y %H:%M UTC")
    text = ["Thank you for your purchase on QuantoxBay.", "", f"Order #{order.id}, paid {paid}", ""]
    for title, amount, files in lines:
        text.append(f"  {title}  {amount}")
        text += [f"    - {name}" for name in files]
    text += ["", f"Subtotal: {money(order.subtotal_cents)}"]
    if order.discount_cents:
        text.append(
            f"Discount{f' ({order.promo_code})' if order.promo_code else ''}: -{money(order.discount_cents)}"
        )
    text += [
        f"Total paid: {money(order.total_cents)}",
        "",
        f"Download your files from your library: {library_url}",
        "",
    ]
    rows_html = "".join(
        f"<tr><td>{html.escape(title)}<br><small>{html.escape(', '.join(files))}</small></td>"
        f"<td style='text-align:right'>{html.escape(amount)}</td></tr>"
        for title, amount, files in lines
    )
    discount_html = (
        f"<tr><td>Discount</td><td style='text-align:right'>-{html.escape(money(order.discount_cents))}</td></tr>"
        if order.discount_cents
        else ""
    )
    html_body = (
        "<html><body style='font-family:sans-serif'>"
        f"<h1>Thank you for your purchase</h1><p>Order #{order.id}, paid {html.escape(paid)}</p>"
        f"<table cellpadding='6'>{rows_html}"
        f"<tr><td>Subtotal</td><td style='text-align:right'>{html.escape(money(order.subtotal_cents))}</td></tr>"
        f"{discount_html}"
        f"<tr><td><b>Total paid</b></td><td style='text-align:right'><b>{html.escape(money(order.total_cents))}"
        "</b></td></tr></table>"
        f"<p><a href='{html.escape(library_url)}'>Download your files from your library</a></p>"
        "</body></html>"
    )
    return _message(
        to=row.to_email,
        sender=sender,
        subject=f"Your QuantoxBay receipt for order #{order.id}",
        text="\n".join(text),
        html_body=html_body,
    )


def render_update_notice(*, session: Session, row: MailOutbox, public_url: str, sender: str) -> EmailMessage:
    _, product_id, file_id, version = row.kind.split(":")
    product_file = session.get(ProductFile, int(file_id))
    title = session.exec(
        select(OrderItem.title).where(
            OrderItem.order_id == row.order_id, OrderItem.product_id == int(product_id)
        )
    ).first()
    filename = product_file.filename if product_file else "a file"
    library_url = f"{public_url}{routes.LIBRARY}"
    text = (
        f"A new version (v{version}) of {filename} in {title} is available.\n\n"
        f"Download it from your library: {library_url}\n"
    )
    html_body = (
        f"<html><body><p>A new version (v{html.escape(version)}) of <b>{html.escape(filename)}</b> in "
        f"{html.escape(title or '')} is available.</p>"
        f"<p><a href='{html.escape(library_url)}'>Download it from your library</a></p></body></html>"
    )
    return _message(
        to=row.to_email, sender=sender, subject=f"Updated: {title}", text=text, html_body=html_body
    )


def render_product_notice(*, session: Session, row: MailOutbox, public_url: str, sender: str) -> EmailMessage:
    prefix, _, action_id = row.kind.partition(":")
    action = session.get(AdminAction, int(action_id)) if action_id.isdigit() else None
    _, _, product_id = action.target.partition(":") if action else ("", "", "")
    product = session.get(Product, int(product_id)) if product_id.isdigit() else None
    if action is None or product is None or product.id is None:
        raise NotFound(f"the admin action of {row.kind!r} is gone")
    edit_url = f"{public_url}{routes.seller_product_edit_path(product.id)}"
    when = action.created_at.strftime("%d %b %Y %H:%M UTC")
    title = product.title
    if prefix == PRODUCT_REMOVED:
        subject = f"Your product {title!r} was taken down"
        paragraphs = [
            f'An admin took your product "{title}" off QuantoxBay on {when}.',
            f"Reason: {action.detail}",
            "It stays off the store until an admin restores it: you cannot publish it again yourself. "
            "Buyers who bought it keep their downloads. You can still edit it; reply to this e-mail "
            "to ask for a review.",
        ]
    else:
        subject = f"Your product {title!r} was restored"
        paragraphs = [
            f'An admin restored your product "{title}" on {when}.',
            "It is not on the store yet: publish it again from its page when you are ready.",
        ]
    text = "\n\n".join([*paragraphs, f"Your product: {edit_url}"]) + "\n"
    html_body = (
        "<html><body style='font-family:sans-serif'>"
        + "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        + f"<p><a href='{html.escape(edit_url)}'>Open your product</a></p></body></html>"
    )
    return _message(to=row.to_email, sender=sender, subject=subject, text=text, html_body=html_body)


def render(*, session: Session, row: MailOutbox, public_url: str, sender: str) -> EmailMessage:
    if row.kind == RECEIPT:
        return render_receipt(session=session, row=row, public_url=public_url, sender=sender)
    if row.kind.startswith("update:"):
        return render_update_notice(session=session, row=row, public_url=public_url, sender=sender)
    if row.kind.startswith((f"{PRODUCT_REMOVED}:", f"{PRODUCT_RESTORED}:")):
        return render_product_notice(session=session, row=row, public_url=public_url, sender=sender)
    # Local import: account_links renders with this module's helpers (it imports this module).
    from quantoxbay.services import account_links

    if account_links.is_account_mail(row.kind):
        return account_links.render(session=session, row=row, public_url=public_url, sender=sender)
    raise DomainError(f"unknown mail kind {row.kind!r}")


# --- sending -----------------------------------------------------------------------


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    next_due: datetime | None = None


def _claim(session: Session, row_id: int, now: datetime) -> bool:
    return (
        session.execute(  # type: ignore[attr-defined]
            update(MailOutbox)
            .where(
                col(MailOutbox.id) == row_id,
                col(MailOutbox.status) == MailStatus.PENDING.value,
                col(MailOutbox.next_attempt_at) <= now,
                or_(col(MailOutbox.locked_until).is_(None), col(MailOutbox.locked_until) < now),
            )
            .values(locked_until=now + LEASE, attempts=MailOutbox.attempts + 1)
        ).rowcount
        == 1
    )


def _send_one(
    engine: Engine, mailer: Mailer, row_id: int, now: datetime, *, public_url: str, sender: str
) -> str:
    """Claim, render and send one row: "sent", "failed" (retried later or given up) or "skipped".

    Any exception while rendering or sending (SMTP down, a malformed address, a template bug)
    schedules a retry with backoff until ``MAX_ATTEMPTS``, then the row is marked failed; a
    ``DomainError`` (the order is gone, an unknown kind) will not get better and fails at once.
    """
    from quantoxbay.db import session_scope

    with session_scope(engine) as session:
        if not _claim(session, row_id, now):
            return "skipped"  # another worker has it, or it is no longer due
    try:
        with session_scope(engine) as session:
            row = session.get(MailOutbox, row_id)
            assert row is not None
            message = render(session=session, row=row, public_url=public_url, sender=sender)
        mailer.send(message)
    except Exception as exc:
        with session_scope(engine) as session:
            row = session.get(MailOutbox, row_id)
            assert row is not None
            give_up = row.attempts >= MAX_ATTEMPTS or isinstance(exc, DomainError)
            row.status = MailStatus.FAILED.value if give_up else MailStatus.PENDING.value
            row.next_attempt_at = utcnow() + backoff(row.attempts)
            error = str(exc) if isinstance(exc, (MailError, DomainError)) else f"{type(exc).__name__}: {exc}"
            row.locked_until, row.last_error = None, error[:1000]
            session.add(row)
            kind, attempts = row.kind, row.attempts
        # An unexpected error carries its traceback to the log; expected ones one line.
        logger.warning(
            "mail %s (%s) failed (attempt %s%s): %s",
            row_id,
            kind,
            attempts,
            ", giving up" if give_up else "",
            exc,
            exc_info=not isinstance(exc, (MailError, DomainError)),
        )
        return "failed"
    with session_scope(engine) as session:
        row = session.get(MailOutbox, row_id)
        assert row is not None
        sent_at = utcnow()
        row.status, row.sent_at, row.locked_until, row.last_error = MailStatus.SENT.value, sent_at, None, ""
        row.send_count += 1
        session.add(row)
        if row.kind == RECEIPT and row.order_id is not None:
            session.execute(
                update(Order).where(col(Order.id) == row.order_id).values(receipt_sent_at=sent_at)
            )
    return "sent"


def drain_outbox(
    *, engine: Engine, mailer: Mailer, public_url: str, sender: str, limit: int = 100
) -> DrainResult:
    """Send every due message once (each in its own short transactions); return what happened."""
    from quantoxbay.db import session_scope

    result = DrainResult()
    now = utcnow()
    with session_scope(engine) as session:
        due = session.exec(
            select(MailOutbox.id)
            .where(MailOutbox.status == MailStatus.PENDING.value, MailOutbox.next_attempt_at <= now)
            .order_by(col(MailOutbox.next_attempt_at))
            .limit(limit)
        ).all()
    for row_id in due:
        assert row_id is not None
        try:
            outcome = _send_one(engine, mailer, row_id, now, public_url=public_url, sender=sender)
        except Exception:
            # Even the bookkeeping failed (the database?): the lease runs out and the row comes
            # round again; the rows after it are still tried in this pass.
            logger.exception("mail %s could not be processed", row_id)
            outcome = "failed"
        if outcome == "sent":
            result.sent += 1
        elif outcome == "failed":
            result.failed += 1
    with session_scope(engine) as session:
        result.next_due = session.exec(
            select(MailOutbox.next_attempt_at)
            .where(MailOutbox.status == MailStatus.PENDING.value)
            .order_by(col(MailOutbox.next_attempt_at))
            .limit(1)
        ).first()
    return result


class OutboxWorker:
    """A daemon thread that drains the outbox when woken (a paid order, a resend) and when a
    retry falls due; it sleeps otherwise (no busy polling)."""

    def __init__(self, *, engine: Engine, mailer: Mailer, public_url: str, sender: str) -> None:
        self._kwargs = {"engine": engine, "mailer": mailer, "public_url": public_url, "sender": sender}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, announcement: Announcement) -> None:
        """A notifier listener: wake up for announcements that may have queued mail."""
        if announcement.kind in WAKE_KINDS:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mail-outbox", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = IDLE_WAKE_SECONDS
            try:
                result = drain_outbox(**self._kwargs)  # type: ignore[arg-type]
                if result.next_due is not None:
                    wait = min(wait, max((result.next_due - utcnow()).total_seconds(), 0.5))
            except Exception:
                logger.exception("mail outbox pass failed")
            self._wake.wait(wait)


_worker: OutboxWorker | None = None


def start_outbox_worker() -> OutboxWorker:
    """Start this process's outbox worker once, listening to the notifier for wake-ups."""
    global _worker
    from quantoxbay.db import get_engine
    from quantoxbay.services.mail import make_mailer
    from quantoxbay.settings import get_settings

    if _worker is None:
        settings = get_settings()
        _worker = OutboxWorker(
            engine=get_engine(),
            mailer=make_mailer(smtp_url=settings.smtp_url, outbox_dir=settings.outbox_dir),
            public_url=settings.public_url,
            sender=settings.mail_from,
        )
        notifier.subscribe(_worker)
    _worker.start()
    return _worker
