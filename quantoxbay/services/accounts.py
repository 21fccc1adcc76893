"""Accounts: sign-up, log-in with throttling, server-side sessions, roles."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import datetime, timedelta

import bcrypt
from pydantic import BaseModel
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from quantoxbay.models import LoginTicket, Role, User, UserSession, utcnow
from quantoxbay.services import DomainError, PermissionDenied, account_links, login_throttle
from quantoxbay.services.text import one_line
from quantoxbay.settings import get_settings

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
MAX_DISPLAY_NAME = 120
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything past 72 bytes; refuse rather than truncate.
LOGIN_TICKET_TTL = timedelta(seconds=60)
LOGIN_NONCE_MIN_LENGTH = 16
BAD_CREDENTIALS = "Incorrect email or password."

# Pragmatic check: one @, no spaces, a dot in the domain. Deliverability is proven by mail, not regex.
_EMAIL_RE = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_HANDLE_RE = re.compile(r"[^a-z0-9]+")


class AccountError(DomainError):
    """Sign-up or log-in refused; the message is safe to show."""


class UserPublic(BaseModel):
    """What pages may know of a user."""

    id: int
    email: str
    role: str
    display_name: str
    handle: str | None
    # Opened the link e-mailed to their address; selling needs it (services/recovery.py).
    email_verified: bool = False

    @property
    def is_seller(self) -> bool:
        return self.role in (Role.SELLER.value, Role.ADMIN.value)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


def to_public(user: User) -> UserPublic:
    assert user.id is not None
    return UserPublic(
        id=user.id,
        email=user.email,
        role=user.role,
        display_name=user.display_name,
        handle=user.handle,
        email_verified=user.email_verified_at is not None,
    )


def normalize_email(email: str) -> str:
    return email.strip().lower()


def validate_email(email: str) -> str:
    """Return the normalized e-mail or raise AccountError."""
    normalized = one_line(normalize_email(email), "The email address")
    if len(normalized) > 254 or not _EMAIL_RE.fullmatch(normalized):
        raise AccountError("Enter a valid email address, like name@example.com.")
    return normalized


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AccountError(f"Password must be at most {MAX_PASSWORD_BYTES} bytes.")


def hash_password(password: str) -> str:
    rounds = get_settings().bcrypt_rounds
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], password_hash.encode())
    except ValueError:
        return False


# Compared against for unknown e-mails so a miss costs as much as a hit (no account probing by timing).
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def _unique_handle(session: Session, email: str) -> str:
    base = _HANDLE_RE.sub("-", email.split("@", 1)[0].lower()).strip("-")[:40] or "seller"
    handle, n = base, 1
    while session.exec(select(User.id).where(User.handle == handle)).first() is not None:
        n += 1
        handle = f"{base}-{n}"
    return handle


def create_user(
    *,
    session: Session,
    email: str,
    password: str,
    role: Role | str = Role.BUYER,
    display_name: str = "",
    email_verified: bool = True,
) -> UserPublic:
    """Create an account; raises AccountError with a clear message on bad input.

    Accounts an operator makes (the CLI, the demo data) count as verified; sign-up passes
    ``email_verified=False`` and e-mails the link."""
    normalized = validate_email(email)
    validate_password(password)
    role_value = Role(role).value
    name = one_line(display_name.strip(), "The display name")
    if len(name) > MAX_DISPLAY_NAME:
        raise AccountError(f"Display names are at most {MAX_DISPLAY_NAME} characters.")
    if session.exec(select(User.id).where(User.email == normalized)).first() is not None:
        raise AccountError("An account with this email already exists. Log in instead.")
    user = User(
        email=normalized,
        password_hash=hash_password(password),
        role=role_value,
        display_name=name or normalized.split("@", 1)[0],
        handle=_unique_handle(session, normalized) if role_value != Role.BUYER.value else None,
        email_verified_at=utcnow() if email_verified else None,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same e-mail won the race
        session.rollback()
        raise AccountError("An account with this email already exists. Log in instead.") from exc
    return to_public(user)


def sign_up(*, session: Session, email: str, password: str, wants_to_sell: bool) -> UserPublic:
    """A new account, not verified yet: the verification link is queued in the same transaction."""
    public = create_user(
        session=session,
        email=email,
        password=password,
        role=Role.SELLER if wants_to_sell else Role.BUYER,
        email_verified=False,
    )
    user = session.get(User, public.id)
    assert user is not None
    account_links.queue_link(session=session, kind=account_links.VERIFY_EMAIL, user=user)
    return public


def authenticate(
    *, session: Session, email: str, password: str, client_ip: str = "", now: datetime | None = None
) -> UserPublic:
    """Check credentials. Failures are throttled per account and per client IP (see
    ``login_throttle``); a throttled attempt gets the same answer, after the same bcrypt work,
    as a wrong password, so neither lockouts nor timing tell which accounts exist."""
    settings = get_settings()
    now = now or utcnow()
    at = now.timestamp()
    normalized = normalize_email(email)
    account_key = login_throttle.key_for("account", normalized)
    ip_key = login_throttle.key_for("ip", client_ip) if client_ip else None
    keys = [account_key, ip_key] if ip_key else [account_key]
    blocked = login_throttle.is_blocked(session=session, keys=keys, now=at)
    user = session.exec(select(User).where(User.email == normalized)).first()
    password_ok = verify_password(password, user.password_hash if user is not None else _dummy_hash())
    # No e-mail in the log lines: the account's id when there is one, and the client's address.
    facts = {"user_id": user.id if user is not None else None, "client_ip": client_ip}
    if blocked:
        logger.info("login.throttled", extra=facts)
        raise AccountError(BAD_CREDENTIALS)
    if user is None or not password_ok:
        # Unknown e-mails are counted too: their lockout looks exactly like a real account's.
        lockout = settings.login_lockout_seconds
        if login_throttle.record_failure(
            session=session,
            key=account_key,
            limit=login_throttle.Limit(settings.login_max_failures, lockout),
            now=at,
        ):
            logger.warning("login.locked", extra={"scope": "account", "lockout_seconds": lockout, **facts})
        if ip_key and login_throttle.record_failure(
            session=session,
            key=ip_key,
            limit=login_throttle.Limit(settings.login_ip_max_failures, lockout),
            now=at,
        ):
            logger.warning("login.locked", extra={"scope": "ip", "lockout_seconds": lockout, **facts})
        login_throttle.prune(session=session, now=at, max_lockout_seconds=lockout)
        session.commit()  # the caller rolls back on the error below; the count must stay
        raise AccountError(BAD_CREDENTIALS)
    if user.disabled:
        raise AccountError("This account has been disabled. Contact support.")
    # The account's owner got in: forget its failures. Not the IP's: one's own account must
    # not wipe the count of guesses made at others' from the same address.
    login_throttle.clear(session=session, key=account_key)
    return to_public(user)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(*, session: Session, user_id: int) -> str:
    """Create a server-side session; returns the random token for the HttpOnly cookie."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_digest(token),
            user_id=user_id,
            expires_at=utcnow() + timedelta(days=get_settings().session_ttl_days),
        )
    )
    session.flush()
    return token


