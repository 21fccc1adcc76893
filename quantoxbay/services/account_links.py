"""The links e-mailed to prove a user reads their mailbox: "reset your password" and "verify your
e-mail address".

Each link carries a token signed with ``APP_SECRET`` (itsdangerous), so nothing secret is stored:
the outbox row says only which user and when it was asked for, and the token is made when the
worker renders the e-mail. A token names the user, the moment it was asked for (it expires
``RESET_TTL`` or ``VERIFY_TTL`` after that) and a fingerprint of what it acts on: the password
hash for a reset (so a link dies as soon as any password is set: single use), the e-mail address
for a verification (so it cannot verify an address the account no longer has).

The e-mails go through the receipts outbox (``services/receipts.py``): queued in the caller's
transaction, sent by the outbox worker after the commit, retried on SMTP failures.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session

from quantoxbay import routes
from quantoxbay.models import MailOutbox, User, utcnow
from quantoxbay.services import DomainError, NotFound, notifier
from quantoxbay.services.notifier import Announcement
from quantoxbay.services.receipts import MAIL_QUEUED, _message
from quantoxbay.settings import get_settings

RESET_TTL = timedelta(minutes=30)
VERIFY_TTL = timedelta(days=3)

#: Outbox kinds: "<kind>:<user id>". The row's ``created_at`` is when the link was asked for.
PASSWORD_RESET = "account.reset"  # noqa: S105 (an outbox kind)
VERIFY_EMAIL = "account.verify"

_SALTS = {PASSWORD_RESET: "quantoxbay.password-reset", VERIFY_EMAIL: "quantoxbay.verify-email"}
_TTLS = {PASSWORD_RESET: RESET_TTL, VERIFY_EMAIL: VERIFY_TTL}


class LinkRefused(DomainError):
    """The link is unknown, tampered with, expired or already used; the text says what to do."""


@dataclass(frozen=True)
class LinkClaim:
    """What a valid token says: whose it is and what it was made for."""

    user_id: int
    fingerprint: str
    issued_at: datetime


def fingerprint(value: str) -> str:
    """A short digest of the password hash or e-mail the link is bound to (the token is signed,
    not encrypted: it must not carry the hash itself)."""
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _serializer(kind: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().app_secret, salt=_SALTS[kind])


def make_token(*, kind: str, user: User, issued_at: datetime) -> str:
    assert user.id is not None
    bound = user.password_hash if kind == PASSWORD_RESET else user.email
    return _serializer(kind).dumps([user.id, fingerprint(bound), int(issued_at.timestamp())])


def read_token(*, kind: str, token: str, now: datetime | None = None) -> LinkClaim:
    """The claim of a genuine, unexpired token; ``LinkRefused`` otherwise. Whether it still fits
    the account (password unchanged, same e-mail) is for the caller, which has the user."""
    expired = LinkRefused(
        "This link has expired or was already used. Ask for a new one."
        if kind == PASSWORD_RESET
        else "This verification link has expired. Send yourself a new one from your seller pages."
    )
    ttl = _TTLS[kind]
    try:
        # The signature's own clock bounds the age too (it is stamped when the e-mail is rendered).
        user_id, bound, issued = _serializer(kind).loads(token, max_age=int(ttl.total_seconds()))
        issued_at = datetime.fromtimestamp(int(issued), tz=UTC)
    except (BadSignature, ValueError, TypeError, OverflowError) as exc:
        raise expired from exc
    if not isinstance(user_id, int) or not isinstance(bound, str):
        raise expired
    if issued_at + ttl <= (now or utcnow()):
        raise expired
    return LinkClaim(user_id=user_id, fingerprint=bound, issued_at=issued_at)


def queue_link(*, session: Session, kind: str, user: User) -> None:
    """Queue the e-mail with a ``kind`` link for ``user`` in the caller's transaction; the outbox
    worker is woken after the commit."""
    assert user.id is not None and kind in _SALTS
    session.add(MailOutbox(order_id=None, kind=f"{kind}:{user.id}", to_email=user.email))
    session.flush()
    notifier.queue(session, Announcement(kind=MAIL_QUEUED, topics=()))


def is_account_mail(kind: str) -> bool:
    return kind.startswith((f"{PASSWORD_RESET}:", f"{VERIFY_EMAIL}:"))


def render(*, session: Session, row: MailOutbox, public_url: str, sender: str) -> EmailMessage:
    """The e-mail of an ``account.*`` outbox row, with a freshly signed link."""
    kind, _, user_id = row.kind.partition(":")
    user = session.get(User, int(user_id)) if user_id.isdigit() else None
    # An account deleted or moved to another address since: the link is not sent to the old one.
    if user is None or user.email != row.to_email or kind not in _SALTS:
        raise NotFound(f"the account of mail {row.kind!r} is gone or has another address")
    token = make_token(kind=kind, user=user, issued_at=row.created_at)
    if kind == PASSWORD_RESET:
        url = f"{public_url}{routes.RESET_PASSWORD}?token={token}"
        subject = "Reset your QuantoxBay password"
        paragraphs = [
            "Someone (we hope you) asked to reset the password of your QuantoxBay account.",
            "Open this link within 30 minutes to choose a new password. It works once.",
        ]
        link_text = "Choose a new password"
        closing = "If you did not ask, ignore this e-mail: your password stays as it is."
    else:
        url = f"{public_url}{routes.VERIFY_EMAIL}?token={token}"
        subject = "Verify your e-mail address for QuantoxBay"
        paragraphs = [
            "Welcome to QuantoxBay. Please confirm that this is your e-mail address.",
            "You can buy right away; to publish products and set up payouts, open this link "
            "(it works for 3 days).",
        ]
        link_text = "Verify my e-mail address"
        closing = "If you did not create an account, ignore this e-mail."
    text = "\n\n".join([*paragraphs, f"{link_text}: {url}", closing]) + "\n"
    html_body = (
        "<html><body style='font-family:sans-serif'>"
        + "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        + f"<p><a href='{html.escape(url)}'>{html.escape(link_text)}</a></p>"
        + f"<p>{html.escape(closing)}</p></body></html>"
    )
    return _message(to=row.to_email, sender=sender, subject=subject, text=text, html_body=html_body)
