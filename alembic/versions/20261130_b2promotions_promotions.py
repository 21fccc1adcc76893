"""promotions: promo codes backed by Stripe coupons and promotion codes

Revision ID: b2promotions
Revises: 7c3e1a9b2d40
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "b2promotions"
down_revision: str | None = "7c3e1a9b2d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "promotion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("code_lower", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("percent_off", sa.Integer(), nullable=True),
        sa.Column("amount_off_cents", sa.BigInteger(), nullable=True),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("once_per_buyer", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("stripe_coupon_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("stripe_promotion_code_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("stripe_code", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"]),
        sa.ForeignKeyConstraint(["seller_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_promotion_code_id"),
    )
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotion_code_lower"), ["code_lower"], unique=False)
        batch_op.create_index("ix_promotion_seller_created", ["seller_id", "created_at"], unique=False)

    op.create_table(
        "promotion_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("promotion_id", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("stripe_session_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["promotion_id"], ["promotion.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_session_id"),
    )
    with op.batch_alter_table("promotion_claim", schema=None) as batch_op:
        batch_op.create_index(
            "ix_promotion_claim_promotion_buyer", ["promotion_id", "buyer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("promotion_claim", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_claim_promotion_buyer")
    op.drop_table("promotion_claim")
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_seller_created")
        batch_op.drop_index(batch_op.f("ix_promotion_code_lower"))
    op.drop_table("promotion")
