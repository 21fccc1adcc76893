"""Plain factory functions for tests (full-stack-fastapi-template style)."""

from __future__ import annotations

import functools
import io
import uuid
from datetime import datetime
from unittest import mock

from sqlmodel import Session, select

from quantoxbay.models import Order, OrderItem, OrderStatus, Product, Role, SellerAccount, utcnow
from quantoxbay.services import accounts, catalog
from quantoxbay.services.accounts import UserPublic
from quantoxbay.settings import get_settings
from quantoxbay.storage import Storage

PASSWORD = "correct-horse-battery"


def random_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


_app_hash_password = accounts.hash_password


@functools.cache
def _password_hash(password: str, rounds: int) -> str:  # rounds: a changed cost gets its own hash
    return _app_hash_password(password)


def _reused_hash(password: str) -> str:
    return _password_hash(password, get_settings().bcrypt_rounds)


def create_user(
    db: Session,
    role: Role = Role.BUYER,
    email: str | None = None,
    password: str = PASSWORD,
    *,
    verified: bool = True,
) -> UserPublic:
    """A user made by the app's own ``accounts.create_user``. The bcrypt hash (the app's, cost 12)
    is computed once per distinct password per test session and reused: hashing costs a third of a
    second of CPU, and a test that checks the hashing itself calls ``accounts`` directly.
    Verified by default (as operators' accounts are); ``verified=False`` is a fresh sign-up."""
    with mock.patch.object(accounts, "hash_password", _reused_hash):
        return accounts.create_user(
            session=db,
            email=email or random_email(role.value),
            password=password,
            role=role,
            email_verified=verified,
        )


def give_payouts_account(db: Session, seller_id: int, stripe_account_id: str | None = None) -> SellerAccount:
    """Record an onboarded connected account for a seller (charges and payouts enabled), as
    ``account.updated`` would after onboarding. Tests that talk to a real or embedded Stripe pass
    the id of an account that exists there (``tests.support.connect.onboard_seller``)."""
    existing = db.exec(select(SellerAccount).where(SellerAccount.user_id == seller_id)).first()
    if existing is not None:
        return existing
    account = SellerAccount(
        user_id=seller_id,
        stripe_account_id=stripe_account_id or f"acct_test{uuid.uuid4().hex[:16]}",
        details_submitted=True,
        charges_enabled=True,
        payouts_enabled=True,
    )
    db.add(account)
    db.flush()
    return account


def create_published_product(
    db: Session,
    storage: Storage,
    seller: UserPublic,
    *,
    title: str = "A product",
    price_cents: int = 999,
    content: bytes = b"file content",
) -> Product:
    """A published product of ``seller``'s; a priced one needs payouts set up, so a seller without
    an account gets one (``give_payouts_account``)."""
    if price_cents > 0:
        give_payouts_account(db, seller.id)
    product = catalog.create_product(session=db, seller_id=seller.id, title=title, price_cents=price_cents)
    assert product.id is not None
    catalog.add_product_file(
        session=db,
        storage=storage,
        product_id=product.id,
        seller_id=seller.id,
        filename="file.txt",
        stream=io.BytesIO(content),
        max_bytes=10_000_000,
    )
    catalog.publish_product(session=db, storage=storage, product_id=product.id, seller_id=seller.id)
    return product


def create_connect_order(
    db: Session,
    seller: UserPublic,
    buyer: UserPublic,
    *,
    total: int = 1000,
    fee: int = 100,
    paid_at: datetime | None = None,
    status: OrderStatus = OrderStatus.PAID,
    account: str | None = "acct_x",
    currency: str = "usd",
    **money: int,
) -> Order:
    """A paid order of one of ``seller``'s (draft) products, with the money columns of a destination
    charge to ``account`` (None: a sale made before Connect, with no fee nor share)."""
    product = catalog.create_product(session=db, seller_id=seller.id, title="Guide", price_cents=total)
    order = Order(
        buyer_id=buyer.id,
        status=status.value,
        currency=currency,
        subtotal_cents=total + money.get("discount_cents", 0),
        total_cents=total,
        stripe_session_id=f"cs_{uuid.uuid4().hex}",
        seller_account_id=account,
        platform_fee_cents=fee if account else 0,
        application_fee_cents=fee if account else 0,
        seller_share_cents=total - fee if account else 0,
        paid_at=paid_at or utcnow(),
        created_at=paid_at or utcnow(),
        **money,
    )
    db.add(order)
    db.flush()
    assert order.id is not None and product.id is not None
    db.add(
        OrderItem(
            order_id=order.id,
            product_id=product.id,
            seller_id=seller.id,
            title=product.title,
            unit_price_cents=total,
            total_cents=total,
            discount_cents=money.get("discount_cents", 0),
        )
    )
    db.flush()
    return order
