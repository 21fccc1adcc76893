"""The admin panel's services: only admins; users, products, orders, webhook events, totals."""

from __future__ import annotations

import inspect
import json
import uuid
from typing import Any

import pytest
from sqlmodel import Session, select

from quantoxbay.models import AdminAction, MailOutbox, Order, Product, Role, User, UserSession, WebhookEvent
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import DomainError, NotFound, PermissionDenied, accounts, admin, catalog, receipts
from quantoxbay.services import webhook_events as webhooks
from quantoxbay.services.accounts import UserPublic
from tests import stripe_payloads
from tests.factories import PASSWORD, create_published_product, create_user
from tests.support.fake_stripe import UnchargedPaymentIntents


@pytest.fixture
def people(db: Session) -> dict[str, UserPublic]:
    return {
        "admin": create_user(db, Role.ADMIN),
        "seller": create_user(db, Role.SELLER),
        "buyer": create_user(db, Role.BUYER),
    }


def _paid(db: Session, buyer: UserPublic, product: Product, amount: int = 999) -> tuple[Order, dict]:
    assert product.id is not None
    cs = stripe_payloads.checkout_session(db, buyer_id=buyer.id, product_id=product.id, amount=amount)
    evt = stripe_payloads.event(cs)
    webhooks.process_event(session=db, event=evt, raw=json.dumps(evt))
    order = db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).one()
    return order, evt


# Sample arguments for every public service function, to prove each refuses non-admins.
ARGS: dict[str, Any] = {
    "query": "",
    "user_id": 1,
    "role": "buyer",
    "disabled": True,
    "product_id": 1,
    "reason": "spam",
    "order_id": 1,
    "amount_cents": None,
    "gateway": None,
    "event_row_id": 1,
    "error": RuntimeError("x"),
    "settings": None,
    "now": None,
}


def _service_functions() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(admin, inspect.isfunction)
        if fn.__module__ == admin.__name__
        and not name.startswith("_")
        and {"session", "actor"} <= set(inspect.signature(fn).parameters)
    ]


@pytest.mark.parametrize("who", ["nobody", "buyer", "seller"])
def test_every_admin_service_refuses_non_admins(db: Session, people: dict, who: str) -> None:
    actor = None if who == "nobody" else people[who]
    names = _service_functions()
    assert {"set_role", "set_disabled", "unpublish_product", "refund_order", "resend_webhook_event"} <= set(
        names
    )
    for name in names:
        fn = getattr(admin, name)
        kwargs = {
            p: ARGS[p]
            for p in inspect.signature(fn).parameters
            if p not in ("session", "actor", "limit", "outcome")
        }
        with pytest.raises(PermissionDenied):
            fn(session=db, actor=actor, **kwargs)
    assert db.exec(select(AdminAction)).all() == []


def test_search_users_by_email_part_and_id(db: Session, people: dict) -> None:
    a = people["admin"]
    buyer = people["buyer"]
    found = admin.search_users(session=db, actor=a, query=buyer.email.split("@")[0].upper())
    assert [u["email"] for u in found] == [buyer.email]
    assert [u["id"] for u in admin.search_users(session=db, actor=a, query=str(buyer.id))] == [buyer.id]
    assert admin.search_users(session=db, actor=a, query="100%_no_match") == []


def test_change_role(db: Session, people: dict) -> None:
    a, buyer = people["admin"], people["buyer"]
    row = admin.set_role(session=db, actor=a, user_id=buyer.id, role="seller")
    assert row["role"] == "seller"
    user = db.get(User, buyer.id)
    assert user is not None and user.role == "seller" and user.handle  # a seller page needs a handle
    with pytest.raises(DomainError, match="Choose a role"):
        admin.set_role(session=db, actor=a, user_id=buyer.id, role="owner")
    with pytest.raises(DomainError, match="your own account"):
        admin.set_role(session=db, actor=a, user_id=a.id, role="buyer")
    with pytest.raises(NotFound):
        admin.set_role(session=db, actor=a, user_id=10**9, role="buyer")
    assert [x.action for x in db.exec(select(AdminAction)).all()] == ["user.role"]


