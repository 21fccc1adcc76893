"""The embedded Stripe's own SQLite store.

One file, WAL mode, one connection per thread. Every API object is a row of
``objects`` holding its public JSON (``data``) and private bookkeeping
(``internal``); ``lookup`` is a per-type secondary key (an event's type, a
promotion code's lower-cased code, a session's status). Writes run inside
``BEGIN IMMEDIATE`` transactions, so read-modify-write sequences are atomic
across threads and processes sharing the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import resource_missing
from .shapes import conform

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    lookup TEXT,
    created INTEGER NOT NULL,
    data TEXT NOT NULL,
    internal TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS objects_type_seq ON objects (type, seq);
CREATE INDEX IF NOT EXISTS objects_type_lookup ON objects (type, lookup, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0,
    locked_by TEXT,
    last_response_status INTEGER,
    last_error TEXT,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event_id);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    request_id TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass
class Record:
    """One stored API object.

    Attributes:
        id: The object's id.
        type: The object's ``object`` value (``checkout.session``, ``event``...).
        data: The public JSON shape, as the API returns it unexpanded.
        internal: Private bookkeeping never shown to clients.
        lookup: The per-type secondary key.
        created: Unix creation time.
    """

    id: str
    type: str
    data: dict[str, Any]
    internal: dict[str, Any] = field(default_factory=dict)
    lookup: str | None = None
    created: int = 0


class Database:
    """Thread-safe access to the SQLite file.

    Args:
        path: The database file; its directory is created when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 before SQLite creates it (0644 minus the umask); -wal and -shm copy its mode.
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.connection().executescript(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._local.depth = 0
            self._local.after_commit = []
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one ``BEGIN IMMEDIATE`` transaction (nesting joins it).

        Yields:
            The thread's connection.
        """
        conn = self.connection()
        local = self._local
        if local.depth:
            local.depth += 1
            try:
                yield conn
            finally:
                local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        local.depth = 1
        try:
            yield conn
        except BaseException:
            local.depth = 0
            local.after_commit = []
            conn.execute("ROLLBACK")
            raise
        local.depth = 0
        conn.execute("COMMIT")
        hooks, local.after_commit = local.after_commit, []
        for hook in hooks:
            hook()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once the current transaction commits (now if none)."""
        self.connection()
        if self._local.depth:
            if hook not in self._local.after_commit:
                self._local.after_commit.append(hook)
        else:
            hook()

    def close(self) -> None:
        """Close every connection opened by this object."""
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- objects ---------------------------------------------------------

    @staticmethod
    def _record(row: sqlite3.Row) -> Record:
        return Record(
            id=row["id"],
            type=row["type"],
            data=conform(row["type"], json.loads(row["data"])),
            internal=json.loads(row["internal"]),
            lookup=row["lookup"],
            created=row["created"],
        )

    def get(self, type: str, object_id: str) -> Record | None:
        """Return the object of ``type`` with ``object_id``, or None."""
        row = (
            self.connection()
            .execute("SELECT * FROM objects WHERE id = ? AND type = ?", (object_id, type))
            .fetchone()
        )
        return self._record(row) if row else None

    def id_taken(self, object_id: str) -> bool:
        """Tell whether any object, of any type, has ``object_id``."""
        row = self.connection().execute("SELECT 1 FROM objects WHERE id = ?", (object_id,)).fetchone()
        return row is not None

    def insert(self, record: Record) -> Record:
        """Store a new object."""
        self.connection().execute(
            "INSERT INTO objects (id, type, lookup, created, data, internal) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.type,
                record.lookup,
                record.created,
                json.dumps(record.data, separators=(",", ":")),
                json.dumps(record.internal, separators=(",", ":")),
            ),
        )
        return record

    def update(self, record: Record) -> Record:
        """Write back an object's data, internal state and lookup key."""
        self.connection().execute(
            "UPDATE objects SET data = ?, internal = ?, lookup = ? WHERE id = ?",
            (
                json.dumps(record.data, separators=(",", ":")),
                json.dumps(record.internal, separators=(",", ":")),
                record.lookup,
                record.id,
            ),
        )
        return record

    def delete(self, type: str, object_id: str) -> None:
        """Remove an object."""
        self.connection().execute("DELETE FROM objects WHERE id = ? AND type = ?", (object_id, type))

    def find(self, type: str, lookup: str) -> list[Record]:
        """Return the objects of ``type`` whose lookup key is ``lookup``, newest first."""
        rows = (
            self.connection()
            .execute(
                "SELECT * FROM objects WHERE type = ? AND lookup = ? ORDER BY seq DESC",
                (type, lookup),
            )
            .fetchall()
        )
        return [self._record(r) for r in rows]

    def page(
        self,
        type: str,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        lookups: list[str] | None = None,
        lookup_prefix: str | None = None,
        accept: Callable[[Record], bool] | None = None,
    ) -> tuple[list[Record], bool]:
        """Return one page of objects, newest first, as Stripe lists do.

        Args:
            type: The object type.
            limit: Page size.
            starting_after: Return objects older than this id.
            ending_before: Return objects newer than this id.
            lookups: Keep only objects whose lookup key is one of these.
            lookup_prefix: Keep only objects whose lookup key starts with this.
            accept: A further filter applied in Python.

        Returns:
            The page and whether more objects follow.
        """
        conn = self.connection()
        clauses = ["type = ?"]
        args: list[Any] = [type]
        reverse = False
        for cursor_id, op in ((starting_after, "<"), (ending_before, ">")):
            if cursor_id:
                row = conn.execute("SELECT seq FROM objects WHERE id = ?", (cursor_id,)).fetchone()
                if row is None:
                    param = "starting_after" if op == "<" else "ending_before"
                    raise resource_missing(type, cursor_id, param=param)
                clauses.append(f"seq {op} ?")
                args.append(row["seq"])
                reverse = op == ">"
        if lookups:
            clauses.append(f"lookup IN ({','.join('?' for _ in lookups)})")
            args.extend(lookups)
        if lookup_prefix:
            clauses.append("lookup LIKE ? ESCAPE '\\'")
            escaped = lookup_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(escaped + "%")
        order = "ASC" if reverse else "DESC"
        sql = f"SELECT * FROM objects WHERE {' AND '.join(clauses)} ORDER BY seq {order}"
        found: list[Record] = []
        has_more = False
        for row in conn.execute(sql, args):
            record = self._record(row)
            if accept is not None and not accept(record):
                continue
            if len(found) == limit:
                has_more = True
                break
            found.append(record)
        if reverse:
            found.reverse()
        return found, has_more

    # -- meta ------------------------------------------------------------

    def meta_get_or_create(self, key: str, make: Callable[[], str]) -> str:
        """Return a persistent value, creating it with ``make`` on first use."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row:
                return row["value"]
            value = make()
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value
