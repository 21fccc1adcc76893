"""checkout record: the Checkout Sessions the shop created; why a webhook event was rejected

Revision ID: g3checkoutrecord
Revises: f6stripeproduct
Create Date: 2026-12-02 09:00:00.000000

Fulfilment grants an order only for a session recorded in ``checkout_record`` whose currency,
subtotal and discount match it; a refused session's event keeps its ``reason``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "g3checkoutrecord"
down_revision: str | None = "f6stripeproduct"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkout_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stripe_session_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("subtotal_cents", sa.BigInteger(), nullable=False),
        sa.Column("allow_promotion_codes", sa.Boolean(), nullable=False),
        sa.Column("promotion_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"]),
        sa.ForeignKeyConstraint(["promotion_id"], ["promotion.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_session_id"),
    )
    # Existing rows get an empty reason; plain ADD COLUMN on both databases (no table copy).
    op.add_column(
        "webhook_event",
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE webhook_event DROP COLUMN reason")
    op.drop_table("checkout_record")