def test_disable_ends_sessions_and_blocks_login(db: Session, people: dict) -> None:
    a, buyer = people["admin"], people["buyer"]
    token = accounts.start_session(session=db, user_id=buyer.id)
    assert accounts.user_for_session(session=db, token=token) is not None
    row = admin.set_disabled(session=db, actor=a, user_id=buyer.id, disabled=True)
    assert row["disabled"] is True
    assert accounts.user_for_session(session=db, token=token) is None
    assert db.exec(select(UserSession).where(UserSession.user_id == buyer.id)).all() == []
    with pytest.raises(accounts.AccountError, match="disabled"):
        accounts.authenticate(session=db, email=buyer.email, password=PASSWORD)
    admin.set_disabled(session=db, actor=a, user_id=buyer.id, disabled=False)
    assert accounts.authenticate(session=db, email=buyer.email, password=PASSWORD).id == buyer.id
    with pytest.raises(DomainError):
        admin.set_disabled(session=db, actor=a, user_id=a.id, disabled=True)


def test_unpublish_with_a_reason(db: Session, people: dict, storage) -> None:
    a = people["admin"]
    product = create_published_product(db, storage, people["seller"], title="Dubious Pack")
    assert product.id is not None
    with pytest.raises(DomainError, match="reason"):
        admin.unpublish_product(session=db, actor=a, product_id=product.id, reason="   ")
    db.refresh(product)
    assert product.status == "published"
    assert [p["title"] for p in admin.search_products(session=db, actor=a, query="dubious")] == [
        "Dubious Pack"
    ]
    admin.unpublish_product(session=db, actor=a, product_id=product.id, reason="  Copyright   complaint ")
    db.refresh(product)
    assert (product.status, product.unpublished_reason) == ("removed", "Copyright complaint")
    assert product.removed_by_id == a.id and product.removed_at is not None
    with pytest.raises(NotFound):
        admin.unpublish_product(session=db, actor=a, product_id=10**9, reason="x")


def test_an_admin_removal_holds_until_an_admin_restores_it(db: Session, people: dict, storage) -> None:
    a, seller = people["admin"], people["seller"]
    product = create_published_product(db, storage, seller, title="Dubious Pack")
    assert product.id is not None
    with pytest.raises(DomainError, match="Only a product an admin took down"):
        admin.restore_product(session=db, actor=a, product_id=product.id)
    admin.unpublish_product(session=db, actor=a, product_id=product.id, reason="Copyright complaint")

    # The seller sees why, and cannot put it back; nor can an admin through the seller's page.
    view = catalog.get_seller_product(session=db, product_id=product.id, seller_id=seller.id)
    assert view.status == "removed" and "Copyright complaint." in view.removed_notice
    [row] = catalog.list_seller_products(session=db, seller_id=seller.id)
    assert row["removed_reason"] == "Copyright complaint"
    for who in (seller, a):
        with pytest.raises(PermissionDenied, match=r"Copyright complaint\. It stays off until an admin"):
            catalog.publish_product(session=db, storage=storage, product_id=product.id, seller_id=who.id)
    catalog.unpublish_product(session=db, product_id=product.id, seller_id=seller.id)  # changes nothing
    db.refresh(product)
    assert product.status == "removed"

    # The seller's e-mail is queued in the same transaction, rendered from the logged action.
    [mail] = db.exec(select(MailOutbox).where(MailOutbox.to_email == seller.email)).all()
    assert mail.order_id is None and mail.kind.startswith("product.removed:")
    message = receipts.render(session=db, row=mail, public_url="http://shop.test", sender="shop@test")
    text = message.get_body(("plain",)).get_content()
    assert "taken down" in message["Subject"] and "Dubious Pack" in message["Subject"]
    assert "Reason: Copyright complaint" in text
    assert f"http://shop.test/seller/products/{product.id}/edit" in text

    restored = admin.restore_product(session=db, actor=a, product_id=product.id)
    assert restored == {"id": product.id, "status": "unpublished", "reason": ""}
    db.refresh(product)
    assert (product.unpublished_reason, product.removed_by_id, product.removed_at) == ("", None, None)
    assert (
        catalog.get_seller_product(session=db, product_id=product.id, seller_id=seller.id).removed_notice
        == ""
    )
    catalog.publish_product(session=db, storage=storage, product_id=product.id, seller_id=seller.id)
    db.refresh(product)
    assert product.status == "published"

    mails = db.exec(
        select(MailOutbox).where(MailOutbox.to_email == seller.email).order_by(MailOutbox.id)
    ).all()
    assert [m.kind.split(":")[0] for m in mails] == ["product.removed", "product.restored"]
    restored_mail = receipts.render(
        session=db, row=mails[1], public_url="http://shop.test", sender="shop@test"
    )
    assert "restored" in restored_mail["Subject"]
    actions = [x.action for x in db.exec(select(AdminAction).order_by(AdminAction.id)).all()]
    assert actions == ["product.unpublish", "product.restore"]


