"""Announcements are published after the commit, never after a rollback, and the webhook's group
commit publishes a batch's announcements once, after the batch's commit. Services queue them on
their DB session (``notifier.queue``); nobody announces by hand.

Also: ``run_service`` (``services.wiring.call``) hands a service the dependencies it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from quantoxbay.db import make_engine, session_scope
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Order, Role
from quantoxbay.services import notifier, wiring
from quantoxbay.services.notifier import Announcement
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session, event


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('announce') / 'announce.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setattr("quantoxbay.db.get_engine", lambda: sqlite_engine)
    return sqlite_engine


class _Recorder:
    """A listener that notes each announcement and how many paid orders were committed then."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[tuple[str, int]] = []

    def __call__(self, announcement: Announcement) -> None:
        with Session(self.engine) as s:  # another connection: sees only what was committed
            paid = s.exec(select(func.count()).select_from(Order).where(Order.status == "paid")).one()
        self.seen.append((announcement.kind, paid))


class _BatchRecorder:
    """A listener that takes a transaction's announcements in one call (as the live pusher does)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, announcement: Announcement) -> None:
        raise AssertionError("announce_many is there")

    def announce_many(self, announcements: list[Announcement]) -> None:
        self.calls.append([a.kind for a in announcements])


@pytest.fixture
def recorder(engine: Engine) -> Iterator[_Recorder]:
    listener = _Recorder(engine)
    notifier.subscribe(listener)
    yield listener
    notifier.unsubscribe(listener)


@pytest.fixture
def batches() -> Iterator[_BatchRecorder]:
    listener = _BatchRecorder()
    notifier.subscribe(listener)
    yield listener
    notifier.unsubscribe(listener)


@pytest.fixture
def sale(engine: Engine, tmp_path) -> tuple[int, int]:
    from quantoxbay.storage.local import LocalStorage

    with Session(engine) as s:
        seller, buyer = create_user(s, Role.SELLER), create_user(s, Role.BUYER)
        product = create_published_product(s, LocalStorage(tmp_path / "files"), seller)
        s.commit()
        return buyer.id, product.id


def _paid(engine: Engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(Order).where(Order.status == "paid")).one()


def _fulfil(session: Session, engine: Engine, buyer_id: int, product_id: int) -> None:
    from quantoxbay.services import fulfillment

    cs = checkout_session(engine, buyer_id=buyer_id, product_id=product_id)
    assert fulfillment.fulfill_checkout(session=session, checkout_session=cs).changed


def test_a_service_announcement_is_published_after_the_commit(
    engine: Engine, recorder: _Recorder, sale: tuple[int, int]
) -> None:
    before = _paid(engine)
    with session_scope() as s:
        _fulfil(s, engine, *sale)
        assert [a.kind for a in notifier.queued(s)] == ["order.paid"]
        assert recorder.seen == []  # not yet: the order is not committed
    assert recorder.seen == [("order.paid", before + 1)]  # once, and the order was there to see


def test_a_rolled_back_transaction_announces_nothing(
    engine: Engine, recorder: _Recorder, sale: tuple[int, int]
) -> None:
    before = _paid(engine)
    with pytest.raises(RuntimeError), session_scope() as s:
        _fulfil(s, engine, *sale)
        assert notifier.queued(s)
        raise RuntimeError("something after the fulfilment failed")
    assert recorder.seen == [] and _paid(engine) == before


def test_a_transaction_publishes_its_announcements_together(engine: Engine, batches: _BatchRecorder) -> None:
    with session_scope() as s:
        notifier.queue(s, Announcement("order.paid", ("seller:1",)))
        notifier.queue(s, Announcement("order.refunded", ("seller:1",)), Announcement("mail.queued", ()))
    assert batches.calls == [["order.paid", "order.refunded", "mail.queued"]]


def _jobs(events: list[dict[str, Any]]) -> list[Any]:
    from quantoxbay.api import webhook as api_webhook

    return [api_webhook._Job(e, json.dumps(e), None, None) for e in events]  # type: ignore[arg-type]


def test_the_webhook_batch_publishes_once_after_its_commit(
    engine: Engine, recorder: _Recorder, batches: _BatchRecorder, sale: tuple[int, int]
) -> None:
    from quantoxbay.api import webhook as api_webhook

    buyer_id, product_id = sale
    before = _paid(engine)
    events = [event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id)) for _ in range(4)]
    writer = api_webhook._WriterConnection()
    try:
        results = api_webhook._process_batch(_jobs(events), writer)
    finally:
        writer.close()
    assert [r.outcome for r in results] == ["processed"] * 4  # type: ignore[union-attr]
    assert batches.calls == [["order.paid"] * 4]  # one publish for the batch
    assert recorder.seen == [("order.paid", before + 4)] * 4  # all after the one commit


def test_a_failed_webhook_batch_announces_only_what_its_retries_commit(
    engine: Engine, recorder: _Recorder, batches: _BatchRecorder, sale: tuple[int, int]
) -> None:
    """One bad event rolls the batch back (its announcements are dropped); the events run again one
    per transaction and each good one announces once, after its own commit."""
    from quantoxbay.api import webhook as api_webhook

    buyer_id, product_id = sale
    before = _paid(engine)
    good = [event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id)) for _ in range(2)]
    bad = event({**checkout_session(None, buyer_id=buyer_id, product_id=1), "id": "pi_not_a_session"})
    writer = api_webhook._WriterConnection()
    try:
        results = api_webhook._process_batch(_jobs([good[0], bad, good[1]]), writer)
    finally:
        writer.close()
    assert isinstance(results[1], Exception)
    assert batches.calls == [["order.paid"], ["order.paid"]]
    assert recorder.seen == [("order.paid", before + 1), ("order.paid", before + 2)]


def test_the_route_does_not_announce_again(
    engine: Engine, batches: _BatchRecorder, sale: tuple[int, int]
) -> None:
    """The announcements of a delivery come from its transaction's commit only (not once more by
    the request handler)."""
    from starlette.testclient import TestClient

    from quantoxbay.api import build_api
    from quantoxbay.settings import get_settings
    from tests.stripe_payloads import signed

    buyer_id, product_id = sale
    body, headers = signed(
        event(checkout_session(engine, buyer_id=buyer_id, product_id=product_id)),
        get_settings().stripe_webhook_secret,
    )
    answer = TestClient(build_api()).post("/api/stripe/webhook", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert batches.calls == [["order.paid"]]


def test_run_service_hands_a_service_what_it_names(engine: Engine) -> None:
    from quantoxbay.payments.gateway import get_gateway
    from quantoxbay.settings import get_settings
    from quantoxbay.storage import get_storage

    def service(*, session: Session, settings: Any, storage: Any, gateway: Any, n: int) -> tuple:
        return session, settings, storage, gateway, n

    session, settings, storage, gateway, n = wiring.call(service, n=3)
    assert isinstance(session, Session) and n == 3
    assert (settings, storage, type(gateway)) == (get_settings(), get_storage(), type(get_gateway()))
    assert wiring.call(service, n=1, storage="mine")[2] == "mine"  # what the caller passes wins

    def plain(*, session: Session, n: int) -> int:
        return n

    assert wiring.call(plain, n=2) == 2  # asks for nothing, gets nothing more


@pytest.mark.parametrize("type_", ["balance.available", "payout.created", "payout.paid", "payout.failed"])
def test_a_connect_balance_or_payout_event_tells_the_sellers_pages_after_its_commit(
    engine: Engine, batches: _BatchRecorder, type_: str
) -> None:
    """The payouts page reads balances and payouts from Stripe; the event (on the Connect endpoint)
    must reach the seller's open pages so they read again."""
    from starlette.testclient import TestClient

    from quantoxbay.api import build_api
    from quantoxbay.settings import get_settings
    from tests.factories import give_payouts_account
    from tests.stripe_payloads import signed

    with Session(engine) as s:
        seller = create_user(s, Role.SELLER)
        account_id = give_payouts_account(s, seller.id).stripe_account_id
        s.commit()
    obj = {"object": "balance"} if type_ == "balance.available" else {"id": "po_1", "object": "payout"}
    body, headers = signed(
        {**event(obj, type_), "account": account_id}, get_settings().stripe_connect_webhook_secret
    )
    answer = TestClient(build_api()).post("/api/stripe/connect-webhook", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert batches.calls == [["payouts.payout"]]
