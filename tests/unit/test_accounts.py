"""Accounts service: sign-up rules, log-in, throttling, sessions, tickets and roles (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import bcrypt
import pytest
from sqlalchemy.engine import Engine
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
    now = utcnow()
    for _ in range(3):
        with pytest.raises(AccountError, match="Incorrect"):
            accounts.authenticate(session=db, email=user.email, password="wrong-password", now=now)
    # Even the right password is refused while locked, with the wrong password's message.
    with pytest.raises(AccountError) as locked:
        accounts.authenticate(session=db, email=user.email, password=PASSWORD, now=now + timedelta(seconds=5))
    assert str(locked.value) == accounts.BAD_CREDENTIALS
    later = now + timedelta(seconds=get_settings().login_lockout_seconds + 1)
    assert accounts.authenticate(session=db, email=user.email, password=PASSWORD, now=later).id == user.id


def test_a_locked_account_and_an_unknown_one_answer_alike(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same message and the same bcrypt work whether the account exists, is locked, or neither."""
    from quantoxbay.settings import get_settings

    monkeypatch.setattr(get_settings(), "login_max_failures", 2)
    user, stranger = create_user(db), random_email()
    now = utcnow()
    for email in (user.email, stranger):
        for _ in range(2):
            with pytest.raises(AccountError):
                accounts.authenticate(session=db, email=email, password="wrong-password", now=now)
    checks = []
    real_checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: checks.append(1) or real_checkpw(*a))
    answers = []
    for email, password in [(user.email, PASSWORD), (stranger, PASSWORD), (random_email(), "wrong-password")]:
        checks.clear()
        with pytest.raises(AccountError) as refused:
            accounts.authenticate(session=db, email=email, password=password, now=now)
        answers.append((str(refused.value), len(checks)))
    assert answers == [(accounts.BAD_CREDENTIALS, 1)] * 3


def test_failures_drain_over_time(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each failure is forgotten over LOCKOUT / MAX_FAILURES seconds: slow mistakes never lock."""
    from quantoxbay.settings import get_settings

    monkeypatch.setattr(get_settings(), "login_max_failures", 3)
    monkeypatch.setattr(get_settings(), "login_lockout_seconds", 900)
    user = create_user(db)
    start = utcnow()
    # Two quick failures, then one every 6 minutes (each drains in 900 / 3 = 300 s): never full.
    times = [start, start + timedelta(seconds=1)] + [start + timedelta(seconds=360 * i) for i in range(1, 6)]
    for at in times:
        with pytest.raises(AccountError):
            accounts.authenticate(session=db, email=user.email, password="wrong-password", now=at)
    after = times[-1] + timedelta(seconds=1)
    assert accounts.authenticate(session=db, email=user.email, password=PASSWORD, now=after).id == user.id
    # The same three failures in a burst do lock.
    for _ in range(3):
        with pytest.raises(AccountError):
            accounts.authenticate(session=db, email=user.email, password="wrong-password", now=after)
    with pytest.raises(AccountError):
        accounts.authenticate(session=db, email=user.email, password=PASSWORD, now=after)


def test_failures_from_one_ip_throttle_that_ip_across_accounts(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantoxbay.settings import get_settings

    monkeypatch.setattr(get_settings(), "login_ip_max_failures", 3)
    target, other = create_user(db), create_user(db)
    now = utcnow()
    for _ in range(3):  # one guess each at three accounts: no account is near its own limit
        with pytest.raises(AccountError):
            accounts.authenticate(
                session=db, email=random_email(), password="wrong-password", client_ip="203.0.113.9", now=now
            )
    with pytest.raises(AccountError) as refused:
        accounts.authenticate(
            session=db, email=target.email, password=PASSWORD, client_ip="203.0.113.9", now=now
        )
    assert str(refused.value) == accounts.BAD_CREDENTIALS
    # Another address is not affected, and a success elsewhere does not reset the IP's count.
    assert (
        accounts.authenticate(
            session=db, email=other.email, password=PASSWORD, client_ip="198.51.100.7", now=now
        ).id
        == other.id
    )
    with pytest.raises(AccountError):
        accounts.authenticate(
            session=db, email=target.email, password=PASSWORD, client_ip="203.0.113.9", now=now
        )
    later = now + timedelta(seconds=get_settings().login_lockout_seconds + 1)
    assert (
        accounts.authenticate(
            session=db, email=target.email, password=PASSWORD, client_ip="203.0.113.9", now=later
        ).id
        == target.id
    )


def test_concurrent_failures_from_several_workers_all_count(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four workers failing at once on one account and one IP: every failure lands, none errors."""
    from quantoxbay.settings import get_settings

    monkeypatch.setattr(get_settings(), "login_max_failures", 4)
    monkeypatch.setattr(get_settings(), "login_ip_max_failures", 4)
    with Session(engine) as s:
        user = create_user(s)
        s.commit()
    start, now = threading.Barrier(4), utcnow()

    def fail() -> str:
        with Session(engine) as s:
            start.wait()
            try:
                accounts.authenticate(
                    session=s, email=user.email, password="wrong-password", client_ip="198.51.100.44", now=now
                )
            except AccountError as exc:
                return str(exc)
        return "logged in"

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: fail(), range(4))) == [accounts.BAD_CREDENTIALS] * 4
    with Session(engine) as s, pytest.raises(AccountError):
        accounts.authenticate(session=s, email=user.email, password=PASSWORD, now=now)