def test_orders_search_detail_and_totals(db: Session, people: dict, storage) -> None:
    a, buyer = people["admin"], people["buyer"]
    product = create_published_product(db, storage, people["seller"], title="Guide")
    order, evt = _paid(db, buyer, product, amount=1500)
    for query in (buyer.email, buyer.email[:6], str(order.id), f"#{order.id}", order.stripe_session_id):
        assert [o["id"] for o in admin.search_orders(session=db, actor=a, query=query)] == [order.id], query
    assert admin.search_orders(session=db, actor=a, query="cs_test_nope") == []
    assert order.id is not None
    detail = admin.order_detail(session=db, actor=a, order_id=order.id)
    assert detail["order"]["total"] == "$15.00" and detail["order"]["status"] == "paid"
    assert [i["title"] for i in detail["items"]] == ["Guide"]
    assert [e["event_id"] for e in detail["events"]] == [evt["id"]]
    totals = admin.platform_totals(session=db, actor=a)
    assert totals["orders"] >= 1 and totals["active_sellers"] >= 1
    # Nothing refunded is "$0.00", not "Free" (that word is only a product's price).
    usd = next(r for r in totals["revenue"] if r["currency"] == "USD")
    assert usd["refunds"] == "$0.00" and usd["net"] == usd["gross"]
    with pytest.raises(NotFound):
        admin.order_detail(session=db, actor=a, order_id=10**9)


def test_resend_runs_the_handler_again_without_duplicating(db: Session, people: dict, storage) -> None:
    a = people["admin"]
    product = create_published_product(db, storage, people["seller"])
    order, evt = _paid(db, people["buyer"], product)
    row = db.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == evt["id"])).one()
    assert row.outcome == "processed" and row.id is not None
    events = admin.list_webhook_events(session=db, actor=a, query=evt["id"])
    assert [e["type"] for e in events] == ["checkout.session.completed"]
    outcome, _announcements = admin.resend_webhook_event(session=db, actor=a, event_row_id=row.id)
    assert outcome == "processed"
    assert len(db.exec(select(Order).where(Order.stripe_session_id == order.stripe_session_id)).all()) == 1


