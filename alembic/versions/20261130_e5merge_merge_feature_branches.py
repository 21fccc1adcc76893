"""merge feature branches

Revision ID: e5merge
Revises: a1postpurchase, b2promotions, c3analytics, d4catalogspeed
Create Date: 2026-11-28 06:37:01.779516
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "e5merge"
down_revision: str | tuple[str, ...] | None = ("a1postpurchase", "b2promotions", "c3analytics", "d4catalogspeed")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
