"""download log link: which signed link each logged download request came with

Revision ID: g5downloadlink
Revises: g4chargeevents
Create Date: 2026-12-02 09:00:00.000000

A Range continuation counts once only on the link that started the download, so the log
names the link (a hash of its token). Rows logged before this revision name none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "g5downloadlink"
down_revision: str | None = "g4chargeevents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "download_log",
        sa.Column("link_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default=""),
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), without a table copy.
    op.execute("ALTER TABLE download_log DROP COLUMN link_id")
