"""Account recovery ("Forgot password?") and e-mail verification.

A reset is asked for by e-mail address and always gets the same answer, whether or not an
account has that address, so the form cannot be used to find out who has an account. Requests
are throttled per address and per client IP (the ``login_throttle`` buckets, with keys of their
own): past the limit the answer stays the same and nothing is sent. The e-mailed link
(``account_links``) works for 30 minutes and once: it is bound to the password hash it was made
against. Setting the new password ends every session of the account.

Verification: sign-up e-mails a link (``accounts.sign_up``); opening it sets
``user.email_verified_at``. Buying works before; selling (publishing a product, setting up
payouts) calls ``require_verified_email``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from quantoxbay.models import User, utcnow
from quantoxbay.services import DomainError, PermissionDenied, account_links, accounts, login_throttle
from quantoxbay.services.account_links import LinkRefused
from quantoxbay.services.login_throttle import Limit

logger = logging.getLogger(__name__)

#: A few reset e-mails per address and per client IP per hour (bursts included).
RESETS_PER_EMAIL = Limit(max_failures=3, lockout_seconds=3600)
RESETS_PER_IP = Limit(max_failures=10, lockout_seconds=3600)
VERIFY_RESENDS_PER_USER = Limit(max_failures=3, lockout_seconds=3600)
_LONGEST_LOCK = 3600

RESET_REQUESTED = (
    "If an account uses {email}, we have sent it a link to choose a new password. "
    "The link works for 30 minutes. Check your spam folder if it does not arrive."
)
VERIFY_FIRST = (
    "Verify your e-mail address first: open the link we e-mailed you when you signed up, "
    'or use "Resend verification e-mail".'
)


class EmailNotVerified(PermissionDenied):
    """Selling before the account's e-mail address is verified."""


def _count_request(session: Session, keys: list[tuple[str, Limit]], at: float) -> bool:
    """Count one request against each key; False (nothing counted) when one is over its limit."""
    if login_throttle.is_blocked(session=session, keys=[key for key, _ in keys], now=at):
        return False
    for key, limit in keys:
        login_throttle.record_failure(session=session, key=key, limit=limit, now=at)
    login_throttle.prune(session=session, now=at, max_lockout_seconds=_LONGEST_LOCK)
    return True


def request_password_reset(
    *, session: Session, email: str, client_ip: str = "", now: datetime | None = None
) -> str:
    """Queue a reset link when ``email`` has an enabled account and the throttle allows it; the
    answer (to show the user) is the same in every case."""
    normalized = accounts.validate_email(email)  # says only that the address is malformed
    at = (now or utcnow()).timestamp()
    keys = [(login_throttle.key_for("reset-account", normalized), RESETS_PER_EMAIL)]
    if client_ip:
        keys.append((login_throttle.key_for("reset-ip", client_ip), RESETS_PER_IP))
    answer = RESET_REQUESTED.format(email=normalized)
    if not _count_request(session, keys, at):
        logger.info("password.reset_throttled", extra={"client_ip": client_ip})
        return answer
    user = session.exec(select(User).where(User.email == normalized)).first()
    if user is None or user.disabled:
        logger.info("password.reset_unknown", extra={"client_ip": client_ip})
        return answer
    account_links.queue_link(session=session, kind=account_links.PASSWORD_RESET, user=user)
    logger.info("password.reset_requested", extra={"user_id": user.id, "client_ip": client_ip})
    return answer


def _reset_target(session: Session, token: str, now: datetime | None) -> User:
    claim = account_links.read_token(kind=account_links.PASSWORD_RESET, token=token, now=now)
    user = session.get(User, claim.user_id)
    # A password set since the link was made (this link used, or any other way) kills it.
    if user is None or user.disabled or account_links.fingerprint(user.password_hash) != claim.fingerprint:
        raise LinkRefused("This link has expired or was already used. Ask for a new one.")
    return user


def check_reset_link(*, session: Session, token: str, now: datetime | None = None) -> str:
    """The e-mail address a reset link is for, when it still works; ``LinkRefused`` otherwise."""
    return _reset_target(session, token, now).email


def reset_password(
    *, session: Session, token: str, password: str, now: datetime | None = None
) -> accounts.UserPublic:
    """Set a new password through a reset link; ends every session of the account.

    The link is spent by the change of password hash, taken with a conditional UPDATE: of two
    uses at once, one wins and the other is refused."""
    user = _reset_target(session, token, now)
    accounts.validate_password(password)
    old_hash, moment = user.password_hash, now or utcnow()
    changed = session.execute(
        update(User)
        .where(col(User.id) == user.id, col(User.password_hash) == old_hash)
        .values(
            password_hash=accounts.hash_password(password),
            # The link reached this mailbox: the address is proven too.
            email_verified_at=user.email_verified_at or moment,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise LinkRefused("This link has expired or was already used. Ask for a new one.")
    assert user.id is not None
    session.refresh(user)
    accounts.end_all_sessions(session=session, user_id=user.id)
    # The owner proved themselves: forget failed log-ins counted against the account.
    login_throttle.clear(session=session, key=login_throttle.key_for("account", user.email))
    logger.info("password.reset", extra={"user_id": user.id})
    return accounts.to_public(user)


def verify_email(*, session: Session, token: str, now: datetime | None = None) -> accounts.UserPublic:
    """Mark the account's address verified through its e-mailed link (again: no change)."""
    claim = account_links.read_token(kind=account_links.VERIFY_EMAIL, token=token, now=now)
    user = session.get(User, claim.user_id)
    if user is None or user.disabled or account_links.fingerprint(user.email) != claim.fingerprint:
        raise LinkRefused("This verification link is not valid for any account. Send yourself a new one.")
    if user.email_verified_at is None:
        user.email_verified_at = now or utcnow()
        session.add(user)
        session.flush()
        logger.info("email.verified", extra={"user_id": user.id})
    return accounts.to_public(user)


def resend_verification(*, session: Session, user_id: int, now: datetime | None = None) -> str:
    """Queue a new verification link (a few per hour); the answer says where it went."""
    user = session.get(User, user_id)
    if user is None or user.disabled:
        raise PermissionDenied("Please log in first.")
    if user.email_verified_at is not None:
        return "Your e-mail address is already verified."
    key = login_throttle.key_for("verify-user", str(user_id))
    if not _count_request(session, [(key, VERIFY_RESENDS_PER_USER)], (now or utcnow()).timestamp()):
        raise DomainError(
            f"We have sent several links to {user.email} in the last hour. "
            "Please check your inbox and spam folder, or try again later."
        )
    account_links.queue_link(session=session, kind=account_links.VERIFY_EMAIL, user=user)
    return f"We sent a new verification link to {user.email}."


def require_verified_email(*, session: Session, user_id: int) -> None:
    """Refuse selling (``EmailNotVerified``) until the user's address is verified."""
    verified_at = session.exec(select(User.email_verified_at).where(User.id == user_id)).first()
    if verified_at is None:
        raise EmailNotVerified(VERIFY_FIRST)