def user_for_session(*, session: Session, token: str | None) -> UserPublic | None:
    """The logged-in user for a cookie token, or None when absent, expired or disabled."""
    if not token:
        return None
    row = session.exec(
        select(User, UserSession.expires_at)
        .join(UserSession, col(UserSession.user_id) == User.id)
        .where(UserSession.token_hash == _digest(token))
    ).first()
    if row is None:
        return None
    user, expires_at = row
    if expires_at <= utcnow() or user.disabled:
        return None
    return to_public(user)


def end_session(*, session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(UserSession).where(col(UserSession.token_hash) == _digest(token)))


def end_all_sessions(*, session: Session, user_id: int) -> None:
    session.execute(delete(UserSession).where(col(UserSession.user_id) == user_id))


def issue_login_ticket(*, session: Session, user_id: int, browser_nonce: str, next_path: str = "/") -> str:
    """A one-time ticket the browser trades at /api/auth/complete for its session cookie.

    Bound to ``browser_nonce``, the random value in the asking browser's log-in nonce cookie:
    a ticket redeemed from any other browser is refused, so nobody can log a victim into an
    account of theirs by sending the victim their own ticket (login CSRF).
    """
    if len(browser_nonce) < LOGIN_NONCE_MIN_LENGTH:
        raise AccountError("Your browser must accept cookies from this site to log in.")
    ticket = secrets.token_urlsafe(32)
    session.add(
        LoginTicket(
            ticket_hash=_digest(ticket),
            user_id=user_id,
            next_path=safe_next_path(next_path),
            nonce_hash=_digest(browser_nonce),
            expires_at=utcnow() + LOGIN_TICKET_TTL,
        )
    )
    session.flush()
    return ticket


def redeem_login_ticket(
    *, session: Session, ticket: str, browser_nonce: str | None
) -> tuple[str, str] | None:
    """Trade a ticket for (session token, next path); None when unknown, used, expired, or
    asked for by another browser (then the ticket is left as it was)."""
    row = session.exec(select(LoginTicket).where(LoginTicket.ticket_hash == _digest(ticket))).first()
    if row is None or not browser_nonce:
        return None
    if not hmac.compare_digest(row.nonce_hash, _digest(browser_nonce)):
        return None
    # DELETE ... RETURNING-free and race-safe: whoever deletes the row owns the ticket.
    deleted = session.execute(delete(LoginTicket).where(col(LoginTicket.id) == row.id)).rowcount  # type: ignore[attr-defined]
    if deleted != 1 or row.expires_at <= utcnow():
        return None
    return start_session(session=session, user_id=row.user_id), row.next_path


def safe_next_path(path: str | None) -> str:
    """Only same-site absolute paths: never '//evil.example' or 'https://...'."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path[:500]


def require_role(user: UserPublic | None, *roles: Role) -> UserPublic:
    """Raise PermissionDenied unless the user holds one of ``roles`` (admins hold all)."""
    if user is None:
        raise PermissionDenied("Please log in first.")
    allowed = {r.value for r in roles} | {Role.ADMIN.value}
    if user.role not in allowed:
        raise PermissionDenied("You do not have access to this page.")
    return user


def count_users(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()
