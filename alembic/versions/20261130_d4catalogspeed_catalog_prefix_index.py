"""catalog speed: FTS5 prefix index for search-as-you-type on SQLite

Revision ID: d4catalogspeed
Revises: 7c3e1a9b2d40
Create Date: 2026-11-30 09:00:00.000000

The last word of a search matches as a prefix ("bud" finds "budget"). Without a prefix
index, SQLite's FTS5 merges the doclists of every term starting with it before returning
a single row (100 terms for "zq01" at 100,000 products). ``prefix='2 3 4'`` keeps a
ready-merged doclist for every 2-, 3- and 4-character prefix, so such a query reads one
list, like a whole word, and a LIMIT stops it early. Longer prefixes match few terms.

SQLite: ``product_fts`` is rebuilt with the option (an FTS5 table's options cannot be
altered), its three triggers are created again, and ``'rebuild'`` fills it from ``product``.

PostgreSQL: nothing to do. ``to_tsquery('english', 'bud:*')`` is already answered by the
GIN index ``ix_product_search_vector`` (a partial-match scan of its sorted keys).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d4catalogspeed"
down_revision: str | None = "7c3e1a9b2d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FTS_COLUMNS = (
    "title, description, tags, content='product', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2'"
)
# Copied from 7c3e1a9b2d40 (migrations never import each other).
_SQLITE_TRIGGERS = (
    """CREATE TRIGGER product_fts_ai AFTER INSERT ON product BEGIN
        INSERT INTO product_fts(rowid, title, description, tags)
        VALUES (new.id, new.title, new.description, new.tags);
    END""",
    """CREATE TRIGGER product_fts_ad AFTER DELETE ON product BEGIN
        INSERT INTO product_fts(product_fts, rowid, title, description, tags)
        VALUES ('delete', old.id, old.title, old.description, old.tags);
    END""",
    """CREATE TRIGGER product_fts_au AFTER UPDATE OF title, description, tags ON product BEGIN
        INSERT INTO product_fts(product_fts, rowid, title, description, tags)
        VALUES ('delete', old.id, old.title, old.description, old.tags);
        INSERT INTO product_fts(rowid, title, description, tags)
        VALUES (new.id, new.title, new.description, new.tags);
    END""",
)


def _rebuild_sqlite_fts(options: str) -> None:
    for name in ("product_fts_au", "product_fts_ad", "product_fts_ai"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS product_fts")
    op.execute(f"CREATE VIRTUAL TABLE product_fts USING fts5({_FTS_COLUMNS}{options})")
    for trigger in _SQLITE_TRIGGERS:
        op.execute(trigger)
    op.execute("INSERT INTO product_fts(product_fts) VALUES ('rebuild')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_fts(", prefix='2 3 4'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_fts("")
