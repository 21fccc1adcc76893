"""db.insert_rows (one INSERT for many rows on the driver's cursor: arrays on PostgreSQL, a VALUES
list on SQLite) and db.bulk_writes (one psycopg pipeline), on SQLite and on PostgreSQL: the rows
match what SQLAlchemy itself writes, conflicts are skipped, and driver errors arrive as
SQLAlchemy's exceptions with nothing half written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlmodel import Session

from quantoxbay.db import Lookup, bulk_writes, insert_rows
from quantoxbay.models import Role, User, WebhookEvent
from tests.factories import create_user

EVENTS = WebhookEvent.__table__  # type: ignore[attr-defined]
USERS = User.__table__  # type: ignore[attr-defined]


def _event(event_id: str, at: datetime, payload: str = '{"quote": "\\"", "nul": "é"}') -> dict:
    return {"stripe_event_id": event_id, "type": "checkout.session.completed", "payload": payload,
            "outcome": "processed", "error": "", "received_at": at, "processed_at": at}  # fmt: skip


def _count(conn: Connection, *where) -> int:
    return conn.execute(select(func.count()).select_from(EVENTS).where(*where)).scalar_one()


def test_rows_read_back_as_sqlalchemy_wrote_them(connection: Connection) -> None:
    at = datetime(2026, 11, 28, 7, 30, 5, 123456, tzinfo=UTC)
    connection.execute(EVENTS.insert(), _event("evt_orm", at))  # SQLAlchemy's own path
    inserted = insert_rows(
        connection, EVENTS, [_event("evt_raw_1", at), _event("evt_raw_2", at + timedelta(seconds=1))],
        returning=("stripe_event_id", "id"),
    )  # fmt: skip
    assert sorted(event_id for event_id, _ in inserted) == ["evt_raw_1", "evt_raw_2"]
    rows = {r.stripe_event_id: r for r in connection.execute(select(EVENTS))}
    assert rows["evt_raw_1"].payload == rows["evt_orm"].payload
    assert rows["evt_raw_1"].received_at == rows["evt_orm"].received_at
    # Stored the way SQLAlchemy stores them: comparisons and ordering in SQL agree.
    assert _count(connection, EVENTS.c.received_at == at) == 2
    assert _count(connection, EVENTS.c.received_at > at) == 1
    ordered = connection.execute(select(EVENTS.c.stripe_event_id).order_by(EVENTS.c.received_at, EVENTS.c.id))
    assert list(ordered.scalars()) == ["evt_orm", "evt_raw_1", "evt_raw_2"]


def _user(email: str, **values: object) -> dict:
    return {"email": email, "password_hash": "x", "role": "buyer", "display_name": "", "handle": None,
            "disabled": False, "failed_login_count": 0, "locked_until": None,
            "created_at": datetime(2026, 11, 28, 7, 30, tzinfo=UTC)} | values  # fmt: skip


def test_every_kind_of_value_and_the_order_of_rows(connection: Connection) -> None:
    """Strings, NULLs (a column of nothing but NULLs too), booleans, integers, timestamps: what
    SQLAlchemy's own INSERT stores, insert_rows stores; and the rows go in in the order given
    (PostgreSQL sends them as one array per column)."""
    locked = datetime(2026, 12, 1, 0, 0, 0, 1, tzinfo=UTC)
    wanted = [
        _user(
            "b@bulk.test", display_name='Quote " and \\ and é', disabled=True, failed_login_count=2**31 - 1
        ),
        _user("a@bulk.test", handle="ann", locked_until=locked),
        _user("c@bulk.test", display_name=""),
    ]
    # The same rows through SQLAlchemy, under other unique e-mails and handles.
    connection.execute(
        USERS.insert(),
        [u | {"email": "orm-" + u["email"], "handle": u["handle"] and "orm-" + u["handle"]} for u in wanted],
    )
    insert_rows(connection, USERS, wanted)
    only_nulls = insert_rows(
        connection, USERS, [_user("d@bulk.test"), _user("e@bulk.test")], returning=("id", "handle")
    )
    assert [handle for _, handle in only_nulls] == [None, None]

    def stored(prefix: str) -> list[tuple]:
        rows = connection.execute(
            select(USERS).where(USERS.c.email.in_([prefix + u["email"] for u in wanted])).order_by(USERS.c.id)
        ).mappings()
        unprefixed = (
            {k: v.removeprefix("orm-") if isinstance(v, str) else v for k, v in row.items()} for row in rows
        )
        return [tuple(v for k, v in row.items() if k != "id") for row in unprefixed]

    assert stored("") == stored("orm-")
    assert [row[0] for row in stored("")] == [
        "b@bulk.test",
        "a@bulk.test",
        "c@bulk.test",
    ]  # ids in the order given


def test_conflicts_are_skipped_and_only_new_rows_are_returned(connection: Connection) -> None:
    at = datetime.now(UTC)
    insert_rows(connection, EVENTS, [_event("evt_a", at)])
    inserted = insert_rows(
        connection, EVENTS, [_event("evt_a", at), _event("evt_b", at), _event("evt_b", at), _event("evt_c", at)],
        skip_conflicts_on=("stripe_event_id",), returning=("stripe_event_id",),
    )  # fmt: skip
    assert sorted(r[0] for r in inserted) == ["evt_b", "evt_c"]
    assert _count(connection) == 3
    assert insert_rows(connection, EVENTS, []) == []


def test_many_rows_and_wide_rows_in_one_statement(connection: Connection) -> None:
    at = datetime.now(UTC)
    rows = [_event(f"evt_{i:03}", at, payload="x" * 5000) for i in range(300)]
    assert len(insert_rows(connection, EVENTS, rows, returning=("id",))) == 300
    assert _count(connection, func.length(EVENTS.c.payload) == 5000) == 300


def test_a_conflict_not_skipped_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    at = datetime.now(UTC)
    with engine.begin() as conn:
        insert_rows(conn, EVENTS, [_event("evt_dup", at)])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert_rows(conn, EVENTS, [_event("evt_new", at), _event("evt_dup", at)])
    with engine.connect() as conn:
        assert _count(conn, EVENTS.c.stripe_event_id == "evt_new") == 0
        conn.execute(EVENTS.delete().where(EVENTS.c.stripe_event_id == "evt_dup"))
        conn.commit()


def test_bulk_writes_send_everything_and_fail_as_a_whole(engine: Engine) -> None:
    at = datetime.now(UTC)
    with Session(engine) as session:
        user_id = create_user(session, Role.BUYER).id
        session.commit()
    with engine.begin() as conn, bulk_writes(conn):
        insert_rows(conn, EVENTS, [_event("evt_bulk_1", at), _event("evt_bulk_2", at)])
        conn.execute(update(USERS).where(USERS.c.id == user_id).values(display_name="Bulk 2"))
    with engine.connect() as conn:
        assert _count(conn, EVENTS.c.stripe_event_id.like("evt_bulk_%")) == 2
        assert (
            conn.execute(select(USERS.c.display_name).where(USERS.c.id == user_id)).scalar_one() == "Bulk 2"
        )

    # The duplicate is only found when the block is sent: the whole transaction rolls back.
    with pytest.raises(IntegrityError), engine.begin() as conn, bulk_writes(conn):
        conn.execute(update(USERS).where(USERS.c.id == user_id).values(display_name="Bulk 3"))
        insert_rows(conn, EVENTS, [_event("evt_bulk_3", at), _event("evt_bulk_1", at)])
    with engine.connect() as conn:
        assert _count(conn, EVENTS.c.stripe_event_id == "evt_bulk_3") == 0
        assert (
            conn.execute(select(USERS.c.display_name).where(USERS.c.id == user_id)).scalar_one() == "Bulk 2"
        )
        # The connection that failed went back to the pool in a usable state.
        assert conn.execute(select(func.count()).select_from(USERS)).scalar_one() >= 1


def test_nothing_can_be_read_inside_bulk_writes_on_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("bulk_writes is a pipeline on PostgreSQL only; on SQLite reads work as usual")
    with engine.begin() as conn:
        with pytest.raises(InvalidRequestError), bulk_writes(conn):
            conn.execute(select(func.count()).select_from(USERS)).first()
        with pytest.raises(InvalidRequestError), bulk_writes(conn):
            conn.execute(update(USERS).where(USERS.c.id == 0).values(display_name="x").returning(USERS.c.id))
        assert (
            conn.execute(select(func.count()).select_from(USERS)).scalar_one() >= 0
        )  # and after it, reads work


def test_a_lookup_column_is_read_by_the_insert_itself(engine: Engine) -> None:
    at = datetime.now(UTC)
    with Session(engine) as session:
        user = create_user(session, Role.BUYER)
        session.commit()
        user_id, email = user.id, user.email
    by_email = Lookup("payload", USERS, "email", "id")  # payload := the e-mail of the user with this id
    with engine.begin() as conn, bulk_writes(conn):
        insert_rows(conn, EVENTS, [_event("evt_lookup", at) | {"payload": user_id}], lookups=(by_email,))
    with engine.connect() as conn:
        stored = conn.execute(select(EVENTS.c.payload).where(EVENTS.c.stripe_event_id == "evt_lookup"))
        assert stored.scalar_one() == email
    # A key with nothing behind it reads NULL, which the NOT NULL column refuses: nothing is written.
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert_rows(conn, EVENTS, [_event("evt_lookup_2", at) | {"payload": 987_654}], lookups=(by_email,))
    with engine.connect() as conn:
        assert _count(conn, EVENTS.c.stripe_event_id == "evt_lookup_2") == 0
