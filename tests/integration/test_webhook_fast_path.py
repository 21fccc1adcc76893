"""The webhook's fast path (a new event for a new Checkout Session, in Core statements) writes
exactly the rows the ORM path writes, and duplicates and races still make one order; on SQLite
and on PostgreSQL."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from quantoxbay.db import make_engine, session_scope
from quantoxbay.models import (
    DownloadGrant,
    MailOutbox,
    Order,
    OrderItem,
    Product,
    Role,
    SalesRollup,
    WebhookEvent,
)
from quantoxbay.services import analytics, checkout, fulfillment
from quantoxbay.services.analytics import slot_of
from quantoxbay.services.webhook_events import process_event, process_events, record_failure
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session, event

# Columns that differ between two sales by nature (keys, ids from Stripe, clocks).
VOLATILE = {"id", "order_id", "product_id", "stripe_session_id", "stripe_payment_intent_id", "stripe_event_id",
            "payload", "created_at", "paid_at", "next_attempt_at", "received_at", "processed_at", "slot",
            "transfer_group"}  # fmt: skip


def _process(session: Session, evt: dict[str, Any]) -> Any:
    return process_event(session=session, event=evt, raw=json.dumps(evt))


def _rows(session: Session, order_id: int) -> dict[str, Any]:
    """Every row one sale wrote, minus the volatile columns."""
    order = session.get(Order, order_id)
    assert order is not None and order.paid_at is not None
    items = session.exec(select(OrderItem).where(OrderItem.order_id == order_id)).all()
    grants = session.exec(select(DownloadGrant).where(DownloadGrant.order_id == order_id)).all()
    mail = session.exec(select(MailOutbox).where(MailOutbox.order_id == order_id)).all()
    product_ids = {i.product_id for i in items}
    rollup = session.exec(select(SalesRollup).where(SalesRollup.product_id.in_(product_ids))).all()  # type: ignore[attr-defined]
    assert [r.slot for r in rollup] == [slot_of(i.created_at) for i in items]
    assert all(i.created_at == order.created_at for i in items)

    def strip(row: Any) -> dict[str, Any]:
        return {k: v for k, v in row.model_dump().items() if k not in VOLATILE}

    return {
        "order": strip(order),
        "items": [strip(i) for i in items],
        "grants": [strip(g) for g in grants],
        "mail": [strip(m) for m in mail],
        "rollup": [strip(r) for r in rollup],
        "sales_count": session.exec(select(Product.sales_count).where(Product.id.in_(product_ids))).all(),  # type: ignore[union-attr]
    }


def test_fast_and_orm_paths_write_identical_rows(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    fast_product = create_published_product(db, storage, seller, title="Same title", price_cents=1500)
    orm_product = create_published_product(db, storage, seller, title="Same title", price_cents=1500)

    # Fast path: a new event for a new session, paid at once.
    fast_cs = checkout_session(db, buyer_id=buyer.id, product_id=fast_product.id, amount=1200, discount=300)
    fast_evt = event(fast_cs)
    outcome = _process(db, fast_evt)
    assert (outcome.duplicate, outcome.outcome, len(outcome.announcements)) == (False, "processed", 1)

    # ORM path: the order exists already (an async payment left it pending; its first success
    # delivery failed and was recorded), so the conditional UPDATE and _grant write the rest.
    orm_cs = checkout_session(db, buyer_id=buyer.id, product_id=orm_product.id, amount=1200, discount=300,
                              payment_status="unpaid", promotion_code=fast_cs["discounts"][0]["promotion_code"])  # fmt: skip
    _process(db, event(orm_cs))
    paid_cs = orm_cs | {"payment_status": "paid", "payment_intent": fast_cs["payment_intent"]}
    orm_evt = event(paid_cs, type_="checkout.session.async_payment_succeeded")
    record_failure(session=db, event=orm_evt, raw=json.dumps(orm_evt), error=RuntimeError("first try"))
    db.flush()
    outcome = _process(db, orm_evt)
    assert (outcome.duplicate, outcome.outcome, len(outcome.announcements)) == (False, "processed", 1)

    fast_order = db.exec(select(Order).where(Order.stripe_session_id == fast_cs["id"])).one()
    orm_order = db.exec(select(Order).where(Order.stripe_session_id == orm_cs["id"])).one()
    fast, orm = _rows(db, fast_order.id), _rows(db, orm_order.id)  # type: ignore[arg-type]
    assert fast == orm
    assert fast["order"]["status"] == "paid" and fast["order"]["total_cents"] == 1200
    assert len(fast["items"]) == len(fast["grants"]) == len(fast["mail"]) == len(fast["rollup"]) == 1
    assert fast["sales_count"] == [1]
    assert (
        fast_order.stripe_payment_intent_id == orm_order.stripe_payment_intent_id == fast_cs["payment_intent"]
    )

    events = {
        e.stripe_event_id: e
        for e in db.exec(
            select(WebhookEvent).where(WebhookEvent.stripe_event_id.in_([fast_evt["id"], orm_evt["id"]]))
        )
    }
    for e in events.values():
        assert (e.outcome, e.error, e.processed_at is not None) == ("processed", "", True)
    assert events[fast_evt["id"]].payload == json.dumps(fast_evt)

    # The incremental rollup equals one rebuilt from the orders.
    before = sorted((r.product_id, r.slot, r.orders, r.items, r.units, r.gross_cents, r.discount_cents)
                    for r in db.exec(select(SalesRollup).where(SalesRollup.seller_id == seller.id)))  # fmt: skip
    analytics.rebuild_rollup(session=db, seller_id=seller.id)
    after = sorted((r.product_id, r.slot, r.orders, r.items, r.units, r.gross_cents, r.discount_cents)
                   for r in db.exec(select(SalesRollup).where(SalesRollup.seller_id == seller.id)))  # fmt: skip
    assert before == after


def test_every_way_an_order_becomes_paid_writes_its_effects_through_one_function(
    db: Session, storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grants, sales counts, receipt rows and the rollup are written by ``fulfillment._grant``
    alone, whichever way the order became paid: the webhook's batch, the success page's single
    session, an order left pending then paid. A path that writes them any other way fails here."""
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller)
    other = create_published_product(db, storage, seller)
    passed: list[Any] = []
    grant = fulfillment._grant

    def spy(conn: Any, paid: list[Any]) -> None:
        passed.extend(paid)
        grant(conn, paid)

    monkeypatch.setattr(fulfillment, "_grant", spy)
    batch = [
        event(checkout_session(db, buyer_id=buyer.id, product_id=p.id)) for p in (product, other, product)
    ]
    outcomes = process_events(session=db, deliveries=[(e, json.dumps(e)) for e in batch])
    assert [len(o.announcements) for o in outcomes] == [1, 1, 1]
    alone = checkout_session(db, buyer_id=buyer.id, product_id=other.id)
    assert fulfillment.fulfill_checkout(session=db, checkout_session=alone).changed
    pending = checkout_session(db, buyer_id=buyer.id, product_id=product.id, payment_status="unpaid")
    assert fulfillment.fulfill_checkout(session=db, checkout_session=pending).status == "pending"
    assert len(passed) == 4  # nothing is granted for a pending order
    paid = fulfillment.fulfill_checkout(session=db, checkout_session=pending | {"payment_status": "paid"})
    assert paid.changed and passed[-1].order_id == paid.order_id

    orders = db.exec(select(Order.id).where(Order.buyer_id == buyer.id, Order.status == "paid")).all()
    assert len(orders) == 5 and sorted(p.order_id for p in passed) == sorted(orders)
    grants = db.exec(select(DownloadGrant.order_id, DownloadGrant.product_id).where(DownloadGrant.buyer_id == buyer.id)).all()  # fmt: skip
    assert sorted(grants) == sorted((p.order_id, p.sale.product_id) for p in passed)
    mail = db.exec(select(MailOutbox.order_id).where(MailOutbox.order_id.in_(orders))).all()  # type: ignore[union-attr]
    assert sorted(mail) == sorted(orders)
    sales = dict(db.exec(select(Product.id, Product.sales_count).where(Product.seller_id == seller.id)).all())
    assert sales == {product.id: 3, other.id: 2}
    rollup = db.exec(select(SalesRollup).where(SalesRollup.seller_id == seller.id)).all()
    assert sum(r.items for r in rollup) == sum(r.orders for r in rollup) == len(passed)
    assert sum(r.gross_cents for r in rollup) == sum(p.sale.total_cents for p in passed)


