"""charge events: refund and dispute events kept until their order exists

Revision ID: g4chargeevents
Revises: g3checkoutrecord
Create Date: 2026-12-02 09:00:00.000000

Stripe delivers events in any order; a ``charge.refunded`` or ``charge.dispute.*`` that comes
before its Checkout Session's order is kept here and applied when fulfilment creates the order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "g4chargeevents"
down_revision: str | None = "g3checkoutrecord"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "charge_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stripe_event_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("stripe_payment_intent_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("stripe_object_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("stripe_created", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_event_id"),
    )
    with op.batch_alter_table("charge_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_charge_event_stripe_payment_intent_id"), ["stripe_payment_intent_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("charge_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_charge_event_stripe_payment_intent_id"))
    op.drop_table("charge_event")
