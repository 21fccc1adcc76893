"""SQLModel tables. Money is always integer cents plus a lowercase ISO currency.

Layers follow full-stack-fastapi-template: a table row never leaves the service
layer; pages get the ``*Public`` models (plain data).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import BigInteger, Column, DateTime, Dialect, Index, Text, UniqueConstraint, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext


def utcnow() -> datetime:
    """Timezone-aware 'now' in UTC (we store UTC and show the viewer's zone)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in time: timezone-aware UTC in Python, whatever the database.

    PostgreSQL stores it as ``timestamp with time zone``; SQLite, which has no time zones, as
    the UTC wall-clock text SQLAlchemy's ``DateTime`` writes (``2026-11-30 01:27:13.000000``).
    Either way what is read back is an aware datetime in UTC, so model attributes compare with
    ``utcnow()`` without conversions. A naive datetime is refused (ValueError, before anything
    is written): it names no moment, and guessing UTC would hide a local time that slipped in.
    The same conversion runs for query parameters compared with the column and for
    ``db.insert_rows``, which applies the column's bind processor.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime) and value.tzinfo is UTC:
            # utcnow()'s values, nearly all of them: no conversion (the webhook's hot path).
            moment = value
        elif not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"UTCDateTime needs a timezone-aware datetime, got {value!r}")
        else:
            moment = value.astimezone(UTC)
        # SQLite's DateTime writes the wall clock and drops any offset: make it UTC's, as before.
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime read a {type(value).__name__}, not a datetime: {value!r}")
        # SQLite gives the stored UTC wall clock back naive; PostgreSQL gives the session's zone.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(enum.StrEnum):
    BUYER = "buyer"
    SELLER = "seller"
    ADMIN = "admin"


class OrderStatus(enum.StrEnum):
    PENDING = "pending"  # checkout started, payment not confirmed
    PAID = "paid"
    FAILED = "failed"  # async payment failed
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    DISPUTED = "disputed"

    @classmethod
    def active(cls) -> tuple[str, ...]:
        """The stored values of the statuses that grant the buyer their files (and can be refunded)."""
        return (cls.PAID.value, cls.PARTIALLY_REFUNDED.value)


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"
    # Taken down by an admin (who, when, why on the product): off the store, and its seller's
    # "Publish" is refused until an admin restores it.
    REMOVED = "removed"
    DELETED = "deleted"


