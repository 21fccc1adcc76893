"""catalog: listing indexes for keyset pagination, full-text search

Revision ID: 7c3e1a9b2d40
Revises: 5ff080d3f392
Create Date: 2026-11-29 09:00:00.000000

Full-text search is hand-written, per dialect, because SQLModel cannot describe it:

* SQLite: an external-content FTS5 table ``product_fts`` (title, description, tags)
  kept in step with ``product`` by three triggers. NOTE: a later migration that
  rebuilds ``product`` in batch mode (move-and-copy) drops these triggers; it must
  create them again (copy ``_SQLITE_TRIGGERS``) and run ``'rebuild'``.
* PostgreSQL: a stored generated ``tsvector`` column ``product.search_vector``
  (title weighted A, tags B, description C) with a GIN index.

Both are listed in ``quantoxbay.models.SEARCH_SCHEMA_NAMES`` so autogenerate leaves them alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c3e1a9b2d40"
down_revision: str | None = "5ff080d3f392"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE product_fts USING fts5("
    "title, description, tags, content='product', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')"
)
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
_PG_SEARCH_COLUMN = """
    ALTER TABLE product ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(tags, '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')
    ) STORED
"""


def upgrade() -> None:
    op.drop_index("ix_product_status_created", table_name="product")
    op.drop_index("ix_product_category", table_name="product")
    op.drop_index("ix_product_seller_id", table_name="product")
    op.create_index("ix_product_status_created", "product", ["status", "created_at", "id"])
    op.create_index("ix_product_status_price", "product", ["status", "price_cents", "id"])
    op.create_index("ix_product_status_sales", "product", ["status", "sales_count", "id"])
    op.create_index(
        "ix_product_status_category_created", "product", ["status", "category", "created_at", "id"]
    )
    op.create_index(
        "ix_product_seller_status_created", "product", ["seller_id", "status", "created_at", "id"]
    )

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(_SQLITE_FTS)
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO product_fts(product_fts) VALUES ('rebuild')")
    elif dialect == "postgresql":
        op.execute(_PG_SEARCH_COLUMN)
        op.execute("CREATE INDEX ix_product_search_vector ON product USING gin (search_vector)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("product_fts_au", "product_fts_ad", "product_fts_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS product_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_product_search_vector")
        op.execute("ALTER TABLE product DROP COLUMN IF EXISTS search_vector")

    op.drop_index("ix_product_seller_status_created", table_name="product")
    op.drop_index("ix_product_status_category_created", table_name="product")
    op.drop_index("ix_product_status_sales", table_name="product")
    op.drop_index("ix_product_status_price", table_name="product")
    op.drop_index("ix_product_status_created", table_name="product")
    op.create_index("ix_product_seller_id", "product", ["seller_id"])
    op.create_index("ix_product_category", "product", ["category"])
    op.create_index("ix_product_status_created", "product", ["status", "created_at"])
