"""e-mail verification: when a user proved they read their e-mail

Revision ID: j1verify
Revises: i1adminhold
Create Date: 2026-12-06 09:00:00.000000

``user.email_verified_at`` is set when the user opens the link e-mailed at sign-up (or resets
their password by e-mail). Selling needs it, buying does not. Accounts that exist before this
revision count as verified since they were made (their ``created_at``), so nobody who sells
today is stopped.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "j1verify"
down_revision: str | None = "i1adminhold"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (nullable, no default): no table copy on SQLite.
    op.add_column("user", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    # A column-to-column copy writes the same stored form the model reads on either database.
    op.execute('UPDATE "user" SET email_verified_at = created_at')


def downgrade() -> None:
    op.execute('ALTER TABLE "user" DROP COLUMN email_verified_at')
