"""Alembic environment: the database URL comes from QuantoxBay's settings.

An explicit ``sqlalchemy.url`` in the Alembic config (set by tests and
``quantoxbay.migrations``) wins over the environment.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from alembic import context
from quantoxbay.db import make_engine
from quantoxbay.models import (  # also registers the tables on SQLModel.metadata
    include_in_autogenerate,
    render_autogenerate_item,
)
from quantoxbay.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        include_name=include_in_autogenerate,
        render_item=render_autogenerate_item,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # Hand-written full-text search objects are not in the models: do not drop them.
        include_name=include_in_autogenerate,
        render_item=render_autogenerate_item,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
