"""analytics and admin: the sales rollup dashboards read, the admin action log

Revision ID: c3analytics
Revises: 7c3e1a9b2d40
Create Date: 2026-11-30 11:00:00.000000

``sales_rollup`` is filled from the orders already paid (the same figures
``quantoxbay.services.analytics.rebuild_rollup`` computes), then kept up to date by
fulfillment and refunds in their own transactions.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "c3analytics"
down_revision: str | None = "7c3e1a9b2d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_COUNTED = "('paid', 'refunded', 'partially_refunded', 'disputed')"
_SLOT = {
    "sqlite": "CAST(strftime('%s', oi.created_at) AS INTEGER) / 900 * 900",
    "postgresql": "CAST(floor(extract(epoch FROM oi.created_at) / 900) AS BIGINT) * 900",
}
# Each order counts once per seller, on the seller's first item (ROW_NUMBER: one sort, linear;
# a join to a MIN(id) ... GROUP BY table is scanned per item on SQLite, which hung large upgrades).
_BACKFILL = """
INSERT INTO sales_rollup (seller_id, slot, product_id, currency, orders, items, units,
                          gross_cents, discount_cents, refunded_cents)
SELECT oi.seller_id, {slot}, oi.product_id, o.currency,
       SUM(oi.first_of_seller), COUNT(*), SUM(oi.quantity), SUM(oi.total_cents), SUM(oi.discount_cents),
       SUM(CASE WHEN o.total_cents > 0 THEN o.refunded_cents * oi.total_cents / o.total_cents ELSE 0 END)
FROM (SELECT order_id, seller_id, product_id, quantity, total_cents, discount_cents, created_at,
             CASE WHEN ROW_NUMBER() OVER (PARTITION BY order_id, seller_id ORDER BY id) = 1
                  THEN 1 ELSE 0 END AS first_of_seller
      FROM order_item) oi
JOIN "order" o ON o.id = oi.order_id
WHERE o.status IN {counted}
GROUP BY oi.seller_id, {slot}, oi.product_id, o.currency
"""


def upgrade() -> None:
    op.create_table(
        "sales_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("gross_cents", sa.BigInteger(), nullable=False),
        sa.Column("discount_cents", sa.BigInteger(), nullable=False),
        sa.Column("refunded_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"]),
        sa.ForeignKeyConstraint(["seller_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seller_id", "slot", "product_id", "currency"),
    )
    with op.batch_alter_table("sales_rollup", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sales_rollup_covering",
            [
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
            ],
            unique=False,
        )
    dialect = op.get_bind().dialect.name
    op.execute(_BACKFILL.format(slot=_SLOT.get(dialect, _SLOT["postgresql"]), counted=_COUNTED))
    op.create_table(
        "admin_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("admin_action", schema=None) as batch_op:
        batch_op.create_index("ix_admin_action_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("admin_action", schema=None) as batch_op:
        batch_op.drop_index("ix_admin_action_created")
    op.drop_table("admin_action")
    with op.batch_alter_table("sales_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_rollup_covering")
    op.drop_table("sales_rollup")
