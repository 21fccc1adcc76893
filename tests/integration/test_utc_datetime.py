"""models.UTCDateTime on SQLite and PostgreSQL: what is stored is what was stored before the type
existed (UTC wall clock on SQLite, timestamptz on PostgreSQL), what is read back is always
timezone-aware UTC, and a naive datetime is refused on every way in (the ORM, a query parameter,
db.insert_rows) before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import render_python_code
from alembic.operations import ops
from sqlalchemy import Column, Connection, func, select, text
from sqlalchemy.exc import StatementError
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from quantoxbay.db import insert_rows
from quantoxbay.models import UTCDateTime, WebhookEvent, render_autogenerate_item

EVENTS = WebhookEvent.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 11, 28, 7, 30, 5, 123456, tzinfo=UTC)
#: The same moment, seen from UTC+05:30.
AT_KOLKATA = AT.astimezone(timezone(timedelta(hours=5, minutes=30)))


def _event(event_id: str, at: datetime) -> dict[str, object]:
    return {"stripe_event_id": event_id, "type": "t", "payload": "", "outcome": "processed", "error": "",
            "received_at": at, "processed_at": None}  # fmt: skip


def _stored(conn: Connection, event_id: str) -> object:
    """What the database itself holds, read past SQLAlchemy's types."""
    sql = (
        "SELECT received_at FROM webhook_event WHERE stripe_event_id = :id"
        if conn.dialect.name == "sqlite"
        else "SELECT (received_at AT TIME ZONE 'UTC')::text FROM webhook_event WHERE stripe_event_id = :id"
    )
    return conn.execute(text(sql), {"id": event_id}).scalar_one()


def test_the_orm_stores_utc_and_reads_back_aware_utc(db: Session) -> None:
    db.add(WebhookEvent(stripe_event_id="evt_orm", type="t", received_at=AT_KOLKATA))
    db.flush()
    db.expire_all()
    row = db.exec(sqlmodel_select(WebhookEvent).where(WebhookEvent.stripe_event_id == "evt_orm")).one()
    assert row.received_at == AT and row.received_at.tzinfo is UTC
    assert row.processed_at is None
    # Byte for byte what the columns held before the type: no data migration.
    expected = "2026-11-28 07:30:05.123456"
    assert _stored(db.connection(), "evt_orm") == expected


def test_insert_rows_writes_what_the_orm_writes(connection: Connection) -> None:
    connection.execute(EVENTS.insert(), _event("evt_core", AT))
    insert_rows(connection, EVENTS, [_event("evt_bulk", AT_KOLKATA)])
    assert _stored(connection, "evt_bulk") == _stored(connection, "evt_core")
    read = connection.execute(select(EVENTS.c.received_at).where(EVENTS.c.stripe_event_id == "evt_bulk"))
    assert read.scalar_one().tzinfo is UTC


def test_comparisons_and_aggregates_in_sql_use_the_moment(connection: Connection) -> None:
    insert_rows(connection, EVENTS, [_event("evt_a", AT), _event("evt_b", AT + timedelta(minutes=1))])
    # A parameter in another zone is compared as the moment it names, on both databases.
    count = lambda *where: connection.execute(select(func.count()).where(*where)).scalar_one()  # noqa: E731
    assert count(EVENTS.c.received_at > AT_KOLKATA) == 1
    assert count(EVENTS.c.received_at == AT_KOLKATA) == 1
    latest = connection.execute(select(func.max(EVENTS.c.received_at))).scalar_one()
    assert latest == AT + timedelta(minutes=1) and latest.tzinfo is UTC


def test_a_postgresql_session_in_another_zone_still_reads_utc(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        pytest.skip("time zones of a session exist on PostgreSQL only")
    insert_rows(connection, EVENTS, [_event("evt_zone", AT)])
    connection.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
    read = connection.execute(select(EVENTS.c.received_at).where(EVENTS.c.stripe_event_id == "evt_zone"))
    value = read.scalar_one()
    assert value == AT and value.tzinfo is UTC


def test_a_naive_datetime_is_refused_on_every_way_in(connection: Connection, db: Session) -> None:
    naive = AT.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        insert_rows(connection, EVENTS, [_event("evt_naive", naive)])
    with pytest.raises(StatementError, match="timezone-aware"):
        connection.execute(select(func.count()).where(EVENTS.c.received_at < naive))
    db.add(WebhookEvent(stripe_event_id="evt_naive_orm", type="t", received_at=naive))
    with pytest.raises(StatementError, match="timezone-aware"):
        db.flush()
    db.rollback()
    assert connection.execute(select(func.count()).select_from(EVENTS)).scalar_one() == 0


def test_autogenerate_writes_the_stored_type_into_migrations() -> None:
    upgrade = ops.UpgradeOps(
        ops=[ops.AddColumnOp("order", Column("shipped_at", UTCDateTime(), nullable=True))]
    )
    code = render_python_code(upgrade, render_item=render_autogenerate_item)
    assert "sa.DateTime(timezone=True)" in code and "UTCDateTime" not in code
