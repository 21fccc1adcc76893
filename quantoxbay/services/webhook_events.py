"""Webhook event processing: each verified Stripe event recorded once and handed to its service.

dj-stripe's order: every event is untrusted until its signature checks out
(``payments.signature.verify_event``, in the route); then it is
recorded once by id (a unique constraint) and processed in the same transaction. A failure
rolls the transaction back, is recorded separately, and answers 5xx so Stripe retries.

New events (one delivery, or a batch of them: ``process_events``) are recorded with one
``INSERT ... ON CONFLICT (stripe_event_id) DO NOTHING RETURNING stripe_event_id`` whose rows
already carry their outcome: they commit with the handlers' writes or not at all, so no one
ever sees one half done, and no savepoint or second UPDATE is needed. A concurrent delivery of
the same event waits for that insert's transaction (PostgreSQL) or for the write lock
(SQLite), then finds the row.

A Checkout Session fulfilment refuses (not one the shop sold: services.fulfillment) is no
failure: its event is answered 2xx and kept with outcome "rejected" (or "ignored" when it is not
the shop's at all) and the reason; such sessions leave the batch for the one-by-one path.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from quantoxbay.db import insert_rows
from quantoxbay.models import WebhookEvent, WebhookOutcome, utcnow
from quantoxbay.services import charge_events, connect, fulfillment, payouts_events, refunds
from quantoxbay.services.notifier import Announcement


@dataclass
class ProcessOutcome:
    duplicate: bool
    outcome: str
    announcements: list[Announcement] = field(default_factory=list)
    reason: str = ""  # why fulfilment rejected (or ignored) the event's Checkout Session


#: Outcomes after which a later delivery of the same event is a duplicate (``failed`` runs again).
SETTLED_OUTCOMES = (
    WebhookOutcome.PROCESSED.value,
    WebhookOutcome.IGNORED.value,
    WebhookOutcome.REJECTED.value,
)

#: A handler gets the whole verified event (its ``data.object``, and its id and ``created``).
Handler = Callable[[Session, dict[str, Any]], "list[Announcement] | fulfillment.FulfillmentResult"]


def _fulfil(session: Session, event: dict[str, Any]) -> fulfillment.FulfillmentResult:
    return fulfillment.fulfill_checkout(session=session, checkout_session=event["data"]["object"])


def _fail(session: Session, event: dict[str, Any]) -> fulfillment.FulfillmentResult:
    return fulfillment.fail_checkout(session=session, checkout_session=event["data"]["object"])


def _run(session: Session, event: dict[str, Any]) -> ProcessOutcome:
    """Run the event's handler: "processed", or "ignored" (no handler; a Checkout Session that is
    not the shop's), or "rejected" (a session the shop did not sell as paid for: no order)."""
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return ProcessOutcome(False, WebhookOutcome.IGNORED.value)
    done = handler(session, event)
    if not isinstance(done, fulfillment.FulfillmentResult):
        return ProcessOutcome(False, WebhookOutcome.PROCESSED.value, done)
    if done.status in (fulfillment.REJECTED, fulfillment.IGNORED):
        return ProcessOutcome(False, done.status, [], done.reason[:500])
    return ProcessOutcome(False, WebhookOutcome.PROCESSED.value, done.announcements())


def _nothing(_session: Session, _event: dict[str, Any]) -> list[Announcement]:
    return []


# --- post-purchase: refunds and disputes (services.refunds) ---
def _charge_event(session: Session, event: dict[str, Any]) -> list[Announcement]:
    """Refunds and disputes, in any order: kept until their order exists (services.charge_events)."""
    return charge_events.on_event(session=session, event=event)


def _refund_failed(session: Session, event: dict[str, Any]) -> list[Announcement]:
    return refunds.on_refund_failed(session=session, refund=event["data"]["object"])


# --- Connect: sellers' accounts and payouts (the Connect endpoint) ---
def _account_updated(session: Session, event: dict[str, Any]) -> list[Announcement]:
    """Newer facts win: an older ``account.updated`` arriving late changes nothing."""
    connect.apply_account_update(
        session=session, account=event["data"]["object"], stripe_updated=int(event.get("created") or 0)
    )
    return []  # queued on the session by the service


def _payout(session: Session, event: dict[str, Any]) -> list[Announcement]:
    return payouts_events.on_payout_event(session=session, event=event)


HANDLERS: dict[str, Handler] = {
    # The payload is signed by Stripe and carries payment_status, amounts and our ids:
    # fulfil from it instead of retrieving the session (Stripe allows 25-100 requests/s).
    "checkout.session.completed": _fulfil,
    "checkout.session.async_payment_succeeded": _fulfil,
    "checkout.session.async_payment_failed": _fail,
    # No order exists for an unpaid session, so an expiry has nothing to undo.
    "checkout.session.expired": _nothing,
    # post-purchase: the charge's amount_refunded is the total refunded so far
    "charge.refunded": _charge_event,
    "refund.failed": _refund_failed,
    "charge.dispute.created": _charge_event,
    "charge.dispute.closed": _charge_event,
    # Connect endpoint
    "account.updated": _account_updated,
    "payout.created": _payout,
    "payout.updated": _payout,
    "payout.paid": _payout,
    "payout.failed": _payout,
    "balance.available": _payout,
}


