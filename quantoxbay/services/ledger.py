"""The money of each sale as Stripe moved it, the Stripe calls the shop owes, and reconciliation.

Every priced sale is a destination charge (services.checkout): Stripe charges the buyer on the
platform, takes its processing fee from the platform, transfers the charge less the application
fee to the seller's connected account and records the application fee. Fulfilment writes what the
shop decided (gross, discount, the platform's fee on what was paid, the seller's share); this
module writes what only Stripe knows and the calls that follow from verified events:

- **sync** (``sync_pending_orders``): after a sale, read the charge back (its transfer, its
  application fee, and Stripe's fee from its balance transaction). A code typed on the hosted
  page lowered the total after the application fee was set, so the fee on the charge is more than
  the platform's fee on what was paid: the difference goes to the seller by a transfer of its own
  (``fee_adjusted_cents``).
- **refunds** (``record_refund_reversal``): a refund of a destination charge reverses the seller's
  share of it and refunds the platform's fee on it, in proportion (``reverse_transfer``,
  ``refund_application_fee``); both amounts are recorded as Stripe made them.
- **disputes** (``LedgerTask``): the platform is debited when a dispute opens; the shop takes the
  seller's share back by reversing the sale's transfers, and gives it back when the dispute is won.
  The event's transaction writes the task; ``run_due_tasks`` makes the call with an idempotency key
  of the task, retried with backoff until it succeeds.
- **reconcile** (``reconcile``): compares each order's ledger with Stripe's charge, transfers,
  application fee and refunds and reports the drift (``python -m quantoxbay reconcile``).

Stripe is never called inside a database transaction that holds a write: a read, the call, then
a short transaction that writes (the webhook keeps the write lock free).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from quantoxbay.db import session_scope
from quantoxbay.models import (
    LedgerTask,
    LedgerTaskKind,
    LedgerTaskStatus,
    Order,
    OrderItem,
    OrderStatus,
    utcnow,
)
from quantoxbay.payments.gateway import StripeGateway, dispute_task_key, fee_adjustment_key
from quantoxbay.services import PaymentError, notifier
from quantoxbay.services.fees import proportional_cents
from quantoxbay.services.notifier import Announcement, seller_topic

logger = logging.getLogger(__name__)

#: Orders whose charge is read back per batch, and the delay before a task is retried.
SYNC_BATCH = 50
TASK_MAX_ATTEMPTS = 10
TASK_BACKOFF_SECONDS = 5.0
TASK_BACKOFF_MAX_SECONDS = 3600.0
#: How long a worker holds a task it claimed (another worker takes it over after that).
TASK_LEASE_SECONDS = 120.0

#: Opens a transaction (``db.session_scope``: commits, then publishes what it announced). The
#: functions that call Stripe between short transactions take one; tests hand in their own session.
Transaction = Callable[[], AbstractContextManager[Session]]

_SYNCED_STATUSES = (*OrderStatus.active(), OrderStatus.REFUNDED.value, OrderStatus.DISPUTED.value)
#: Orders that end without a charge: nothing for the ledger to read (pending ones wait their turn).
_NEVER_CHARGED_STATUSES = (OrderStatus.FAILED.value, OrderStatus.EXPIRED.value)


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj or {})


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


# --- sync: what only Stripe knows of a sale -------------------------------------------------


@dataclass(frozen=True)
class ChargeFacts:
    """A destination charge as Stripe holds it."""

    charge_id: str
    transfer_id: str | None
    application_fee_id: str | None
    stripe_fee_cents: int | None  # None while the balance transaction is not there yet


def fetch_charge_facts(gateway: StripeGateway, payment_intent: str) -> ChargeFacts | None:
    """The PaymentIntent's charge, its transfer, fee and Stripe's fee (None: not charged yet)."""
    intent = _plain(gateway.retrieve_payment_intent_charge(payment_intent))
    charge = intent.get("latest_charge")
    if not isinstance(charge, Mapping) or not charge.get("id"):
        return None
    balance = charge.get("balance_transaction")
    fee = balance.get("fee") if isinstance(balance, Mapping) else None
    return ChargeFacts(
        charge_id=str(charge["id"]),
        transfer_id=_id(charge.get("transfer")),
        application_fee_id=_id(charge.get("application_fee")),
        stripe_fee_cents=int(fee) if isinstance(fee, int) else None,
    )


def _unsynced(session: Session, limit: int) -> list[int]:
    """The oldest sales not read back yet. The query is the partial index's own condition
    (``ix_order_ledger_unsynced``: it holds only these rows); an order that failed or expired
    before it was charged has nothing to read and is marked done, so it leaves the index."""
    rows = session.exec(
        select(col(Order.id), col(Order.status))
        .where(
            col(Order.ledger_synced_at).is_(None),
            col(Order.seller_account_id).is_not(None),
            col(Order.total_cents) > 0,
        )
        .order_by(col(Order.id))
        .limit(limit)
    ).all()
    unpaid = [order_id for order_id, status in rows if status in _NEVER_CHARGED_STATUSES]
    if unpaid:
        session.execute(update(Order).where(col(Order.id).in_(unpaid)).values(ledger_synced_at=utcnow()))
    return [order_id for order_id, status in rows if status in _SYNCED_STATUSES and order_id is not None]


def sync_order(*, gateway: StripeGateway, order_id: int, transaction: Transaction = session_scope) -> bool:
    """Read one sale's charge back and make the fee adjustment it needs. Returns True once the
    order is synced. Opens its own short transactions around the Stripe calls."""
    with transaction() as session:
        order = session.get(Order, order_id)
        if order is None or order.ledger_synced_at is not None or not order.stripe_payment_intent_id:
            return order is not None and order.ledger_synced_at is not None
        payment_intent = order.stripe_payment_intent_id
        adjustment = order.application_fee_cents - order.platform_fee_cents - order.fee_adjusted_cents
        destination, currency, group = order.seller_account_id, order.currency, order.transfer_group
    facts = fetch_charge_facts(gateway, payment_intent)
    if facts is None:
        return False
    if adjustment > 0 and facts.transfer_id and destination and group:
        # A code typed on the hosted page lowered the total after the fee was set: the seller gets
        # the difference between the fee the charge carried and the platform's fee on what was paid.
        gateway.create_transfer(
            amount_cents=adjustment,
            currency=currency,
            destination=destination,
            source_charge=facts.charge_id,
            transfer_group=group,
            idempotency_key=fee_adjustment_key(order_id=order_id),
            metadata={"order_id": str(order_id), "reason": "fee_adjustment"},
        )
    with transaction() as session:
        values: dict[str, Any] = {
            "stripe_charge_id": facts.charge_id,
            "stripe_transfer_id": facts.transfer_id,
            "stripe_application_fee_id": facts.application_fee_id,
            "stripe_fee_cents": facts.stripe_fee_cents,
        }
        if adjustment > 0 and facts.transfer_id:
            # What the adjustment transfer (one per order: its idempotency key) gave: set, not
            # added, so two workers syncing the same sale at once cannot count it twice.
            values["fee_adjusted_cents"] = Order.application_fee_cents - Order.platform_fee_cents
        if facts.stripe_fee_cents is not None:
            values["ledger_synced_at"] = utcnow()
        session.execute(
            update(Order)
            .where(col(Order.id) == order_id, col(Order.ledger_synced_at).is_(None))
            .values(**values)
        )
    return facts.stripe_fee_cents is not None


def sync_pending_orders(
    *, gateway: StripeGateway, limit: int = SYNC_BATCH, transaction: Transaction = session_scope
) -> int:
    """``sync_order`` for the oldest sales not read back yet. Returns how many got synced."""
    with transaction() as session:
        pending = _unsynced(session, limit)
    synced = 0
    for order_id in pending:
        try:
            synced += sync_order(gateway=gateway, order_id=order_id, transaction=transaction)
        except PaymentError as exc:
            logger.warning("ledger.sync_failed", extra={"order_id": order_id, "error": str(exc)[:200]})
    return synced


# --- refunds ---------------------------------------------------------------------------------


def seller_net_cents(order: Order) -> int:
    """What the seller holds of a sale: their share, less what refunds and disputes took back,
    plus what won disputes gave back."""
    return order.seller_share_cents - order.transfer_reversed_cents + order.transfer_returned_cents


def platform_fee_kept_cents(order: Order) -> int:
    """What the platform keeps of a sale's fee: the application fee, less what refunds gave back
    of it, less the adjustment given to the seller (a hosted-page code) and plus what refunds took
    back of that. Disputes move the seller's share, not the fee."""
    return (
        order.application_fee_cents
        - order.fee_refunded_cents
        - order.fee_adjusted_cents
        + order.adjustment_reversed_cents
    )


