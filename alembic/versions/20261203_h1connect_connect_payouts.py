"""connect: sellers' connected accounts, the money of each order, ledger tasks

Revision ID: h1connect
Revises: g7loginthrottle
Create Date: 2026-12-03 09:00:00.000000

Sellers get paid through Stripe Connect: each seller's Express account (``seller_account``), the
destination charge each checkout asked for (``checkout_record``), what each order moved (gross,
fees, the seller's share, reversals: ``order``) and the Stripe calls owed after a dispute
(``ledger_task``). Orders paid before this revision keep zeros and no account: they were charged
to the platform alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "h1connect"
down_revision: str | None = "g7loginthrottle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString
_UNSYNCED_SALE = "ledger_synced_at IS NULL AND seller_account_id IS NOT NULL AND total_cents > 0"


def _cents(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "seller_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("stripe_account_id", _STR(length=255), nullable=False),
        sa.Column("details_submitted", sa.Boolean(), nullable=False),
        sa.Column("charges_enabled", sa.Boolean(), nullable=False),
        sa.Column("payouts_enabled", sa.Boolean(), nullable=False),
        sa.Column("requirements_due", sa.Text(), nullable=False),
        sa.Column("disabled_reason", _STR(length=255), nullable=False),
        sa.Column("stripe_updated", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_account_id"),
        sa.UniqueConstraint("user_id"),
    )
    op.create_table(
        "ledger_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", _STR(length=32), nullable=False),
        sa.Column("stripe_object_id", _STR(length=255), nullable=False),
        sa.Column("status", _STR(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("last_error", _STR(length=1000), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "stripe_object_id"),
    )
    with op.batch_alter_table("ledger_task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_task_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_task_status"), ["status"], unique=False)
    with op.batch_alter_table("checkout_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seller_account_id", _STR(length=255), nullable=True))
        batch_op.add_column(sa.Column("fee_basis_points", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(_cents("fee_fixed_cents"))
        batch_op.add_column(_cents("application_fee_cents"))
        batch_op.add_column(sa.Column("transfer_group", _STR(length=255), nullable=True))
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seller_account_id", _STR(length=255), nullable=True))
        batch_op.add_column(sa.Column("transfer_group", _STR(length=255), nullable=True))
        for name in (
            "application_fee_cents",
            "platform_fee_cents",
            "seller_share_cents",
            "fee_refunded_cents",
            "transfer_reversed_cents",
            "transfer_returned_cents",
            "fee_adjusted_cents",
            "adjustment_reversed_cents",
        ):
            batch_op.add_column(_cents(name))
        batch_op.add_column(sa.Column("stripe_fee_cents", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("stripe_charge_id", _STR(length=255), nullable=True))
        batch_op.add_column(sa.Column("stripe_transfer_id", _STR(length=255), nullable=True))
        batch_op.add_column(sa.Column("stripe_application_fee_id", _STR(length=255), nullable=True))
        batch_op.add_column(sa.Column("ledger_synced_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_order_ledger_unsynced",
        "order",
        ["id"],
        unique=False,
        sqlite_where=sa.text(_UNSYNCED_SALE),
        postgresql_where=sa.text(_UNSYNCED_SALE),
    )


def downgrade() -> None:
    op.drop_index("ix_order_ledger_unsynced", table_name="order")
    with op.batch_alter_table("order", schema=None) as batch_op:
        for name in (
            "ledger_synced_at",
            "stripe_application_fee_id",
            "stripe_transfer_id",
            "stripe_charge_id",
            "stripe_fee_cents",
            "adjustment_reversed_cents",
            "fee_adjusted_cents",
            "transfer_returned_cents",
            "transfer_reversed_cents",
            "fee_refunded_cents",
            "seller_share_cents",
            "platform_fee_cents",
            "application_fee_cents",
            "transfer_group",
            "seller_account_id",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("checkout_record", schema=None) as batch_op:
        for name in (
            "transfer_group",
            "application_fee_cents",
            "fee_fixed_cents",
            "fee_basis_points",
            "seller_account_id",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("ledger_task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_task_status"))
        batch_op.drop_index(batch_op.f("ix_ledger_task_order_id"))
    op.drop_table("ledger_task")
    op.drop_table("seller_account")