_EVENT = WebhookEvent.__table__  # type: ignore[attr-defined]

#: Event types whose paid Checkout Sessions are fulfilled together (one statement per table).
_FULFIL_TOGETHER = frozenset(t for t, handler in HANDLERS.items() if handler is _fulfil)


def process_event(*, session: Session, event: dict[str, Any], raw: str) -> ProcessOutcome:
    """Record the event once and run its handler in the caller's transaction."""
    return process_events(session=session, deliveries=[(event, raw)])[0]


def process_events(*, session: Session, deliveries: list[tuple[dict[str, Any], str]]) -> list[ProcessOutcome]:
    """``process_event`` for several deliveries (event, raw body) in the caller's transaction, in
    one multi-row INSERT for the events and, for the new paid Checkout Sessions among them, one
    multi-row statement per table (``fulfillment.fulfill_new_paid_checkouts``). Any order of
    concurrent deliveries is a valid one, so: new paid sessions first, then the other new
    events' handlers, then the repeats (an event id seen before, or twice in this batch)."""
    conn = session.connection()
    first: dict[str, int] = {}  # event id -> its first delivery in this batch
    for index, (event, _raw) in enumerate(deliveries):
        first.setdefault(event["id"], index)
    now = utcnow()
    rows = [
        {"stripe_event_id": event["id"], "type": event["type"], "payload": raw, "error": "", "reason": "",
         "outcome": WebhookOutcome.PROCESSED.value if event["type"] in HANDLERS else WebhookOutcome.IGNORED.value, "received_at": now, "processed_at": now}
        for event, raw in sorted((deliveries[i] for i in first.values()), key=lambda d: d[0]["id"])
    ]  # fmt: skip
    rows_outcome = {row["stripe_event_id"]: row["outcome"] for row in rows}
    inserted = insert_rows(
        conn, _EVENT, rows, skip_conflicts_on=("stripe_event_id",), returning=("stripe_event_id",)
    )
    new_ids = {event_id for (event_id,) in inserted}

    outcomes: dict[int, ProcessOutcome] = {}
    together: dict[str, int] = {}  # checkout session id -> delivery index
    handle, repeats = [], []
    for index, (event, _raw) in enumerate(deliveries):
        if first[event["id"]] != index or event["id"] not in new_ids:
            repeats.append(index)
            continue
        obj = event["data"]["object"]
        if event["type"] in _FULFIL_TOGETHER and fulfillment.is_paid(obj) and obj.get("id") not in together:
            together[obj.get("id")] = index
        else:
            handle.append(index)
    if together:
        results = fulfillment.fulfill_new_paid_checkouts(
            session=session, checkout_sessions=[deliveries[i][0]["data"]["object"] for i in together.values()]
        )
        for session_id, index in together.items():
            if session_id in results:
                outcomes[index] = ProcessOutcome(
                    False, WebhookOutcome.PROCESSED.value, results[session_id].announcements()
                )
            else:  # its order existed already (the success page was first): the one-by-one path decides
                handle.append(index)
    for index in handle:
        event = deliveries[index][0]
        outcomes[index] = outcome = _run(session, event)
        if outcome.outcome != rows_outcome[event["id"]]:  # a refused session: rare, one UPDATE each
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.stripe_event_id == event["id"])
                .values(outcome=outcome.outcome, reason=outcome.reason)
            )
    for index in repeats:
        outcomes[index] = _process_repeat(session, deliveries[index][0])
    return [outcomes[i] for i in range(len(deliveries))]


def _process_repeat(session: Session, event: dict[str, Any]) -> ProcessOutcome:
    """An event whose row exists: a duplicate, unless its earlier delivery failed."""
    existing = session.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == event["id"])).one()
    if existing.outcome in SETTLED_OUTCOMES:
        return ProcessOutcome(duplicate=True, outcome=existing.outcome, reason=existing.reason)
    # An earlier delivery failed (or an admin sends it again): process again.
    outcome = _run(session, event)
    existing.outcome = outcome.outcome
    existing.reason = outcome.reason
    existing.error = ""
    existing.processed_at = utcnow()
    session.add(existing)
    session.flush()
    return outcome


def record_failure(*, session: Session, event: dict[str, Any], raw: str, error: BaseException) -> None:
    """Keep the traceback of a failed event (in its own transaction) for the admin panel."""
    text = "".join(traceback.format_exception(error))[-8000:]
    row = session.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == event["id"])).first()
    if row is None:
        row = WebhookEvent(stripe_event_id=event["id"], type=event["type"], payload=raw)
    row.outcome, row.error = WebhookOutcome.FAILED.value, text
    session.add(row)
