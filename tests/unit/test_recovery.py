"""Account recovery and e-mail verification: reset links (single use, 30 minutes, bound to their
account), the enumeration-safe answer, the throttle, sessions ended, and the selling gates
(SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from unittest import mock

import pytest
from sqlmodel import Session, col, select

from quantoxbay.models import MailOutbox, ProductStatus, Role, User, UserSession, utcnow
from quantoxbay.services import (
    PermissionDenied,
    account_links,
    accounts,
    catalog,
    connect,
    receipts,
    recovery,
)
from quantoxbay.services.account_links import LinkRefused
from quantoxbay.services.recovery import EmailNotVerified
from tests.factories import PASSWORD, create_user, random_email

NEW_PASSWORD = "a-brand-new-password"
PUBLIC_URL = "http://shop.test"


def _mails(db: Session, kind: str, to: str) -> list[MailOutbox]:
    return list(
        db.exec(
            select(MailOutbox)
            .where(col(MailOutbox.kind).startswith(f"{kind}:"), MailOutbox.to_email == to)
            .order_by(col(MailOutbox.id))
        ).all()
    )


def _link_token(db: Session, row: MailOutbox, path: str) -> str:
    """Render the queued e-mail as the outbox worker would and take the token from its link."""
    message = receipts.render(session=db, row=row, public_url=PUBLIC_URL, sender="shop@example.com")
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(re.escape(f"{PUBLIC_URL}{path}?token=") + r"(\S+)", body.get_content())
    assert found, body.get_content()
    return found.group(1)


def _reset_token(db: Session, email: str) -> str:
    recovery.request_password_reset(session=db, email=email, client_ip="203.0.113.9")
    return _link_token(db, _mails(db, account_links.PASSWORD_RESET, email)[-1], "/reset-password")


def _login_works(db: Session, email: str, password: str) -> bool:
    try:
        accounts.authenticate(session=db, email=email, password=password)
    except accounts.AccountError:
        return False
    return True


def test_reset_link_sets_a_new_password_and_ends_every_session(db: Session) -> None:
    user = create_user(db)
    sessions = [accounts.start_session(session=db, user_id=user.id) for _ in range(2)]
    token = _reset_token(db, user.email)
    assert recovery.check_reset_link(session=db, token=token) == user.email

    changed = recovery.reset_password(session=db, token=token, password=NEW_PASSWORD)

    assert changed.id == user.id
    assert _login_works(db, user.email, NEW_PASSWORD)
    assert not _login_works(db, user.email, PASSWORD)
    assert all(accounts.user_for_session(session=db, token=t) is None for t in sessions)
    assert db.exec(select(UserSession).where(UserSession.user_id == user.id)).first() is None


def test_reset_link_works_once(db: Session) -> None:
    user = create_user(db)
    token = _reset_token(db, user.email)
    recovery.reset_password(session=db, token=token, password=NEW_PASSWORD)
    with pytest.raises(LinkRefused, match="expired or was already used"):
        recovery.check_reset_link(session=db, token=token)
    with pytest.raises(LinkRefused):
        recovery.reset_password(session=db, token=token, password="yet-another-password")
    assert _login_works(db, user.email, NEW_PASSWORD)


def test_reset_link_expires_after_30_minutes(db: Session) -> None:
    user = create_user(db)
    token = _reset_token(db, user.email)
    later = utcnow() + timedelta(minutes=30, seconds=1)
    with pytest.raises(LinkRefused, match="expired"):
        recovery.reset_password(session=db, token=token, password=NEW_PASSWORD, now=later)
    recovery.reset_password(  # still fine just before
        session=db, token=token, password=NEW_PASSWORD, now=utcnow() + timedelta(minutes=29)
    )


def test_a_link_e_mailed_late_still_counts_from_when_it_was_asked_for(db: Session) -> None:
    user = create_user(db)
    recovery.request_password_reset(session=db, email=user.email)
    row = _mails(db, account_links.PASSWORD_RESET, user.email)[-1]
    row.created_at = utcnow() - timedelta(minutes=31)  # the SMTP server was down for a while
    db.add(row)
    db.flush()
    token = _link_token(db, row, "/reset-password")
    with pytest.raises(LinkRefused):
        recovery.check_reset_link(session=db, token=token)


def test_a_reset_link_changes_only_its_own_account(db: Session) -> None:
    owner, other = create_user(db), create_user(db)
    token = _reset_token(db, owner.email)
    recovery.reset_password(session=db, token=token, password=NEW_PASSWORD)
    assert _login_works(db, other.email, PASSWORD)
    assert not _login_works(db, other.email, NEW_PASSWORD)


@pytest.mark.parametrize("tamper", ["swap_kind", "edit", "garbage"])
def test_forged_or_foreign_tokens_are_refused(db: Session, tamper: str) -> None:
    user = create_user(db, verified=False)
    row_user = db.get(User, user.id)
    assert row_user is not None
    if tamper == "swap_kind":  # a verification link is not a reset link
        token = account_links.make_token(kind=account_links.VERIFY_EMAIL, user=row_user, issued_at=utcnow())
    elif tamper == "edit":
        token = account_links.make_token(kind=account_links.PASSWORD_RESET, user=row_user, issued_at=utcnow())
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    else:
        token = "not-a-token"
    with pytest.raises(LinkRefused):
        recovery.reset_password(session=db, token=token, password=NEW_PASSWORD)
    assert _login_works(db, user.email, PASSWORD)


def test_the_answer_is_the_same_with_or_without_an_account(db: Session) -> None:
    user = create_user(db)
    stranger = random_email("nobody")
    known = recovery.request_password_reset(session=db, email=user.email.upper())
    unknown = recovery.request_password_reset(session=db, email=stranger)
    assert known.replace(user.email, "X") == unknown.replace(stranger, "X")
    assert len(_mails(db, account_links.PASSWORD_RESET, user.email)) == 1
    assert _mails(db, account_links.PASSWORD_RESET, stranger) == []


def test_reset_requests_are_throttled_per_address_with_the_same_answer(db: Session) -> None:
    user = create_user(db)
    answers = {
        recovery.request_password_reset(session=db, email=user.email, client_ip=f"198.51.100.{n}")
        for n in range(6)
    }
    assert len(answers) == 1
    assert len(_mails(db, account_links.PASSWORD_RESET, user.email)) == recovery.RESETS_PER_EMAIL.max_failures
    # An hour later the address may ask again.
    later = utcnow() + timedelta(hours=1, minutes=1)
    recovery.request_password_reset(session=db, email=user.email, now=later)
    assert (
        len(_mails(db, account_links.PASSWORD_RESET, user.email))
        == recovery.RESETS_PER_EMAIL.max_failures + 1
    )


def test_reset_requests_are_throttled_per_client_ip(db: Session) -> None:
    users = [create_user(db) for _ in range(recovery.RESETS_PER_IP.max_failures + 2)]
    for user in users:
        recovery.request_password_reset(session=db, email=user.email, client_ip="192.0.2.77")
    queued = sum(len(_mails(db, account_links.PASSWORD_RESET, u.email)) for u in users)
    assert queued == recovery.RESETS_PER_IP.max_failures


def test_a_malformed_address_is_refused_and_nothing_queued(db: Session) -> None:
    before = len(db.exec(select(MailOutbox)).all())
    with pytest.raises(accounts.AccountError, match="valid email"):
        recovery.request_password_reset(session=db, email="not-an-address")
    assert len(db.exec(select(MailOutbox)).all()) == before


def test_a_disabled_account_gets_no_link(db: Session) -> None:
    user = create_user(db)
    row = db.get(User, user.id)
    assert row is not None
    row.disabled = True
    db.add(row)
    db.flush()
    recovery.request_password_reset(session=db, email=user.email)
    assert _mails(db, account_links.PASSWORD_RESET, user.email) == []


def test_a_too_short_new_password_is_refused_and_the_link_still_works(db: Session) -> None:
    user = create_user(db)
    token = _reset_token(db, user.email)
    with pytest.raises(accounts.AccountError, match="at least 8"):
        recovery.reset_password(session=db, token=token, password="short")
    assert recovery.check_reset_link(session=db, token=token) == user.email


# --- verification -------------------------------------------------------------------


def _verify_token(db: Session, email: str) -> str:
    return _link_token(db, _mails(db, account_links.VERIFY_EMAIL, email)[-1], "/verify-email")


def test_sign_up_queues_a_verification_link_that_verifies(db: Session) -> None:
    email = random_email("new")
    user = accounts.sign_up(session=db, email=email, password=PASSWORD, wants_to_sell=True)
    assert not user.email_verified
    verified = recovery.verify_email(session=db, token=_verify_token(db, email))
    assert verified.email_verified
    row = db.get(User, user.id)
    assert row is not None and row.email_verified_at is not None
    # Opening it again changes nothing and is no error.
    assert recovery.verify_email(session=db, token=_verify_token(db, email)).email_verified


def test_operators_accounts_are_verified(db: Session) -> None:
    made = accounts.create_user(session=db, email=random_email(), password=PASSWORD, role=Role.SELLER)
    assert made.email_verified
    assert create_user(db).email_verified


def test_a_verification_link_is_bound_to_the_address(db: Session) -> None:
    email = random_email("moving")
    user = accounts.sign_up(session=db, email=email, password=PASSWORD, wants_to_sell=True)
    token = _verify_token(db, email)
    row = db.get(User, user.id)
    assert row is not None
    row.email = random_email("moved")
    db.add(row)
    db.flush()
    with pytest.raises(LinkRefused):
        recovery.verify_email(session=db, token=token)
    assert row.email_verified_at is None


def test_a_password_reset_also_verifies_the_address(db: Session) -> None:
    user = create_user(db, verified=False)
    recovery.reset_password(session=db, token=_reset_token(db, user.email), password=NEW_PASSWORD)
    assert accounts.to_public(db.get(User, user.id)).email_verified  # type: ignore[arg-type]


def test_unverified_seller_cannot_publish_or_set_up_payouts(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER, verified=False)
    product = catalog.create_product(session=db, seller_id=seller.id, title="Zine", price_cents=0)
    assert product.id is not None
    catalog.add_product_file(
        session=db,
        storage=storage,
        product_id=product.id,
        seller_id=seller.id,
        filename="zine.txt",
        stream=io.BytesIO(b"pages"),
        max_bytes=1000,
    )
    with pytest.raises(EmailNotVerified, match="Verify your e-mail address first"):
        catalog.publish_product(session=db, storage=storage, product_id=product.id, seller_id=seller.id)
    gateway = mock.Mock()
    with pytest.raises(EmailNotVerified, match="Verify your e-mail address first"):
        connect.start_onboarding(session=db, gateway=gateway, seller_id=seller.id, public_url=PUBLIC_URL)
    gateway.create_account.assert_not_called()

    recovery.verify_email(
        session=db,
        token=account_links.make_token(
            kind=account_links.VERIFY_EMAIL,
            user=db.get(User, seller.id),
            issued_at=utcnow(),  # type: ignore[arg-type]
        ),
    )
    published = catalog.publish_product(
        session=db, storage=storage, product_id=product.id, seller_id=seller.id
    )
    assert published.status == ProductStatus.PUBLISHED.value


def test_resend_verification_is_throttled(db: Session) -> None:
    user = create_user(db, Role.SELLER, verified=False)
    for _ in range(recovery.VERIFY_RESENDS_PER_USER.max_failures):
        assert user.email in recovery.resend_verification(session=db, user_id=user.id)
    with pytest.raises(recovery.DomainError, match="several links"):
        recovery.resend_verification(session=db, user_id=user.id)
    assert (
        len(_mails(db, account_links.VERIFY_EMAIL, user.email))
        == recovery.VERIFY_RESENDS_PER_USER.max_failures
    )


def test_resend_for_a_verified_user_sends_nothing(db: Session) -> None:
    user = create_user(db, Role.SELLER)
    assert (
        recovery.resend_verification(session=db, user_id=user.id)
        == "Your e-mail address is already verified."
    )
    assert _mails(db, account_links.VERIFY_EMAIL, user.email) == []
    with pytest.raises(PermissionDenied):
        recovery.resend_verification(session=db, user_id=987654321)
