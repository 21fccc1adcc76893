"""login throttle: failed log-ins per account and per IP; log-in tickets bound to a browser nonce

Revision ID: g7loginthrottle
Revises: g5downloadlink
Create Date: 2026-12-02 09:00:00.000000

``login_throttle`` holds one leaky bucket per key (keyed hash of the e-mail or the client IP).
``login_ticket.nonce_hash`` binds each one-time log-in ticket to the browser that asked for it.
Tickets live 60 seconds, so the ones in flight during the upgrade are simply dropped (their
browsers are sent back to the log-in page).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "g7loginthrottle"
down_revision: str | None = "g5downloadlink"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("drained_at", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_throttle_drained_at"), ["drained_at"], unique=False)

    op.execute("DELETE FROM login_ticket")
    with op.batch_alter_table("login_ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("nonce_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        )


def downgrade() -> None:
    op.execute("DELETE FROM login_ticket")
    with op.batch_alter_table("login_ticket", schema=None) as batch_op:
        batch_op.drop_column("nonce_hash")

    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttle_drained_at"))
    op.drop_table("login_throttle")
