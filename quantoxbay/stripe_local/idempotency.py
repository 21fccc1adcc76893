"""Idempotency-Key handling for POST requests.

Same key and same request: the first response is replayed for 24 hours. Same
key with other parameters (or another endpoint): 400 ``idempotency_error``.
A key whose first request is still running: 409 ``idempotency_error``.
Responses are kept when the endpoint ran (2xx, and card errors); validation
errors are not kept, so a corrected retry with the same key goes through.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .db import Database
from .errors import idempotency_error

TTL_SECONDS = 24 * 3600
#: An in-progress marker older than this is taken as abandoned (crashed worker).
STALE_SECONDS = 60


@dataclass(frozen=True)
class StoredResponse:
    """A response kept for replay."""

    status: int
    body: dict[str, Any]
    request_id: str | None


def fingerprint(method: str, path: str, pairs: Iterable[tuple[str, str]]) -> str:
    """Hash what identifies a request: method, path and its parameters (any order)."""
    digest = hashlib.sha256()
    digest.update(f"{method} {path}\n".encode())
    for key, value in sorted(pairs):
        digest.update(f"{key}={value}\n".encode())
    return digest.hexdigest()


class IdempotencyStore:
    """Keys and their first responses, in the ``idempotency`` table.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, key: str, print_: str, request_id: str) -> StoredResponse | None:
        """Reserve ``key`` or return the response to replay.

        Raises:
            StripeLocalError: 400 for a key reused with other parameters, 409
                while its first request is still running.
        """
        now = time.time()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM idempotency WHERE key = ?", (key,)).fetchone()
            if row is not None and row["created_at"] >= now - TTL_SECONDS:
                if row["fingerprint"] != print_:
                    raise idempotency_error(
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request."
                    )
                if row["state"] == "done":
                    return StoredResponse(row["status"], json.loads(row["body"]), row["request_id"])
                if row["created_at"] >= now - STALE_SECONDS:
                    raise idempotency_error(
                        "There is currently another in-progress request using this "
                        "idempotency key. Try again later.",
                        status=409,
                    )
            conn.execute(
                "INSERT OR REPLACE INTO idempotency"
                " (key, fingerprint, state, status, body, request_id, created_at)"
                " VALUES (?, ?, 'in_progress', NULL, NULL, ?, ?)",
                (key, print_, request_id, now),
            )
        return None

    def finish(self, key: str, status: int, body: dict[str, Any]) -> None:
        """Keep the response of the request that reserved ``key``."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE idempotency SET state = 'done', status = ?, body = ? WHERE key = ?",
                (status, json.dumps(body), key),
            )

    def release(self, key: str) -> None:
        """Forget ``key`` (its request failed before it changed anything)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM idempotency WHERE key = ? AND state = 'in_progress'", (key,))
