"""Accounts service: sign-up rules, log-in, lockout, sessions, tickets and roles (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

import bcrypt
import pytest
from sqlmodel import Session, select

from quantoxbay.models import Role, User, UserSession, utcnow
from quantoxbay.services import DomainError, PermissionDenied, accounts
from quantoxbay.services.accounts import AccountError
from tests.factories import PASSWORD, create_user, random_email


def test_sign_up_stores_bcrypt_hash_with_cost_12_and_lowercased_email(db: Session) -> None:
    email = random_email().upper()
    user = accounts.sign_up(session=db, email=f"  {email} ", password=PASSWORD, wants_to_sell=False)
    row = db.get(User, user.id)
    assert row is not None
    assert row.email == email.lower()
    assert row.password_hash.startswith("$2b$12$")
    assert bcrypt.checkpw(PASSWORD.encode(), row.password_hash.encode())
    assert user.role == "buyer"


def test_sign_up_as_seller_gets_role_and_handle(db: Session) -> None:
    user = accounts.sign_up(session=db, email=random_email("shop"), password=PASSWORD, wants_to_sell=True)
    assert user.role == "seller"
    assert user.handle and user.handle.startswith("shop-")


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@b", "two@@example.com", "sp ace@example.com", "x@-bad-.com"]
)
def test_invalid_email_is_refused_and_nothing_written(db: Session, email: str) -> None:
    before = accounts.count_users(session=db)
    with pytest.raises(AccountError, match="valid email"):
        accounts.sign_up(session=db, email=email, password=PASSWORD, wants_to_sell=False)
    assert accounts.count_users(session=db) == before


@pytest.mark.parametrize(
    ("email", "display_name", "message"),
    [
        ("ok@example.com", "Eve\r\nBcc: victim@example.com", "The display name must be a single line"),
        ("ok@example.com", "Eve\x1b[2J", "The display name must be a single line"),
        ("ok@example.com", "Eve\x9b", "The display name must be a single line"),
        ("ok@example.com", "E" * 121, "at most 120 characters"),
        ("a\x00b@example.com", "", "The email address must be a single line"),
        ("a\x7fb@example.com", "", "The email address must be a single line"),
    ],
)
def test_control_characters_in_names_and_emails_are_refused(
    db: Session, email: str, display_name: str, message: str
) -> None:
    before = accounts.count_users(session=db)
    with pytest.raises(AccountError if "120" in message else DomainError, match=re.escape(message)):
        accounts.create_user(session=db, email=email, password=PASSWORD, display_name=display_name)
    assert accounts.count_users(session=db) == before


def test_display_name_is_kept_when_plain(db: Session) -> None:
    user = accounts.create_user(session=db, email=random_email(), password=PASSWORD, display_name="  Zoë Ng ")
    assert user.display_name == "Zoë Ng"


def test_short_password_is_refused(db: Session) -> None:
    with pytest.raises(AccountError, match="at least 8 characters"):
        accounts.sign_up(session=db, email=random_email(), password="short", wants_to_sell=False)
    with pytest.raises(AccountError, match="at most 72 bytes"):
        accounts.sign_up(session=db, email=random_email(), password="é" * 40, wants_to_sell=False)


def test_duplicate_email_is_refused_case_insensitively(db: Session) -> None:
    email = random_email()
    accounts.sign_up(session=db, email=email, password=PASSWORD, wants_to_sell=False)
    before = accounts.count_users(session=db)
    with pytest.raises(AccountError, match="already exists"):
        accounts.sign_up(session=db, email=email.upper(), password=PASSWORD, wants_to_sell=True)
    assert accounts.count_users(session=db) == before


def test_wrong_password_and_unknown_email_give_the_same_message(db: Session) -> None:
    user = create_user(db)
    with pytest.raises(AccountError) as wrong:
        accounts.authenticate(session=db, email=user.email, password="not-the-password")
    with pytest.raises(AccountError) as unknown:
        accounts.authenticate(session=db, email=random_email(), password="not-the-password")
    assert str(wrong.value) == str(unknown.value) == accounts.BAD_CREDENTIALS


def test_authenticate_is_case_insensitive_on_email(db: Session) -> None:
    user = create_user(db)
    assert accounts.authenticate(session=db, email=user.email.upper(), password=PASSWORD).id == user.id


def test_repeated_failures_lock_the_account_for_a_while(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from quantoxbay.settings import get_settings

    monkeypatch.setattr(get_settings(), "login_max_failures", 3)
    user = create_user(db)
    for _ in range(3):
        with pytest.raises(AccountError, match="Incorrect"):
            accounts.authenticate(session=db, email=user.email, password="wrong-password")
    # Even the right password is refused while locked.
    with pytest.raises(AccountError, match="Too many failed attempts"):
        accounts.authenticate(session=db, email=user.email, password=PASSWORD)
    later = utcnow() + timedelta(seconds=get_settings().login_lockout_seconds + 1)
    assert accounts.authenticate(session=db, email=user.email, password=PASSWORD, now=later).id == user.id


def test_disabled_user_cannot_log_in_and_loses_sessions(db: Session) -> None:
    user = create_user(db)
    token = accounts.start_session(session=db, user_id=user.id)
    row = db.get(User, user.id)
    assert row is not None
    row.disabled = True
    db.add(row)
    db.flush()
    with pytest.raises(AccountError, match="disabled"):
        accounts.authenticate(session=db, email=user.email, password=PASSWORD)
    assert accounts.user_for_session(session=db, token=token) is None


def test_sessions_are_random_stored_hashed_and_end_on_logout(db: Session) -> None:
    user = create_user(db)
    token = accounts.start_session(session=db, user_id=user.id)
    other = accounts.start_session(session=db, user_id=user.id)
    assert token != other and len(token) >= 40
    stored = db.exec(select(UserSession.token_hash).where(UserSession.user_id == user.id)).all()
    assert token not in stored
    assert accounts.user_for_session(session=db, token=token).id == user.id  # type: ignore[union-attr]
    accounts.end_session(session=db, token=token)
    assert accounts.user_for_session(session=db, token=token) is None
    assert accounts.user_for_session(session=db, token=other) is not None
    assert accounts.user_for_session(session=db, token="forged") is None
    assert accounts.user_for_session(session=db, token=None) is None


def test_expired_session_is_not_accepted(db: Session) -> None:
    user = create_user(db)
    token = accounts.start_session(session=db, user_id=user.id)
    row = db.exec(select(UserSession).where(UserSession.user_id == user.id)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.add(row)
    db.flush()
    assert accounts.user_for_session(session=db, token=token) is None


def test_login_ticket_is_single_use_and_keeps_a_safe_next_path(db: Session) -> None:
    user = create_user(db)
    ticket = accounts.issue_login_ticket(session=db, user_id=user.id, next_path="/products/7")
    redeemed = accounts.redeem_login_ticket(session=db, ticket=ticket)
    assert redeemed is not None
    token, next_path = redeemed
    assert next_path == "/products/7"
    assert accounts.user_for_session(session=db, token=token).id == user.id  # type: ignore[union-attr]
    assert accounts.redeem_login_ticket(session=db, ticket=ticket) is None
    assert accounts.redeem_login_ticket(session=db, ticket="made-up") is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/library", "/library"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("", "/"),
        (None, "/"),
        ("/\\evil", "/"),
    ],
)
def test_safe_next_path(given: str | None, expected: str) -> None:
    assert accounts.safe_next_path(given) == expected


def test_require_role(db: Session) -> None:
    buyer, seller, admin = (
        create_user(db, Role.BUYER),
        create_user(db, Role.SELLER),
        create_user(db, Role.ADMIN),
    )
    with pytest.raises(PermissionDenied):
        accounts.require_role(buyer, Role.SELLER)
    with pytest.raises(PermissionDenied):
        accounts.require_role(seller, Role.ADMIN)
    with pytest.raises(PermissionDenied, match="log in"):
        accounts.require_role(None, Role.BUYER)
    assert accounts.require_role(seller, Role.SELLER) == seller
    assert accounts.require_role(admin, Role.SELLER) == admin  # admins may do what sellers may