def platform_fee_kept_sql() -> Any:
    """``platform_fee_kept_cents`` as a SQL expression over the order table (admin totals)."""
    return (
        col(Order.application_fee_cents)
        - col(Order.fee_refunded_cents)
        - col(Order.fee_adjusted_cents)
        + col(Order.adjustment_reversed_cents)
    )


def _reverse_adjustment(gateway: StripeGateway, order: Order, refund_cents: int, refund_id: str) -> int:
    """A refund of a sale whose seller got a fee adjustment (a hosted-page code) takes back the
    same share of that adjustment transfer as ``reverse_transfer`` takes of the charge's own; the
    refund that empties the order takes whatever is left of it."""
    if order.fee_adjusted_cents <= order.adjustment_reversed_cents or not order.transfer_group:
        return 0
    adjustments = [
        t
        for t in (_plain(t) for t in gateway.list_transfers(transfer_group=order.transfer_group))
        if (t.get("metadata") or {}).get("reason") == "fee_adjustment"
    ]
    if not adjustments:
        return 0
    transfer = adjustments[0]
    left = int(transfer.get("amount") or 0) - int(transfer.get("amount_reversed") or 0)
    emptied = order.refunded_cents + refund_cents >= order.total_cents
    share = left if emptied else proportional_cents(refund_cents, order.fee_adjusted_cents, order.total_cents)
    share = min(share, left)
    if share <= 0:
        return 0
    reversal = gateway.reverse_transfer(
        str(transfer["id"]),
        amount_cents=share,
        idempotency_key=f"quantoxbay-adjustment-reversal-{refund_id}",
        metadata={"order_id": str(order.id), "refund": refund_id},
    )
    return int(_plain(reversal).get("amount") or 0)