def test_duplicate_event_on_the_fast_path_changes_nothing(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product = create_published_product(db, storage, seller)
    evt = event(checkout_session(db, buyer_id=buyer.id, product_id=product.id))
    assert _process(db, evt).announcements
    again = _process(db, evt)
    assert (again.duplicate, again.outcome, again.announcements) == (True, "processed", [])
    twin = _process(db, event(evt["data"]["object"]))  # Stripe's second Event object for one change
    assert (twin.duplicate, twin.outcome, twin.announcements) == (False, "processed", [])
    assert len(db.exec(select(Order).where(Order.buyer_id == buyer.id)).all()) == 1
    assert len(db.exec(select(MailOutbox).join(Order).where(Order.buyer_id == buyer.id)).all()) == 1
    assert db.exec(select(Product.sales_count).where(Product.id == product.id)).one() == 1


@pytest.fixture
def committed_sale(engine: Engine, tmp_path):
    from quantoxbay.storage.local import LocalStorage

    with Session(engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product = create_published_product(s, LocalStorage(tmp_path / "files"), seller)
        s.commit()
        return seller.id, buyer.id, product.id


def _count(engine: Engine, model, *where) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def _not_a_session(buyer_id: int) -> dict[str, Any]:
    """An event whose processing fails (its object is no Checkout Session): the handler raises."""
    return event({**checkout_session(None, buyer_id=buyer_id, product_id=1), "id": "pi_not_a_session"})


def _race(engine: Engine, cs: dict[str, Any]) -> list[str]:
    """Five deliveries of one event, five of its twin and two success-page calls, all at once,
    each in its own transaction; returns the two event ids."""
    evt, twin = event(cs), event(cs)
    barrier = threading.Barrier(12)
    changed: list[bool] = []
    errors: list[BaseException] = []

    def webhook(e: dict[str, Any]) -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                changed.append(bool(_process(s, e).announcements))
        except BaseException as exc:
            errors.append(exc)

    def success_page() -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                changed.append(fulfillment.fulfill_checkout(session=s, checkout_session=cs).changed)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=webhook, args=(e,)) for e in [evt, twin] * 5]
    threads += [threading.Thread(target=success_page) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(changed) == [False] * 11 + [True]  # exactly one caller announces the order
    return [evt["id"], twin["id"]]


@pytest.mark.timeout(120)
def test_racing_deliveries_twins_and_success_page_make_one_order(engine: Engine, committed_sale) -> None:
    seller_id, buyer_id, product_id = committed_sale
    for _ in range(3):
        cs = checkout_session(engine, buyer_id=buyer_id, product_id=product_id)
        event_ids = _race(engine, cs)
        assert _count(engine, Order, Order.stripe_session_id == cs["id"]) == 1
        assert _count(engine, WebhookEvent, WebhookEvent.stripe_event_id.in_(event_ids)) == 2  # type: ignore[attr-defined]
    assert _count(engine, Order, Order.buyer_id == buyer_id) == 3
    assert _count(engine, OrderItem, OrderItem.seller_id == seller_id) == 3
    assert _count(engine, DownloadGrant, DownloadGrant.buyer_id == buyer_id) == 3
    assert _count(engine, MailOutbox, MailOutbox.kind == "receipt", MailOutbox.order_id.in_(  # type: ignore[union-attr]
        select(Order.id).where(Order.buyer_id == buyer_id))) == 3  # fmt: skip
    with Session(engine) as s:
        assert s.get(Product, product_id).sales_count == 3  # type: ignore[union-attr]
        rollup = s.exec(select(SalesRollup).where(SalesRollup.product_id == product_id)).all()
        assert sum(r.orders for r in rollup) == sum(r.items for r in rollup) == 3


def test_a_broken_session_writes_nothing_and_answers_an_error(engine: Engine, committed_sale) -> None:
    _, buyer_id, _ = committed_sale
    evt = _not_a_session(buyer_id)
    with pytest.raises(fulfillment.MalformedCheckoutSession), session_scope(engine) as s:
        _process(s, evt)
    assert _count(engine, WebhookEvent, WebhookEvent.stripe_event_id == evt["id"]) == 0
    assert _count(engine, Order, Order.stripe_session_id == evt["data"]["object"]["id"]) == 0


def test_group_commit_batch_with_a_bad_event_commits_the_good_ones(
    engine: Engine, committed_sale, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route's writer processes waiting deliveries in one transaction; one failing event makes
    the batch run again one event per transaction, so only that event fails."""
    from quantoxbay.api import webhook as api_webhook

    monkeypatch.setattr("quantoxbay.db.get_engine", lambda: engine)
    _, buyer_id, product_id = committed_sale
    good = [event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id)) for _ in range(3)]
    bad = _not_a_session(buyer_id)
    events = [good[0], bad, good[1], good[2], good[0]]
    jobs = [api_webhook._Job(e, json.dumps(e), None, None) for e in events]  # type: ignore[arg-type]
    results = api_webhook._process_batch(jobs)
    assert isinstance(results[1], fulfillment.MalformedCheckoutSession)
    outcomes = [
        (r.duplicate, r.outcome, len(r.announcements)) for r in results if not isinstance(r, Exception)
    ]
    assert outcomes == [(False, "processed", 1)] * 3 + [(True, "processed", 0)]
    for e in good:
        assert (
            _count(
                engine, Order, Order.stripe_session_id == e["data"]["object"]["id"], Order.status == "paid"
            )
            == 1
        )
    assert _count(engine, WebhookEvent, WebhookEvent.stripe_event_id == bad["id"]) == 0

    # A batch without failures commits once, with the same rows.
    more = [event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id)) for _ in range(4)]
    results = api_webhook._process_batch([api_webhook._Job(e, json.dumps(e), None, None) for e in more])  # type: ignore[arg-type]
    assert [len(r.announcements) for r in results] == [1, 1, 1, 1]  # type: ignore[union-attr]
    assert _count(engine, Order, Order.stripe_session_id.in_([e["data"]["object"]["id"] for e in more])) == 4  # type: ignore[attr-defined]


def test_one_batch_of_every_kind_of_delivery(db: Session, storage) -> None:
    """process_events on a batch that mixes new paid sessions (written together), a repeat inside
    the batch, a twin event, an event seen before, one that failed before, an order the success
    page made first, an unpaid session and an unhandled type: each gets what it would get alone."""
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    product, other = (
        create_published_product(db, storage, seller),
        create_published_product(db, storage, seller),
    )
    new_a, new_b = (event(checkout_session(db, buyer_id=buyer.id, product_id=p.id)) for p in (product, other))
    twin_a = event(new_a["data"]["object"], type_="checkout.session.async_payment_succeeded")
    seen = event(checkout_session(db, buyer_id=buyer.id, product_id=product.id))
    _process(db, seen)
    failed = event(checkout_session(db, buyer_id=buyer.id, product_id=product.id))
    record_failure(session=db, event=failed, raw=json.dumps(failed), error=RuntimeError("first try"))
    page_cs = checkout_session(db, buyer_id=buyer.id, product_id=other.id)
    assert fulfillment.fulfill_checkout(
        session=db, checkout_session=page_cs
    ).changed  # the success page was first
    page_evt = event(page_cs)
    unpaid = event(checkout_session(db, buyer_id=buyer.id, product_id=product.id, payment_status="unpaid"))
    unhandled = event({"id": "cus_1", "object": "customer"}, type_="customer.created")
    db.flush()

    batch = [new_a, new_b, new_a, twin_a, seen, failed, page_evt, unpaid, unhandled]
    outcomes = process_events(session=db, deliveries=[(e, json.dumps(e)) for e in batch])
    got = [(o.duplicate, o.outcome, len(o.announcements)) for o in outcomes]
    assert got == [
        (False, "processed", 1),  # new_a
        (False, "processed", 1),  # new_b
        (True, "processed", 0),  # new_a again
        (False, "processed", 0),  # its twin: the order exists
        (True, "processed", 0),  # seen before
        (False, "processed", 1),  # failed before: processed now
        (False, "processed", 0),  # the success page made the order
        (False, "processed", 1),  # unpaid (a bank payment on its way): a pending order
        (False, "ignored", 0),
    ]
    sessions = [e["data"]["object"]["id"] for e in (new_a, new_b, seen, failed, page_evt)]
    orders = db.exec(select(Order).where(Order.stripe_session_id.in_(sessions))).all()  # type: ignore[attr-defined]
    assert sorted(o.stripe_session_id for o in orders) == sorted(sessions)
    assert {o.status for o in orders} == {"paid"}
    for order in orders:
        rows = _rows(db, order.id)  # type: ignore[arg-type]
        assert len(rows["items"]) == len(rows["grants"]) == len(rows["mail"]) == 1
    pending = db.exec(select(Order).where(Order.stripe_session_id == unpaid["data"]["object"]["id"])).one()
    assert pending.status == "pending"
    assert not db.exec(select(DownloadGrant).where(DownloadGrant.order_id == pending.id)).all()
    sales = dict(db.exec(select(Product.id, Product.sales_count).where(Product.seller_id == seller.id)).all())
    assert sales == {product.id: 3, other.id: 2}  # new_a, seen, failed; new_b, the success page's
    stored = {e.stripe_event_id: e for e in db.exec(select(WebhookEvent))}
    assert {stored[e["id"]].outcome for e in batch[:-1]} == {"processed"}
    assert stored[unhandled["id"]].outcome == "ignored" and stored[failed["id"]].error == ""
    # The rollup built batch by batch equals one rebuilt from the orders.
    before = sorted((r.product_id, r.slot, r.orders, r.items, r.gross_cents)
                    for r in db.exec(select(SalesRollup).where(SalesRollup.seller_id == seller.id)))  # fmt: skip
    analytics.rebuild_rollup(session=db, seller_id=seller.id)
    after = sorted((r.product_id, r.slot, r.orders, r.items, r.gross_cents)
                   for r in db.exec(select(SalesRollup).where(SalesRollup.seller_id == seller.id)))  # fmt: skip
    assert before == after


def test_the_writers_own_connection_survives_a_failed_batch_and_a_database_switch(
    engine: Engine, committed_sale, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer keeps one connection between batches; a failed batch drops it (the one-by-one
    retry goes through the pool), the next batch reconnects, and a new engine gets a new one."""
    from quantoxbay.api import webhook as api_webhook

    monkeypatch.setattr("quantoxbay.db.get_engine", lambda: engine)
    _, buyer_id, product_id = committed_sale
    writer = api_webhook._WriterConnection()

    def batch(*events: dict[str, Any]) -> list[Any]:
        return api_webhook._process_batch(
            [api_webhook._Job(e, json.dumps(e), None, None) for e in events],  # type: ignore[arg-type]
            writer,
        )

    first = event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id))
    assert [len(r.announcements) for r in batch(first)] == [1]
    kept = writer._conn
    assert kept is not None and not kept.closed
    second = event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id))
    batch(second)
    assert writer._conn is kept  # no checkout per batch
    driver_connection = kept.connection.dbapi_connection
    if engine.dialect.name == "postgresql":
        # Its statements may keep generic plans; the pool's connections plan every execution.
        assert kept.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "auto"
        kept.rollback()
        with engine.connect() as pooled:
            assert pooled.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_custom_plan"

    bad = _not_a_session(buyer_id)
    third = event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id))
    results = batch(bad, third)
    assert isinstance(results[0], fulfillment.MalformedCheckoutSession)
    assert len(results[1].announcements) == 1
    assert writer._conn is None and kept.closed  # dropped after the failure
    if engine.dialect.name == "postgresql":
        assert driver_connection.closed  # closed for real, never back in the pool with its setting

    fourth = event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id))
    assert [len(r.announcements) for r in batch(fourth)] == [1]
    assert writer._conn is not None and writer._conn.engine is engine

    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        monkeypatch.setattr("quantoxbay.db.get_engine", lambda: other)
        previous = writer._conn
        batch(event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id)))
        assert previous.closed and writer._conn.engine is other
    finally:
        writer.close()
        other.dispose()
    for e in (first, second, third, fourth):
        assert _count(engine, Order, Order.stripe_session_id == e["data"]["object"]["id"]) == 1
    assert _count(engine, WebhookEvent, WebhookEvent.stripe_event_id == bad["id"]) == 0