def test_resend_of_a_failed_event_fulfils_it(db: Session, people: dict, storage) -> None:
    a = people["admin"]
    product = create_published_product(db, storage, people["seller"])
    assert product.id is not None
    cs = stripe_payloads.checkout_session(db, buyer_id=people["buyer"].id, product_id=product.id)
    evt = stripe_payloads.event(cs, event_id=f"evt_{uuid.uuid4().hex}")
    webhooks.record_failure(session=db, event=evt, raw=json.dumps(evt), error=RuntimeError("db was down"))
    db.flush()
    row = db.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == evt["id"])).one()
    assert row.outcome == "failed" and row.id is not None
    assert admin.list_webhook_events(session=db, actor=a, query=evt["id"])[0]["error"].endswith("db was down")
    outcome, announcements = admin.resend_webhook_event(session=db, actor=a, event_row_id=row.id)
    assert outcome == "processed" and [x.kind for x in announcements] == ["order.paid"]
    assert db.exec(select(Order).where(Order.stripe_session_id == cs["id"])).one().status == "paid"


def test_resend_without_payload_is_refused(db: Session, people: dict) -> None:
    row = WebhookEvent(stripe_event_id=f"evt_{uuid.uuid4().hex}", type="x", payload="")
    db.add(row)
    db.flush()
    assert row.id is not None
    with pytest.raises(DomainError, match="no stored payload"):
        admin.resend_webhook_event(session=db, actor=people["admin"], event_row_id=row.id)


class _FakeRefunds:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def create(self, params: dict, options: dict | None = None) -> dict:
        self.calls.append(params)
        return {"id": f"re_{uuid.uuid4().hex[:12]}", "status": "succeeded"}


class _FakeStripe:
    def __init__(self) -> None:
        self.v1 = type("V1", (), {})()
        self.v1.refunds = _FakeRefunds()
        self.v1.payment_intents = UnchargedPaymentIntents()


def test_refund_goes_through_the_refunds_service(db: Session, people: dict, storage) -> None:
    a = people["admin"]
    product = create_published_product(db, storage, people["seller"])
    order, _evt = _paid(db, people["buyer"], product, amount=1000)
    assert order.id is not None
    client = _FakeStripe()
    notice, announcements = admin.refund_order(
        session=db,
        actor=a,
        gateway=StripeGateway(client),
        order_id=order.id,
        amount_cents=400,
        reason="requested_by_customer",
    )
    assert client.v1.refunds.calls[0]["amount"] == 400
    db.refresh(order)
    assert (order.status, order.refunded_cents) == ("partially_refunded", 400)
    assert any(x.kind == "order.partially_refunded" for x in announcements)
    assert notice.startswith("Refund") and f"$4.00 of order #{order.id}" in notice
    assert "order.refund" in [x.action for x in db.exec(select(AdminAction)).all()]


def test_rejected_checkout_sessions_are_listed_with_their_reason(db: Session, people: dict, storage) -> None:
    """A session the shop never sold: its event is kept as "rejected" with why, and an admin finds
    it by that outcome; sending it again re-checks it (still rejected, still no order)."""
    a = people["admin"]
    product = create_published_product(db, storage, people["seller"])
    assert product.id is not None
    _paid(db, people["buyer"], product)  # a good one beside it
    forged = stripe_payloads.checkout_session(
        None, buyer_id=people["buyer"].id, product_id=product.id, amount=50
    )
    evt = stripe_payloads.event(forged)
    assert webhooks.process_event(session=db, event=evt, raw=json.dumps(evt)).outcome == "rejected"
    for listed in (
        admin.list_webhook_events(session=db, actor=a, outcome="rejected"),
        admin.list_webhook_events(session=db, actor=a, query="rejected"),  # the section's search box
    ):
        assert [(e["event_id"], e["outcome"], e["reason"]) for e in listed] == [
            (evt["id"], "rejected", "checkout session not created by this shop")
        ]
    row = db.exec(select(WebhookEvent).where(WebhookEvent.stripe_event_id == evt["id"])).one()
    assert row.id is not None
    outcome, announcements = admin.resend_webhook_event(session=db, actor=a, event_row_id=row.id)
    assert (outcome, announcements) == ("rejected", [])
    assert db.exec(select(Order).where(Order.stripe_session_id == forged["id"])).first() is None