def test_a_success_forgets_the_accounts_failures(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from quantoxbay.settings import get_settings

    monkeypatch.setattr(get_settings(), "login_max_failures", 3)
    user = create_user(db)
    now = utcnow()
    for _round in range(2):
        for _ in range(2):
            with pytest.raises(AccountError):
                accounts.authenticate(session=db, email=user.email, password="wrong-password", now=now)
        assert accounts.authenticate(session=db, email=user.email, password=PASSWORD, now=now).id == user.id


def test_the_throttle_stores_no_email_and_forgets_old_buckets(db: Session) -> None:
    from quantoxbay.models import LoginThrottle
    from quantoxbay.services import login_throttle
    from quantoxbay.settings import get_settings

    email, now = random_email(), utcnow()
    with pytest.raises(AccountError):
        accounts.authenticate(
            session=db, email=email, password="wrong-password", client_ip="192.0.2.1", now=now
        )
    keys = [login_throttle.key_for("account", email), login_throttle.key_for("ip", "192.0.2.1")]
    mine = select(LoginThrottle).where(LoginThrottle.key_hash.in_(keys))  # type: ignore[attr-defined]
    assert len(db.exec(mine).all()) == 2
    assert not any(
        email in key or "192.0.2.1" in key for key in db.exec(select(LoginThrottle.key_hash)).all()
    )
    much_later = now + timedelta(seconds=2 * get_settings().login_lockout_seconds + 1)
    with pytest.raises(AccountError):
        accounts.authenticate(session=db, email=random_email(), password="wrong-password", now=much_later)
    assert db.exec(mine).all() == []


NONCE = "browser-nonce-0123456789abcdef"


def test_login_ticket_is_single_use_and_keeps_a_safe_next_path(db: Session) -> None:
    user = create_user(db)
    ticket = accounts.issue_login_ticket(
        session=db, user_id=user.id, browser_nonce=NONCE, next_path="/products/7"
    )
    redeemed = accounts.redeem_login_ticket(session=db, ticket=ticket, browser_nonce=NONCE)
    assert redeemed is not None
    token, next_path = redeemed
    assert next_path == "/products/7"
    assert accounts.user_for_session(session=db, token=token).id == user.id  # type: ignore[union-attr]
    assert accounts.redeem_login_ticket(session=db, ticket=ticket, browser_nonce=NONCE) is None
    assert accounts.redeem_login_ticket(session=db, ticket="made-up", browser_nonce=NONCE) is None


def test_login_ticket_is_only_for_the_browser_that_asked(db: Session) -> None:
    user = create_user(db)
    ticket = accounts.issue_login_ticket(session=db, user_id=user.id, browser_nonce=NONCE)
    sessions_before = len(db.exec(select(UserSession)).all())
    for other in (None, "", "another-browser-nonce-0123456789"):
        assert accounts.redeem_login_ticket(session=db, ticket=ticket, browser_nonce=other) is None
    assert len(db.exec(select(UserSession)).all()) == sessions_before
    # Nothing was consumed: the browser that asked can still trade it.
    assert accounts.redeem_login_ticket(session=db, ticket=ticket, browser_nonce=NONCE) is not None


def test_login_ticket_needs_a_nonce(db: Session) -> None:
    user = create_user(db)
    with pytest.raises(AccountError, match="cookies"):
        accounts.issue_login_ticket(session=db, user_id=user.id, browser_nonce="")


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