def record_refund_reversal(*, session: Session, gateway: StripeGateway, order: Order, refund: Any) -> None:
    """After a refund of a destination charge (``reverse_transfer`` and ``refund_application_fee``):
    add the transfer reversal it made (and take back the same share of a fee adjustment), and set
    the fee refunded from the application fee. Called before the order's refunded total moves."""
    assert order.id is not None
    made = _plain(refund)
    reversal = made.get("transfer_reversal")
    reversed_cents = int(reversal.get("amount") or 0) if isinstance(reversal, Mapping) else 0
    adjustment_cents, fee_refunded = 0, order.fee_refunded_cents
    try:
        adjustment_cents = _reverse_adjustment(
            gateway, order, int(made.get("amount") or 0), str(made.get("id"))
        )
        fee_id = order.stripe_application_fee_id
        if fee_id is None and order.stripe_payment_intent_id:
            facts = fetch_charge_facts(gateway, order.stripe_payment_intent_id)
            fee_id = facts.application_fee_id if facts else None
        if fee_id:
            fee_refunded = int(_plain(gateway.retrieve_application_fee(fee_id)).get("amount_refunded") or 0)
    except PaymentError as exc:
        # The refund itself is made and must be kept: what could not be read or taken back now
        # shows as drift in `reconcile`, which names the order.
        logger.warning(
            "ledger.refund_reversal_incomplete", extra={"order_id": order.id, "error": str(exc)[:200]}
        )
    session.execute(
        update(Order)
        .where(col(Order.id) == order.id)
        .values(
            transfer_reversed_cents=Order.transfer_reversed_cents + reversed_cents + adjustment_cents,
            adjustment_reversed_cents=Order.adjustment_reversed_cents + adjustment_cents,
            fee_refunded_cents=fee_refunded,
        )
    )
    session.refresh(order)
    logger.info(
        "ledger.refund_reversed",
        extra={
            "order_id": order.id,
            "transfer_reversed_cents": reversed_cents + adjustment_cents,
            "fee_refunded_cents": fee_refunded,
        },
    )


# --- disputes: tasks written by the event, calls made after it ------------------------------


