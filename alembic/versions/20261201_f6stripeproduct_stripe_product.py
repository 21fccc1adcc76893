"""stripe product: each shop product's Stripe Product id and the name Stripe has for it

Revision ID: f6stripeproduct
Revises: e5merge
Create Date: 2026-12-01 09:00:00.000000

Real Stripe matches a coupon's ``applies_to[products]`` against Stripe Product ids, so
product-scoped promo codes need a Stripe Product per shop product, named by the Checkout
line items too (``price_data[product]``). Both columns stay empty until first needed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "f6stripeproduct"
down_revision: str | None = "e5merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: a batch (copy-and-move) on SQLite would drop the
    # full-text triggers on ``product``.
    op.add_column(
        "product", sa.Column("stripe_product_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
    )
    op.add_column(
        "product",
        sa.Column("stripe_product_name", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=True),
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), again without a table copy.
    op.execute("ALTER TABLE product DROP COLUMN stripe_product_name")
    op.execute("ALTER TABLE product DROP COLUMN stripe_product_id")