class WebhookOutcome(enum.StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    REJECTED = "rejected"  # a session fulfilment refused: see ``WebhookEvent.reason``
    FAILED = "failed"


class ChargeEventStatus(enum.StrEnum):
    KEPT = "kept"
    APPLIED = "applied"


class MailStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"  # reserved, Stripe not answered yet
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


# --- accounts -------------------------------------------------------------------


class User(SQLModel, table=True):
    """An account; e-mail is unique case-insensitively (stored lowercased)."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=100)
    role: str = Field(default=Role.BUYER.value, max_length=16)
    display_name: str = Field(default="", max_length=120)
    handle: str | None = Field(default=None, max_length=60, unique=True)
    disabled: bool = Field(default=False)
    failed_login_count: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When the user opened the link e-mailed to this address (services/recovery.py); None until
    # then. Selling (publishing, payouts) needs it; buying does not.
    email_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """A server-side login session. Only the SHA-256 of the cookie token is stored."""

    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class LoginTicket(SQLModel, table=True):
    """One-time, short-lived ticket a page exchanges for the HttpOnly session cookie.

    The UI talks to the server over a websocket, which cannot set cookies; the
    browser visits /api/auth/complete with this ticket to receive the cookie.
    """

    __tablename__ = "login_ticket"

    id: int | None = Field(default=None, primary_key=True)
    ticket_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    next_path: str = Field(default="/", max_length=500)
    # SHA-256 of the asking browser's log-in nonce cookie: only that browser may redeem it.
    nonce_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failed log-ins per key (an account's e-mail, a client IP) as a leaky bucket.

    Times are epoch seconds (floats) so that one portable UPDATE drains and refills the
    bucket atomically on SQLite and PostgreSQL, whichever worker handles the attempt.
    Keys are keyed hashes: the table holds no e-mail addresses or IPs.
    """

    __tablename__ = "login_throttle"

    key_hash: str = Field(primary_key=True, max_length=64)
    # When the bucket is empty again; each failure pushes it further out.
    drained_at: float = Field(index=True)
    # Refused outright until then (0: not blocked).
    blocked_until: float = Field(default=0.0)


# --- catalog --------------------------------------------------------------------


class Product(SQLModel, table=True):
    """A digital product a seller offers."""

    # Listings read one index range per sort order and seek past the last row seen
    # (keyset pagination); the id at the end breaks ties so the seek is exact.
    # Full-text search objects (SQLite FTS5 table ``product_fts``, PostgreSQL column
    # ``product.search_vector``) are hand-written in the migration: see SEARCH_SCHEMA_NAMES.
    __table_args__ = (
        Index("ix_product_status_created", "status", "created_at", "id"),
        Index("ix_product_status_price", "status", "price_cents", "id"),
        Index("ix_product_status_sales", "status", "sales_count", "id"),
        Index("ix_product_status_category_created", "status", "category", "created_at", "id"),
        Index("ix_product_seller_status_created", "seller_id", "status", "created_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    seller_id: int = Field(foreign_key="user.id")
    title: str = Field(max_length=200)
    slug: str = Field(default="", max_length=220)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    price_cents: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(default="usd", max_length=3)
    # "Pay what you want": when set, the buyer may pay more; price_cents is the minimum.
    pay_what_you_want: bool = Field(default=False)
    category: str = Field(default="", max_length=60)
    tags: str = Field(default="", max_length=500)  # comma separated, lowercased
    cover_key: str | None = Field(default=None, max_length=500)
    status: str = Field(default=ProductStatus.DRAFT.value, max_length=16)
    # Why an admin removed it (status "removed"), shown to its seller.
    unpublished_reason: str = Field(default="", max_length=500)
    # The admin who removed it, and when. No foreign key: a plain ADD COLUMN keeps SQLite's
    # full-text triggers on this table (a batch copy would drop them); admin_action keeps the history.
    removed_by_id: int | None = Field(default=None)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sale_price_cents: int | None = Field(default=None, sa_type=BigInteger)
    sale_starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sale_ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    download_limit: int | None = Field(default=None)
    sales_count: int = Field(default=0)
    # Its Stripe Product, made on first need (services.stripe_products): Checkout line items name it,
    # and product-scoped coupons list it in ``applies_to``. ``stripe_product_name`` is the
    # title Stripe has, so a renamed product is renamed there at its next checkout.
    stripe_product_id: str | None = Field(default=None, max_length=255)
    stripe_product_name: str | None = Field(default=None, max_length=250)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProductFile(SQLModel, table=True):
    """A file delivered with a product; replacing it keeps buyers' access."""

    __tablename__ = "product_file"

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True, ondelete="CASCADE")
    filename: str = Field(max_length=255)
    storage_key: str = Field(max_length=500)
    size_bytes: int = Field(default=0, sa_type=BigInteger)
    content_type: str = Field(default="application/octet-stream", max_length=120)
    sha256: str = Field(default="", max_length=64)
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


#: Database objects for full-text search that SQLModel cannot describe (an FTS5 virtual
#: table and its shadow tables, a tsvector generated column and its GIN index). The
#: migration creates them by hand; autogenerate and the drift test skip them by name.
SEARCH_SCHEMA_NAMES = frozenset(
    {
        "product_fts",
        "product_fts_data",
        "product_fts_idx",
        "product_fts_content",
        "product_fts_docsize",
        "product_fts_config",
        "search_vector",
        "ix_product_search_vector",
    }
)


def include_in_autogenerate(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic ``include_name`` hook: leave the hand-written search objects alone."""
    return name not in SEARCH_SCHEMA_NAMES


def render_autogenerate_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Alembic ``render_item`` hook: a UTCDateTime column is written into a migration as the
    plain ``sa.DateTime(timezone=True)`` it stores, so migrations never import the models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False  # Alembic's own rendering


# --- orders ---------------------------------------------------------------------


#: A destination charge whose money the ledger has not read back yet (``ix_order_ledger_unsynced``).
UNSYNCED_SALE = "ledger_synced_at IS NULL AND seller_account_id IS NOT NULL AND total_cents > 0"


class Order(SQLModel, table=True):
    """A purchase. Exactly one per Stripe Checkout Session (unique constraint)."""

    __tablename__ = "order"
    __table_args__ = (
        Index("ix_order_buyer_created", "buyer_id", "created_at"),
        # The sales the ledger has still to read back from Stripe (services.ledger): a few rows at
        # any time, found without scanning every order ever made.
        Index(
            "ix_order_ledger_unsynced",
            "id",
            sqlite_where=text(UNSYNCED_SALE),
            postgresql_where=text(UNSYNCED_SALE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    buyer_id: int = Field(foreign_key="user.id")
    status: str = Field(default=OrderStatus.PENDING.value, max_length=24, index=True)
    currency: str = Field(default="usd", max_length=3)
    subtotal_cents: int = Field(default=0, sa_type=BigInteger)
    discount_cents: int = Field(default=0, sa_type=BigInteger)
    total_cents: int = Field(default=0, sa_type=BigInteger)
    refunded_cents: int = Field(default=0, sa_type=BigInteger)
    promo_code: str = Field(default="", max_length=60)
    stripe_session_id: str = Field(max_length=255, unique=True)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255, index=True)
    # The money, as Stripe Connect moves it (services/fees.py, services/ledger.py). A destination
    # charge on the platform: Stripe takes its fee from the platform, transfers the charge less the
    # application fee to the seller's connected account, and the platform keeps the rest.
    seller_account_id: str | None = Field(default=None, max_length=255)  # acct_... paid to
    transfer_group: str | None = Field(default=None, max_length=255)  # every transfer of this sale
    application_fee_cents: int = Field(default=0, sa_type=BigInteger)  # fee set on the charge
    platform_fee_cents: int = Field(default=0, sa_type=BigInteger)  # the fee on what was paid
    seller_share_cents: int = Field(default=0, sa_type=BigInteger)  # total less the platform fee
    stripe_fee_cents: int | None = Field(default=None, sa_type=BigInteger)  # from the balance txn
    fee_refunded_cents: int = Field(default=0, sa_type=BigInteger)  # application fee refunded
    transfer_reversed_cents: int = Field(default=0, sa_type=BigInteger)  # taken back from the seller
    transfer_returned_cents: int = Field(default=0, sa_type=BigInteger)  # given back (won disputes)
    fee_adjusted_cents: int = Field(default=0, sa_type=BigInteger)  # see ledger.sync_order
    adjustment_reversed_cents: int = Field(default=0, sa_type=BigInteger)  # refunds took it back
    stripe_charge_id: str | None = Field(default=None, max_length=255)
    stripe_transfer_id: str | None = Field(default=None, max_length=255)
    stripe_application_fee_id: str | None = Field(default=None, max_length=255)
    # Set once the charge's ids and Stripe's fee are read back (services.ledger.sync_orders).
    ledger_synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    receipt_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CheckoutRecord(SQLModel, table=True):
    """A Checkout Session this shop created: what it sold, to whom, for how much, with which codes.

    Fulfilment grants an order only for a session recorded here whose amounts match: anyone
    holding the Stripe key can create sessions with shop-looking metadata, but not this row.
    """

    __tablename__ = "checkout_record"

    id: int | None = Field(default=None, primary_key=True)
    stripe_session_id: str = Field(max_length=255, unique=True)
    buyer_id: int = Field(foreign_key="user.id")
    product_id: int = Field(foreign_key="product.id")
    currency: str = Field(max_length=3)
    subtotal_cents: int = Field(sa_type=BigInteger)
    # Whether the hosted page let the buyer type a promotion code ...
    allow_promotion_codes: bool = Field(default=False)
    # ... or which promotion the server attached itself (services.promotions.check_code).
    promotion_id: int | None = Field(default=None, foreign_key="promotion.id")
    # The destination charge as the shop asked for it: the seller's account, the fee schedule in
    # force and the application fee it set (services.checkout, services.fees).
    seller_account_id: str | None = Field(default=None, max_length=255)
    fee_basis_points: int = Field(default=0)
    fee_fixed_cents: int = Field(default=0, sa_type=BigInteger)
    application_fee_cents: int = Field(default=0, sa_type=BigInteger)
    transfer_group: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrderItem(SQLModel, table=True):
    """One product bought in an order, with the seller and the price paid."""

    __tablename__ = "order_item"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id"),
        Index("ix_order_item_seller_created", "seller_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True, ondelete="CASCADE")
    product_id: int = Field(foreign_key="product.id", index=True)
    seller_id: int = Field(foreign_key="user.id")
    title: str = Field(max_length=200)
    quantity: int = Field(default=1)
    unit_price_cents: int = Field(default=0, sa_type=BigInteger)
    discount_cents: int = Field(default=0, sa_type=BigInteger)
    total_cents: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DownloadGrant(SQLModel, table=True):
    """The right of a buyer to download a product's files, given by a paid order."""

    __tablename__ = "download_grant"
    __table_args__ = (UniqueConstraint("order_id", "product_id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", ondelete="CASCADE")
    product_id: int = Field(foreign_key="product.id")
    buyer_id: int = Field(foreign_key="user.id", index=True)
    revoked: bool = Field(default=False)
    downloads_used: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- Stripe events and live pushes ---------------------------------------------


class WebhookEvent(SQLModel, table=True):
    """Each Stripe event received, recorded once by its id (unique)."""

    __tablename__ = "webhook_event"

    id: int | None = Field(default=None, primary_key=True)
    stripe_event_id: str = Field(max_length=255, unique=True)
    type: str = Field(max_length=100, index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(default=WebhookOutcome.RECEIVED.value, max_length=40)
    reason: str = Field(default="", max_length=500)
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    payload: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class ChargeEvent(SQLModel, table=True):
    """A refund or dispute event of Stripe's, by payment intent (services.charge_events).

    Stripe delivers events in any order: one that arrives before its order exists is ``kept``
    and applied when fulfilment creates the order (same transaction); one whose order exists is
    recorded ``applied``. Disputes are judged by the latest event of each dispute, so a late
    ``charge.dispute.created`` never undoes its ``charge.dispute.closed``. A kept event whose
    order never comes (a payment that is not the shop's) stays kept, for the admin to see.
    """

    __tablename__ = "charge_event"

    id: int | None = Field(default=None, primary_key=True)
    stripe_event_id: str = Field(max_length=255, unique=True)
    type: str = Field(max_length=100)
    stripe_payment_intent_id: str = Field(max_length=255, index=True)
    stripe_object_id: str = Field(default="", max_length=255)  # the charge or the dispute
    stripe_created: int = Field(default=0, sa_type=BigInteger)  # the event's ``created`` (Unix seconds)
    status: str = Field(default=ChargeEventStatus.KEPT.value, max_length=16)
    payload: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # data.object
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LiveSubscription(SQLModel, table=True):
    """A browser page (Reflex client token) that wants a push when a topic changes.

    Kept in the database, not process memory, so any worker can push to it.
    Topics: "checkout:<stripe session id>", "seller:<user id>".
    """

    __tablename__ = "live_subscription"
    __table_args__ = (UniqueConstraint("topic", "client_token", "state_name"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=255, index=True)
    client_token: str = Field(max_length=255)
    state_name: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- post-purchase: receipts, download log, refunds and disputes ---------------


class MailOutbox(SQLModel, table=True):
    """An e-mail to send, written in the transaction that decided it. Unique per (order, kind):
    a receipt is queued once however often fulfilment runs; a background worker sends it."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        UniqueConstraint("order_id", "kind"),
        Index("ix_mail_outbox_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int | None = Field(default=None, foreign_key="order.id", ondelete="CASCADE")
    # "receipt", or "update:<product id>:<file id>:<version>" for a file-update notice, or
    # "product.removed:<admin_action id>" / "product.restored:<admin_action id>" for a seller's
    # notice (no order: order_id is NULL), or "account.reset:<user id>" / "account.verify:<user id>"
    # for a password-reset or e-mail verification link (services/account_links.py; no order)
    kind: str = Field(max_length=80)
    to_email: str = Field(max_length=254)
    status: str = Field(default=MailStatus.PENDING.value, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=1000)
    send_count: int = Field(default=0)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DownloadLog(SQLModel, table=True):
    """Every download request that was let through: who, when, from where, and whether it counted."""

    __tablename__ = "download_log"
    __table_args__ = (Index("ix_download_log_grant_file_created", "grant_id", "file_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="download_grant.id", ondelete="CASCADE")
    order_id: int = Field(foreign_key="order.id", ondelete="CASCADE")
    file_id: int = Field(foreign_key="product_file.id", ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id")
    ip: str = Field(default="", max_length=64)
    range_start: int = Field(default=0, sa_type=BigInteger)
    counted: bool = Field(default=False)
    # Which signed link (a hash of its token): a Range continuation counts once only on its own link.
    link_id: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Refund(SQLModel, table=True):
    """A refund we asked Stripe for (or learned of from a webhook), one row per Stripe refund."""

    __tablename__ = "refund"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True, ondelete="CASCADE")
    stripe_refund_id: str | None = Field(default=None, max_length=255, unique=True)
    amount_cents: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(default="usd", max_length=3)
    reason: str = Field(default="", max_length=40)
    status: str = Field(default=RefundStatus.REQUESTED.value, max_length=16)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- promotions: promo codes ----------------------------------------------------


class Promotion(SQLModel, table=True):
    """A seller's promo code, backed by a Stripe coupon and a Stripe promotion code.

    ``stripe_code`` is the code Stripe knows: the seller's own code (buyers may type it on
    the hosted checkout page), or, for once-per-buyer codes, a random hidden one so the code
    can only be redeemed through our server, which enforces the per-buyer rule.
    """

    __tablename__ = "promotion"
    __table_args__ = (Index("ix_promotion_seller_created", "seller_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    seller_id: int = Field(foreign_key="user.id")
    code: str = Field(max_length=40)
    code_lower: str = Field(max_length=40, index=True)
    percent_off: int | None = Field(default=None)
    amount_off_cents: int | None = Field(default=None, sa_type=BigInteger)
    currency: str = Field(default="usd", max_length=3)
    product_id: int | None = Field(default=None, foreign_key="product.id")  # None: all the seller's
    max_redemptions: int | None = Field(default=None)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    once_per_buyer: bool = Field(default=False)
    active: bool = Field(default=True)
    stripe_coupon_id: str = Field(max_length=255)
    stripe_promotion_code_id: str = Field(max_length=255, unique=True)
    stripe_code: str = Field(max_length=60)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deactivated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PromotionClaim(SQLModel, table=True):
    """A once-per-buyer code our server attached to one Checkout Session (until it expires)."""

    __tablename__ = "promotion_claim"
    __table_args__ = (Index("ix_promotion_claim_promotion_buyer", "promotion_id", "buyer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    promotion_id: int = Field(foreign_key="promotion.id", ondelete="CASCADE")
    buyer_id: int = Field(foreign_key="user.id")
    stripe_session_id: str = Field(max_length=255, unique=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- analytics ------------------------------------------------------------------


class AdminAction(SQLModel, table=True):
    """What an admin did (change a role, disable, unpublish, refund, resend an event): who, to what, when."""

    __tablename__ = "admin_action"
    __table_args__ = (Index("ix_admin_action_created", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="user.id")
    action: str = Field(max_length=40)  # "user.role", "user.disable", "product.unpublish", ...
    target: str = Field(max_length=80)  # "user:7", "product:3", "order:12", "webhook_event:9"
    detail: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SalesRollup(SQLModel, table=True):
    """Paid sales per seller, product, currency and 15-minute UTC slot, kept up to date in the
    transaction that pays (fulfillment) or refunds (refunds) an order. Dashboards read this, not
    the orders: a seller's slots sit together in one covering index, however many sales.

    15-minute slots keep local days exact in every zone (all UTC offsets are multiples of it).
    ``orders`` counts an order once per seller (on its first item); ``items`` once per product.
    """

    __tablename__ = "sales_rollup"
    __table_args__ = (
        UniqueConstraint("seller_id", "slot", "product_id", "currency"),
        Index(
            "ix_sales_rollup_covering",
            "seller_id",
            "slot",
            "product_id",
            "currency",
            "orders",
            "items",
            "units",
            "gross_cents",
            "discount_cents",
            "refunded_cents",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    seller_id: int = Field(foreign_key="user.id")
    slot: int = Field(sa_type=BigInteger)  # UTC seconds since the epoch, a multiple of 900
    product_id: int = Field(foreign_key="product.id")
    currency: str = Field(max_length=3)
    orders: int = Field(default=0)
    items: int = Field(default=0)
    units: int = Field(default=0)
    gross_cents: int = Field(default=0, sa_type=BigInteger)
    discount_cents: int = Field(default=0, sa_type=BigInteger)
    refunded_cents: int = Field(default=0, sa_type=BigInteger)


# --- sellers get paid: Stripe Connect ----------------------------------------------


class SellerAccount(SQLModel, table=True):
    """A seller's Stripe connected account (Express) and what Stripe last said of it.

    Written when the shop creates the account, then only from ``account.updated`` (or a fresh
    retrieve): ``stripe_updated`` keeps the newest fact, so an old event arriving late changes
    nothing (services/connect.py).
    """

    __tablename__ = "seller_account"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", unique=True, ondelete="CASCADE")
    stripe_account_id: str = Field(max_length=255, unique=True)
    details_submitted: bool = Field(default=False)
    charges_enabled: bool = Field(default=False)
    payouts_enabled: bool = Field(default=False)
    # What Stripe still needs (requirements.currently_due + past_due), comma separated.
    requirements_due: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    disabled_reason: str = Field(default="", max_length=255)
    stripe_updated: int = Field(default=0, sa_type=BigInteger)  # the newest fact's time (Unix s)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerTaskKind(enum.StrEnum):
    DISPUTE_REVERSAL = "dispute_reversal"  # a dispute opened: take the seller's share back
    DISPUTE_RETURN = "dispute_return"  # the dispute was won: give it back


class LedgerTaskStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # gave up after the last attempt (logged); `reconcile --retry-failed` queues it again


class LedgerTask(SQLModel, table=True):
    """A Stripe call the shop owes because of a verified event (a transfer reversal when a dispute
    opens, a transfer back when it is won), kept until it succeeded: the event's transaction writes
    the row, ``services.ledger`` makes the call with an idempotency key of the row, off the webhook."""

    __tablename__ = "ledger_task"
    __table_args__ = (UniqueConstraint("kind", "stripe_object_id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=32)
    stripe_object_id: str = Field(max_length=255)  # the dispute
    status: str = Field(default=LedgerTaskStatus.PENDING.value, max_length=16, index=True)
    attempts: int = Field(default=0)
    amount_cents: int = Field(default=0, sa_type=BigInteger)  # what the call moved, once done
    last_error: str = Field(default="", max_length=1000)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