def queue_dispute_task(*, session: Session, order: Order, dispute_id: str, kind: LedgerTaskKind) -> None:
    """Owe Stripe a call for a dispute of a destination charge (once per dispute and kind)."""
    if order.id is None or not order.seller_account_id or order.total_cents <= 0 or not dispute_id:
        return
    exists = session.exec(
        select(LedgerTask.id).where(LedgerTask.kind == kind.value, LedgerTask.stripe_object_id == dispute_id)
    ).first()
    if exists is None:
        session.add(LedgerTask(order_id=order.id, kind=kind.value, stripe_object_id=dispute_id))
        session.flush()
        _wake_worker()


def _claim(session: Session, now: datetime, limit: int) -> list[int]:
    due = session.exec(
        select(col(LedgerTask.id))
        .where(LedgerTask.status == LedgerTaskStatus.PENDING.value, col(LedgerTask.next_attempt_at) <= now)
        .order_by(col(LedgerTask.id))
        .limit(limit)
    ).all()
    claimed: list[int] = []
    for task_id in due:
        if task_id is None:
            continue
        moved = session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            update(LedgerTask)
            .where(
                col(LedgerTask.id) == task_id,
                col(LedgerTask.status) == LedgerTaskStatus.PENDING.value,
                col(LedgerTask.next_attempt_at) <= now,
            )
            .values(next_attempt_at=now + timedelta(seconds=TASK_LEASE_SECONDS))
            # Compared in SQL only: SQLite hands back naive datetimes that Python cannot compare.
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved == 1:
            claimed.append(task_id)
    return claimed


@dataclass(frozen=True)
class _TaskWork:
    task_id: int
    kind: str
    dispute_id: str
    order_id: int
    seller_id: int | None
    destination: str
    currency: str
    transfer_group: str
    charge_id: str | None
    attempts: int
    reversed_before: int  # DISPUTE_RETURN: what the reversal took (None-safe 0 while not done)
    reversal_done: bool


def _work(session: Session, task_id: int) -> _TaskWork | None:
    task = session.get(LedgerTask, task_id)
    order = session.get(Order, task.order_id) if task is not None else None
    if (
        task is None
        or order is None
        or order.id is None
        or not order.seller_account_id
        or not order.transfer_group
    ):
        return None
    reversal = session.exec(
        select(LedgerTask).where(
            LedgerTask.kind == LedgerTaskKind.DISPUTE_REVERSAL.value,
            LedgerTask.stripe_object_id == task.stripe_object_id,
        )
    ).first()
    seller_id = session.exec(select(OrderItem.seller_id).where(OrderItem.order_id == order.id)).first()
    return _TaskWork(
        task_id=task_id,
        kind=task.kind,
        dispute_id=task.stripe_object_id,
        order_id=order.id,
        seller_id=seller_id,
        destination=order.seller_account_id,
        currency=order.currency,
        transfer_group=order.transfer_group,
        charge_id=order.stripe_charge_id,
        attempts=task.attempts,
        reversed_before=reversal.amount_cents if reversal is not None else 0,
        reversal_done=reversal is not None and reversal.status == LedgerTaskStatus.DONE.value,
    )


class _NotYet(Exception):
    """The task depends on another one that has not run yet."""


def _reverse_sale(gateway: StripeGateway, work: _TaskWork) -> int:
    """Take back what the seller still holds of the sale: every transfer of its group."""
    moved = 0
    for transfer in gateway.list_transfers(transfer_group=work.transfer_group):
        t = _plain(transfer)
        left = int(t.get("amount") or 0) - int(t.get("amount_reversed") or 0)
        if left <= 0 or t.get("destination") != work.destination:
            continue
        key = f"{dispute_task_key(task_id=work.task_id, kind=work.kind)}-{t['id']}"
        reversal = gateway.reverse_transfer(
            str(t["id"]),
            amount_cents=left,
            idempotency_key=key,
            metadata={"order_id": str(work.order_id), "dispute": work.dispute_id},
        )
        moved += int(_plain(reversal).get("amount") or 0)
    return moved


def _return_sale(gateway: StripeGateway, work: _TaskWork) -> int:
    """A won dispute: give the seller back what the reversal took."""
    if not work.reversal_done:
        raise _NotYet("the dispute's reversal has not been made yet")
    if work.reversed_before <= 0 or work.charge_id is None:
        return 0
    gateway.create_transfer(
        amount_cents=work.reversed_before,
        currency=work.currency,
        destination=work.destination,
        source_charge=work.charge_id,
        transfer_group=work.transfer_group,
        idempotency_key=dispute_task_key(task_id=work.task_id, kind=work.kind),
        metadata={"order_id": str(work.order_id), "dispute": work.dispute_id, "reason": "dispute_won"},
    )
    return work.reversed_before