def test_refused_sessions_in_a_batch_are_rejected_and_the_good_ones_commit(
    engine: Engine, committed_sale, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: sessions the shop never sold (made with the key: $0.50 instead of the price, or none
    of ours at all) in the group commit. The good ones are written together as before; the refused
    ones go the one-by-one way, grant nothing, and their events say why (2xx: nothing to retry)."""
    from quantoxbay.api import webhook as api_webhook

    monkeypatch.setattr("quantoxbay.db.get_engine", lambda: engine)
    _, buyer_id, product_id = committed_sale
    good = [event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id)) for _ in range(2)]
    forged = event(checkout_session(None, buyer_id=buyer_id, product_id=product_id, amount=50))
    recorded = checkout_session(engine, buyer_id=buyer_id, product_id=product_id)
    cheap = event(recorded | {"amount_subtotal": 50, "amount_total": 50})
    not_ours = event(checkout_session(None, buyer_id=buyer_id, product_id=product_id) | {"metadata": {}})
    events = [good[0], forged, cheap, not_ours, good[1]]
    results = api_webhook._process_batch([api_webhook._Job(e, json.dumps(e), None, None) for e in events])  # type: ignore[arg-type]
    got = [(r.duplicate, r.outcome, len(r.announcements)) for r in results]  # type: ignore[union-attr]
    assert got == [(False, "processed", 1), (False, "rejected", 0), (False, "rejected", 0),
                   (False, "ignored", 0), (False, "processed", 1)]  # fmt: skip
    for e in good:
        assert _count(engine, Order, Order.stripe_session_id == e["data"]["object"]["id"]) == 1
    for e in (forged, cheap, not_ours):
        assert _count(engine, Order, Order.stripe_session_id == e["data"]["object"]["id"]) == 0
    with Session(engine) as s:
        rows = {r.stripe_event_id: r for r in s.exec(select(WebhookEvent).where(
            WebhookEvent.stripe_event_id.in_([e["id"] for e in events])))}  # type: ignore[attr-defined]  # fmt: skip
    assert (rows[forged["id"]].outcome, rows[forged["id"]].reason) == (
        "rejected", "checkout session not created by this shop",
    )  # fmt: skip
    assert (rows[cheap["id"]].outcome, rows[cheap["id"]].reason) == ("rejected", "subtotal 50 instead of 999")
    assert rows[not_ours["id"]].outcome == "ignored" and "no shop metadata" in rows[not_ours["id"]].reason
    assert {rows[e["id"]].outcome for e in good} == {"processed"}
    # Delivered again: a duplicate, still nothing granted.
    again = api_webhook._process_batch([api_webhook._Job(cheap, json.dumps(cheap), None, None)])  # type: ignore[arg-type]
    assert (again[0].duplicate, again[0].outcome) == (True, "rejected")  # type: ignore[union-attr]
    assert _count(engine, Order, Order.buyer_id == buyer_id) == 2


# Columns where a free order differs from a sale by nature: what was paid and where the money went.
MONEY = {"subtotal_cents", "total_cents", "unit_price_cents", "gross_cents", "seller_account_id",
         "application_fee_cents", "platform_fee_cents", "seller_share_cents"}  # fmt: skip


def test_a_free_order_writes_what_a_sale_writes(db: Session, storage) -> None:
    """The "Get it free" button makes the rows a sale makes (order, item, grant, receipt, rollup, sales count),
    through the same code; only the money differs."""
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    sold = create_published_product(db, storage, seller, title="Same title", price_cents=1500)
    given = create_published_product(db, storage, seller, title="Same title", price_cents=0)
    outcome = _process(db, event(checkout_session(db, buyer_id=buyer.id, product_id=sold.id, amount=1500)))
    assert len(outcome.announcements) == 1
    free = checkout.get_free_product(session=db, buyer_id=buyer.id, product_id=given.id)
    assert free.changed and len(free.announcements()) == 1

    sale_order = db.exec(select(Order).where(Order.buyer_id == buyer.id, Order.total_cents > 0)).one()
    sale, gift = _rows(db, sale_order.id), _rows(db, free.order_id)  # type: ignore[arg-type]

    def without_money(rows: dict[str, Any]) -> dict[str, Any]:
        def strip(row: dict[str, Any]) -> dict[str, Any]:
            return {c: v for c, v in row.items() if c not in MONEY}

        return {
            "order": strip(rows["order"]),
            **{k: [strip(r) for r in rows[k]] for k in ("items", "grants", "mail", "rollup")},
            "sales_count": rows["sales_count"],
        }

    assert without_money(gift) == without_money(sale)
    assert gift["order"]["total_cents"] == 0 and gift["order"]["seller_account_id"] is None
    assert [r["gross_cents"] for r in gift["rollup"]] == [0]


@pytest.mark.timeout(120)
def test_racing_clicks_on_get_it_free_make_one_order(engine: Engine, tmp_path) -> None:
    """A double click and a second tab, each in its own transaction: one order, one grant."""
    from quantoxbay.storage.local import LocalStorage

    with Session(engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product_id = create_published_product(s, LocalStorage(tmp_path / "f"), seller, price_cents=0).id
        s.commit()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def click() -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                got = checkout.get_free_product(session=s, buyer_id=buyer.id, product_id=product_id)  # type: ignore[arg-type]
                outcomes.append("made" if got.changed else "found")
        except checkout.AlreadyOwned:
            outcomes.append("owned")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and outcomes.count("made") == 1 and len(outcomes) == 4
    assert _count(engine, Order, Order.buyer_id == buyer.id) == 1
    assert _count(engine, DownloadGrant, DownloadGrant.buyer_id == buyer.id) == 1
    with Session(engine) as s:
        assert s.get(Product, product_id).sales_count == 1  # type: ignore[union-attr]
