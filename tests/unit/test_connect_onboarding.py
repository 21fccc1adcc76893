"""Sellers' connected accounts: made once, onboarding links, the status Stripe's facts give."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import Session, select

from quantoxbay.models import Role, SellerAccount
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import DomainError, PermissionDenied, connect
from tests.factories import create_user


class FakeConnectClient:
    """``client.v1`` for accounts, account links and login links, answering like Stripe."""

    def __init__(self) -> None:
        self.created: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.links: list[dict[str, Any]] = []
        self.account: dict[str, Any] = {
            "id": "acct_fake1", "details_submitted": False, "charges_enabled": False, "payouts_enabled": False,
            "requirements": {"currently_due": ["individual.first_name", "external_account"], "past_due": []},
        }  # fmt: skip
        accounts = SimpleNamespace(
            create=self._create,
            retrieve=lambda account_id: dict(self.account),
            login_links=SimpleNamespace(
                create=lambda account_id: SimpleNamespace(url=f"https://dash/{account_id}")
            ),
        )
        links = SimpleNamespace(create=self._link)
        self.v1 = SimpleNamespace(accounts=accounts, account_links=links)

    def _create(self, params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        self.created.append((params, options))
        return dict(self.account)

    def _link(self, params: dict[str, Any]) -> Any:
        self.links.append(params)
        return SimpleNamespace(url=f"https://connect.test/onboarding/{len(self.links)}")


@pytest.fixture
def fake() -> FakeConnectClient:
    return FakeConnectClient()


def _gateway(fake: FakeConnectClient) -> StripeGateway:
    return StripeGateway(fake)  # type: ignore[arg-type]


def test_set_up_payouts_makes_one_express_account_and_a_link_back_to_the_page(
    db: Session, fake: FakeConnectClient
) -> None:
    seller = create_user(db, Role.SELLER)
    url = connect.start_onboarding(
        session=db, gateway=_gateway(fake), seller_id=seller.id, public_url="http://shop.test"
    )
    assert url == "https://connect.test/onboarding/1"
    [(params, options)] = fake.created
    assert params["type"] == "express" and params["email"] == seller.email
    assert params["capabilities"]["transfers"] == {"requested": True}
    assert options == {"idempotency_key": f"quantoxbay-account-{seller.id}"}
    assert fake.links == [
        {"account": "acct_fake1", "type": "account_onboarding",
         "refresh_url": "http://shop.test/seller/payouts?onboarding=refresh",
         "return_url": "http://shop.test/seller/payouts?onboarding=return"}
    ]  # fmt: skip
    # A second click (the link expired) makes a new link for the same account.
    connect.start_onboarding(
        session=db, gateway=_gateway(fake), seller_id=seller.id, public_url="http://shop.test"
    )
    assert len(fake.created) == 1 and len(fake.links) == 2
    assert len(db.exec(select(SellerAccount).where(SellerAccount.user_id == seller.id)).all()) == 1
    status = connect.payout_status(session=db, seller_id=seller.id)
    assert status.label == connect.ACTION_REQUIRED
    assert status.needs == ["Individual first name", "External account"]


def test_only_sellers_set_up_payouts(db: Session, fake: FakeConnectClient) -> None:
    buyer = create_user(db, Role.BUYER)
    with pytest.raises(PermissionDenied):
        connect.start_onboarding(
            session=db, gateway=_gateway(fake), seller_id=buyer.id, public_url="http://shop.test"
        )
    assert fake.created == []


def test_coming_back_reads_the_account_and_the_dashboard_opens_once_submitted(
    db: Session, fake: FakeConnectClient
) -> None:
    seller = create_user(db, Role.SELLER)
    assert connect.payout_status(session=db, seller_id=seller.id).label == connect.NOT_SET_UP
    connect.start_onboarding(
        session=db, gateway=_gateway(fake), seller_id=seller.id, public_url="http://shop.test"
    )
    with pytest.raises(DomainError, match="Finish setting up payouts first"):
        connect.dashboard_link(session=db, gateway=_gateway(fake), seller_id=seller.id)
    fake.account |= {"details_submitted": True, "charges_enabled": True, "payouts_enabled": True,
                     "requirements": {"currently_due": [], "past_due": []}}  # fmt: skip
    status = connect.refresh_account(session=db, gateway=_gateway(fake), seller_id=seller.id)
    assert status.label == connect.PAYOUTS_ENABLED and status.needs == []
    assert connect.chargeable_account_id(session=db, seller_id=seller.id) == "acct_fake1"
    assert (
        connect.dashboard_link(session=db, gateway=_gateway(fake), seller_id=seller.id)
        == "https://dash/acct_fake1"
    )


def test_account_facts_apply_newest_first_whatever_their_order(db: Session, fake: FakeConnectClient) -> None:
    seller = create_user(db, Role.SELLER)
    account = connect.ensure_account(session=db, gateway=_gateway(fake), seller_id=seller.id)
    base = account.stripe_updated
    enabled = {"id": "acct_fake1", "details_submitted": True, "charges_enabled": True, "payouts_enabled": True,
               "requirements": {"currently_due": []}}  # fmt: skip
    paused = enabled | {"payouts_enabled": False, "requirements": {"past_due": ["external_account"]}}
    assert connect.apply_account_update(session=db, account=paused, stripe_updated=base + 20)
    assert not connect.apply_account_update(session=db, account=enabled, stripe_updated=base + 10)
    status = connect.payout_status(session=db, seller_id=seller.id)
    assert (status.charges_enabled, status.payouts_enabled, status.requirements_due) == (
        True, False, ("external_account",),
    )  # fmt: skip
    assert not connect.apply_account_update(
        session=db, account={"id": "acct_unknown"}, stripe_updated=base + 30
    )