def _finish(session: Session, work: _TaskWork, moved: int) -> None:
    column = (
        "transfer_reversed_cents"
        if work.kind == LedgerTaskKind.DISPUTE_REVERSAL.value
        else "transfer_returned_cents"
    )
    session.execute(
        update(LedgerTask)
        .where(col(LedgerTask.id) == work.task_id)
        .values(
            status=LedgerTaskStatus.DONE.value, amount_cents=moved, attempts=work.attempts + 1, last_error=""
        )
    )
    session.execute(
        update(Order).where(col(Order.id) == work.order_id).values({column: getattr(Order, column) + moved})
    )
    logger.info(
        f"ledger.{work.kind}",
        extra={"order_id": work.order_id, "dispute": work.dispute_id, "amount_cents": moved},
    )
    if work.seller_id is not None:
        notifier.queue(
            session,
            Announcement(
                kind=f"ledger.{work.kind}",
                topics=(seller_topic(work.seller_id),),
                data={"order_id": work.order_id},
            ),
        )


def _retry_later(session: Session, work: _TaskWork, error: str, now: datetime) -> None:
    attempts = work.attempts + 1
    delay = min(TASK_BACKOFF_SECONDS * 2 ** (attempts - 1), TASK_BACKOFF_MAX_SECONDS)
    status = (
        LedgerTaskStatus.FAILED.value if attempts >= TASK_MAX_ATTEMPTS else LedgerTaskStatus.PENDING.value
    )
    session.execute(
        update(LedgerTask)
        .where(col(LedgerTask.id) == work.task_id)
        .values(
            attempts=attempts,
            last_error=error[:1000],
            status=status,
            next_attempt_at=now + timedelta(seconds=delay),
        )
    )
    log = logger.error if status == LedgerTaskStatus.FAILED.value else logger.warning
    log(
        "ledger.task_failed",
        extra={"task_id": work.task_id, "kind": work.kind, "attempts": attempts, "error": error[:200]},
    )


def run_due_tasks(
    *,
    gateway: StripeGateway,
    now: datetime | None = None,
    limit: int = 20,
    transaction: Transaction = session_scope,
) -> int:
    """Make the Stripe calls that are due. Returns how many tasks finished."""
    now = now or utcnow()
    with transaction() as session:
        claimed = _claim(session, now, limit)
    done = 0
    for task_id in claimed:
        with transaction() as session:
            work = _work(session, task_id)
        if work is None:
            continue
        try:
            if work.kind == LedgerTaskKind.DISPUTE_REVERSAL.value:
                moved = _reverse_sale(gateway, work)
            else:
                moved = _return_sale(gateway, work)
        except (PaymentError, _NotYet) as exc:
            with transaction() as session:
                _retry_later(session, work, str(exc) or type(exc).__name__, now)
            continue
        with transaction() as session:
            _finish(session, work, moved)
        done += 1
    return done


def retry_failed_tasks(*, session: Session) -> int:
    """Put tasks that gave up back in the queue (``reconcile --retry``)."""
    return int(
        session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            update(LedgerTask)
            .where(col(LedgerTask.status) == LedgerTaskStatus.FAILED.value)
            .values(status=LedgerTaskStatus.PENDING.value, attempts=0, next_attempt_at=utcnow())
        ).rowcount
    )


# --- the worker -------------------------------------------------------------------------------

_wake = threading.Event()
_worker_lock = threading.Lock()
_worker: threading.Thread | None = None
#: Seconds between passes when nothing wakes the worker.
WORKER_INTERVAL_SECONDS = 3.0


def _wake_worker() -> None:
    _wake.set()


def run_once(*, gateway: StripeGateway, transaction: Transaction = session_scope) -> tuple[int, int]:
    """One pass: sync sales, then run due tasks. Returns (synced, tasks done)."""
    return (
        sync_pending_orders(gateway=gateway, transaction=transaction),
        run_due_tasks(gateway=gateway, transaction=transaction),
    )


