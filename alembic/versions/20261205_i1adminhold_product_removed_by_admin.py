"""admin hold: who removed a product from the store, and when

Revision ID: i1adminhold
Revises: h1connect
Create Date: 2026-12-05 09:00:00.000000

A product an admin takes down gets the status ``removed`` (its reason stays in
``unpublished_reason``) and stays off the store until an admin restores it; these columns say
which admin took it down and when. Both stay empty for every other product.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "i1adminhold"
down_revision: str | None = "h1connect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: a batch (copy-and-move) on SQLite would drop the
    # full-text triggers on ``product``.
    op.add_column("product", sa.Column("removed_by_id", sa.Integer(), nullable=True))
    op.add_column("product", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A removed product comes back as unpublished (the status the code before this revision knew).
    op.execute("UPDATE product SET status = 'unpublished' WHERE status = 'removed'")
    op.execute("ALTER TABLE product DROP COLUMN removed_at")
    op.execute("ALTER TABLE product DROP COLUMN removed_by_id")
