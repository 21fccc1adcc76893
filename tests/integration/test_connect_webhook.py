"""POST /api/stripe/connect-webhook: events of sellers' connected accounts, signed with the
Connect endpoint's own secret; account.updated in any order; payouts push the seller's pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from quantoxbay.api.app import build_api
from quantoxbay.models import Role, SellerAccount, WebhookEvent
from quantoxbay.services import notifier
from quantoxbay.services.notifier import Announcement, seller_topic
from quantoxbay.settings import get_settings
from tests.factories import create_user
from tests.stripe_payloads import event, signed

URL = "/api/stripe/connect-webhook"


@pytest.fixture
def client(app_engine: Engine) -> TestClient:
    return TestClient(build_api())


@pytest.fixture
def seller_account(app_engine: Engine) -> tuple[int, str]:
    """A seller whose account was just created (nothing submitted yet)."""
    account_id = f"acct_{uuid.uuid4().hex[:16]}"
    with Session(app_engine) as s:
        seller = create_user(s, Role.SELLER)
        s.add(SellerAccount(user_id=seller.id, stripe_account_id=account_id, stripe_updated=100))
        s.commit()
        return seller.id, account_id


@pytest.fixture
def heard() -> Iterator[list[Announcement]]:
    seen: list[Announcement] = []
    notifier.subscribe(seen.append)
    yield seen
    notifier.unsubscribe(seen.append)


def _account(account_id: str, *, enabled: bool, due: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": account_id,
        "object": "account",
        "details_submitted": True,
        "charges_enabled": enabled,
        "payouts_enabled": enabled,
        "requirements": {"currently_due": due or [], "past_due": [], "disabled_reason": None},
    }


def _connect_event(obj: dict[str, Any], type_: str, account: str, created: int) -> dict[str, Any]:
    return event(obj, type_=type_) | {"account": account, "created": created}


def _row(engine: Engine, account_id: str) -> SellerAccount:
    with Session(engine) as s:
        return s.exec(select(SellerAccount).where(SellerAccount.stripe_account_id == account_id)).one()


def test_account_updated_signed_with_the_connect_secret_enables_payouts(
    client: TestClient, app_engine: Engine, seller_account: tuple[int, str], heard: list[Announcement]
) -> None:
    seller_id, account_id = seller_account
    evt = _connect_event(_account(account_id, enabled=True), "account.updated", account_id, 200)
    body, headers = signed(evt, get_settings().stripe_connect_webhook_secret)
    answer = client.post(URL, content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["outcome"] == "processed"
    row = _row(app_engine, account_id)
    assert (row.charges_enabled, row.payouts_enabled, row.stripe_updated) == (True, True, 200)
    assert [(a.kind, a.topics, a.data) for a in heard] == [
        ("payouts.account", (seller_topic(seller_id),), {"status": "Payouts enabled"})
    ]
    # The same delivery again is a duplicate and changes nothing.
    again = client.post(URL, content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True and len(heard) == 1


def test_the_platform_secret_does_not_open_the_connect_endpoint_nor_the_reverse(
    client: TestClient, app_engine: Engine, seller_account: tuple[int, str]
) -> None:
    _, account_id = seller_account
    evt = _connect_event(_account(account_id, enabled=True), "account.updated", account_id, 200)
    body, headers = signed(evt, get_settings().stripe_webhook_secret)
    assert client.post(URL, content=body, headers=headers).status_code == 400
    body, headers = signed(evt, get_settings().stripe_connect_webhook_secret)
    assert client.post("/api/stripe/webhook", content=body, headers=headers).status_code == 400
    assert _row(app_engine, account_id).charges_enabled is False
    with Session(app_engine) as s:
        assert s.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == evt["id"])).first() is None


def test_an_older_account_update_arriving_late_changes_nothing(
    client: TestClient, app_engine: Engine, seller_account: tuple[int, str]
) -> None:
    _, account_id = seller_account
    secret = get_settings().stripe_connect_webhook_secret
    newer = _connect_event(
        _account(account_id, enabled=False, due=["external_account"]), "account.updated", account_id, 300
    )
    older = _connect_event(_account(account_id, enabled=True), "account.updated", account_id, 200)
    for evt in (newer, older):
        body, headers = signed(evt, secret)
        assert client.post(URL, content=body, headers=headers).status_code == 200
    row = _row(app_engine, account_id)
    assert (row.charges_enabled, row.requirements_due, row.stripe_updated) == (False, "external_account", 300)


def test_payout_events_push_the_sellers_pages(
    client: TestClient, seller_account: tuple[int, str], heard: list[Announcement]
) -> None:
    seller_id, account_id = seller_account
    payout = {"id": "po_1", "object": "payout", "amount": 2339, "currency": "usd", "status": "paid"}
    for type_ in ("payout.created", "payout.paid"):
        body, headers = signed(
            _connect_event(payout, type_, account_id, 400), get_settings().stripe_connect_webhook_secret
        )
        assert client.post(URL, content=body, headers=headers).json()["outcome"] == "processed"
    assert [(a.kind, a.topics) for a in heard] == [("payouts.payout", (seller_topic(seller_id),))] * 2
    # An account that is not one of this shop's sellers: recorded, nobody told.
    body, headers = signed(
        _connect_event(payout, "payout.paid", "acct_someone_else", 400),
        get_settings().stripe_connect_webhook_secret,
    )
    assert client.post(URL, content=body, headers=headers).status_code == 200 and len(heard) == 2


def test_a_seller_who_disconnects_the_platform_stops_selling(
    client: TestClient, app_engine: Engine, seller_account: tuple[int, str]
) -> None:
    _, account_id = seller_account
    secret = get_settings().stripe_connect_webhook_secret
    enabled = _connect_event(_account(account_id, enabled=True), "account.updated", account_id, 200)
    application = {"id": "ca_platform", "object": "application", "name": "QuantoxBay"}
    gone = _connect_event(application, "account.application.deauthorized", account_id, 300)
    for evt in (enabled, gone):
        body, headers = signed(evt, secret)
        assert client.post(URL, content=body, headers=headers).json()["outcome"] == "processed"
    row = _row(app_engine, account_id)
    assert (row.charges_enabled, row.payouts_enabled, row.disabled_reason) == (
        False,
        False,
        "platform_disconnected",
    )