def start_worker(gateway_factory: Any) -> None:
    """Start the process's ledger worker (idempotent): a daemon thread that syncs sales and runs
    due tasks every few seconds, sooner when a task is queued."""
    global _worker
    with _worker_lock:
        if _worker is not None and _worker.is_alive():
            return

        def loop() -> None:
            while True:
                _wake.wait(WORKER_INTERVAL_SECONDS)
                _wake.clear()
                try:
                    run_once(gateway=gateway_factory())
                except Exception:  # keep the worker alive; the next pass retries
                    logger.exception("ledger.worker_error")

        _worker = threading.Thread(target=loop, name="ledger-worker", daemon=True)
        _worker.start()


# --- reconcile ------------------------------------------------------------------------------


@dataclass
class Drift:
    order_id: int
    what: str
    ledger_cents: int
    stripe_cents: int

    @property
    def cents(self) -> int:
        return abs(self.ledger_cents - self.stripe_cents)

    def __str__(self) -> str:
        return f"order #{self.order_id}: {self.what}: ledger {self.ledger_cents}, Stripe {self.stripe_cents}"


@dataclass
class ReconcileReport:
    orders: int = 0
    drifts: list[Drift] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # orders Stripe could not be asked about

    @property
    def drift_cents(self) -> int:
        return sum(d.cents for d in self.drifts)

    @property
    def ok(self) -> bool:
        return not self.drifts and not self.unavailable


def _orders_to_reconcile(session: Session, order_ids: Iterable[int] | None) -> list[Order]:
    query = select(Order).where(
        col(Order.seller_account_id).is_not(None),
        col(Order.stripe_payment_intent_id).is_not(None),
        col(Order.total_cents) > 0,
        col(Order.status).in_(_SYNCED_STATUSES),
    )
    if order_ids is not None:
        query = query.where(col(Order.id).in_(list(order_ids)))
    return list(session.exec(query.order_by(col(Order.id))).all())


def reconcile_order(gateway: StripeGateway, order: Order) -> list[Drift]:
    """The differences between one order's ledger and Stripe's charge, application fee and
    transfers (every transfer of the sale's group, with their reversals)."""
    assert order.id is not None and order.stripe_payment_intent_id and order.transfer_group
    facts = fetch_charge_facts(gateway, order.stripe_payment_intent_id)
    drifts: list[Drift] = []

    def compare(what: str, ledger: int, stripe: int) -> None:
        if ledger != stripe:
            assert order.id is not None
            drifts.append(Drift(order.id, what, ledger, stripe))

    if facts is None:
        compare("charge amount", order.total_cents, 0)
        return drifts
    charge = _plain(gateway.retrieve_charge(facts.charge_id))
    compare("charge amount", order.total_cents, int(charge.get("amount") or 0))
    stripe_refunded = int(charge.get("amount_refunded") or 0)
    if charge.get("disputed") and order.status == OrderStatus.REFUNDED.value:
        stripe_refunded = int(charge.get("amount") or 0)  # a lost dispute took it all back
    compare("refunded", order.refunded_cents, stripe_refunded)
    fee = charge.get("application_fee")
    fee = fee if isinstance(fee, Mapping) else {}
    compare("application fee", order.application_fee_cents, int(fee.get("amount") or 0))
    compare("application fee refunded", order.fee_refunded_cents, int(fee.get("amount_refunded") or 0))
    transfers = [_plain(t) for t in gateway.list_transfers(transfer_group=order.transfer_group)]
    compare(
        "transferred to the seller",
        order.total_cents
        - order.application_fee_cents
        + order.fee_adjusted_cents
        + order.transfer_returned_cents,
        sum(int(t.get("amount") or 0) for t in transfers),
    )
    compare(
        "reversed from the seller",
        order.transfer_reversed_cents,
        sum(int(t.get("amount_reversed") or 0) for t in transfers),
    )
    return drifts


def reconcile(
    *, session: Session, gateway: StripeGateway, order_ids: Iterable[int] | None = None
) -> ReconcileReport:
    """Compare every Connect order's ledger with Stripe (``python -m quantoxbay reconcile``)."""
    report = ReconcileReport()
    for order in _orders_to_reconcile(session, order_ids):
        report.orders += 1
        try:
            report.drifts.extend(reconcile_order(gateway, order))
        except PaymentError as exc:
            report.unavailable.append(f"order #{order.id}: {exc}")
    return report
