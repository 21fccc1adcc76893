"""POST /api/stripe/webhook (and /api/stripe/connect-webhook): verify, record once, fulfil, answer
fast; pushes go out after commit.

Group commit: a writer thread takes every delivery waiting at that moment and processes them
together in ONE transaction (``process_events``: one multi-row statement per table for the new
paid Checkout Sessions), then commits once; each request is answered after that commit, so a
2xx still means "safely recorded". What the services announced (``notifier.queue``) is published
by the writer after that commit, once for the whole batch (a rolled-back batch announces
nothing; its events, run again one by one, announce after their own commits). Under load this turns N commits (SQLite's WAL write,
PostgreSQL's WAL flush) and N statements per table into one; alone, a delivery is a batch of
one. When anything in a batch fails, the batch is rolled back and its events run again one per
transaction, so one bad event cannot fail or half-write the others. bench/bench_webhook.py
measures the route against a bare ``construct_event`` route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from quantoxbay import db
from quantoxbay.db import session_scope
from quantoxbay.payments.signature import InvalidWebhook, verify_event
from quantoxbay.services.webhook_events import ProcessOutcome, process_event, process_events, record_failure
from quantoxbay.settings import get_settings

logger = logging.getLogger(__name__)

#: At most this many deliveries share one transaction.
MAX_BATCH = 64
#: On SQLite, how long the writer waits for one more delivery before it commits what it has.
#: SQLite has one writer and each commit waits for the disk, so a batch that gathers the
#: deliveries arriving in the next half millisecond saves commits: with 64 in flight the route
#: went from 0.72-0.77 of the bare route to 0.89 (bench/bench_webhook.py, docs/performance.md).
#: PostgreSQL's writers (two, overlapping) showed no gain from it, so they take what is waiting.
SQLITE_BATCH_LINGER_SECONDS = 0.0005
#: Writer threads on PostgreSQL (bench/bench_webhook.py, paired runs at 64 in flight: 2 writers
#: 0.73 and 0.72 against 0.63 and 0.59 for one; 3 or 4 no better than 2 within the noise).
POSTGRES_WRITERS = 2


def _process(event: dict, raw: str) -> ProcessOutcome:
    with session_scope() as session:
        return process_event(session=session, event=event, raw=raw)


def _record_failure(event: dict, raw: str, error: BaseException) -> None:
    with session_scope() as session:
        record_failure(session=session, event=event, raw=raw, error=error)


@dataclass
class _Job:
    event: dict[str, Any]
    raw: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[ProcessOutcome]


class _WriterConnection:
    """A writer thread's own connection, kept from one batch to the next: no pool checkout and
    no pre-ping round trip per batch. Replaced when the engine changes (tests switch databases)
    and dropped after any failure; the one-by-one retry then uses the pool, which pings."""

    def __init__(self) -> None:
        self._conn: Connection | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        engine = db.get_engine()
        if self._conn is not None and (self._conn.engine is not engine or self._conn.invalidated):
            self.close()
        if self._conn is None:
            self._conn = self._connect(engine)
        try:
            with Session(bind=self._conn, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    db.discard_after_commit(session)
                    raise
                db.run_after_commit(session)  # the batch's announcements, in one publish
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _connect(engine: Engine) -> Connection:
        conn = engine.connect()
        if engine.dialect.name == "postgresql":
            # Its writes are the same few statements every time (``db.insert_rows`` sends any
            # number of rows as arrays), so PostgreSQL may keep one generic plan for each
            # instead of planning again at every execution, which the engine forces for the
            # catalog's searches (db.make_engine). With both, PostgreSQL's CPU per event went
            # from 0.80 to 0.35 ms. ``close`` never hands this connection back to the pool.
            conn.exec_driver_sql("SET plan_cache_mode = auto")
            conn.commit()
        return conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()  # closed for real: it may carry its own settings
                self._conn.close()
            self._conn = None


def _process_batch(
    jobs: list[_Job], writer: _WriterConnection | None = None
) -> list[ProcessOutcome | BaseException]:
    """All jobs in one transaction (on the writer's connection when given); on any failure, each
    job again in its own transaction, so one bad event cannot fail or half-write the others."""
    try:
        with writer.session() if writer else session_scope() as session:
            return list(process_events(session=session, deliveries=[(j.event, j.raw) for j in jobs]))
    except Exception:
        logger.info("a batch of %d webhook events failed; processing them one by one", len(jobs))
    results: list[ProcessOutcome | BaseException] = []
    for job in jobs:
        try:
            results.append(_process(job.event, job.raw))
        except Exception as exc:
            results.append(exc)
    return results


def _settle(settled: list[tuple[asyncio.Future[ProcessOutcome], ProcessOutcome | BaseException]]) -> None:
    for future, result in settled:
        if future.done():  # the request went away
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


class GroupCommitter:
    """The process's writer threads for webhook events (started on first use, daemons): one on
    SQLite, which lets one transaction write at a time anyway; ``POSTGRES_WRITERS`` on
    PostgreSQL, so that one batch is prepared while another waits for its round trips and its
    commit's WAL flush (every batch takes its row locks table by table in key order, the shared
    rows, a product's sales count and a rollup slot, last: batches wait briefly for each other
    rather than deadlock)."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def process(self, event: dict[str, Any], raw: str) -> ProcessOutcome:
        loop = asyncio.get_running_loop()
        job = _Job(event, raw, loop, loop.create_future())
        self._queue.put(job)
        if not self._threads or not all(t.is_alive() for t in self._threads):
            self._start_writers()
        return await job.future

    def _start_writers(self) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            wanted = POSTGRES_WRITERS if db.get_engine().dialect.name == "postgresql" else 1
            while len(self._threads) < wanted:
                thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        writer = _WriterConnection()
        while True:
            jobs = [self._queue.get()]
            linger = SQLITE_BATCH_LINGER_SECONDS if db.get_engine().dialect.name == "sqlite" else 0.0
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._queue.get(timeout=linger) if linger else self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = _process_batch(jobs, writer)
            except BaseException as exc:  # never let the writer die with requests waiting
                results = [exc] * len(jobs)
            # One wake-up per event loop for the whole batch, not one per request.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[ProcessOutcome], Any]]] = {}
            for job, result in zip(jobs, results, strict=True):
                by_loop.setdefault(job.loop, []).append((job.future, result))
            for loop, settled in by_loop.items():
                with contextlib.suppress(RuntimeError):  # RuntimeError: that event loop is closed
                    loop.call_soon_threadsafe(_settle, settled)


_committer = GroupCommitter()


async def stripe_webhook(request: Request) -> JSONResponse:
    """The platform's endpoint: its own payments, refunds, disputes."""
    return await _receive(request, get_settings().stripe_webhook_secret)


async def stripe_connect_webhook(request: Request) -> JSONResponse:
    """The Connect endpoint: events of sellers' connected accounts (``account`` set), signed with
    its own secret; recorded and processed like the platform's, through the same writers."""
    return await _receive(request, get_settings().stripe_connect_webhook_secret)


async def _receive(request: Request, secret: str) -> JSONResponse:
    payload = await request.body()
    if not secret:  # real Stripe without STRIPE_CONNECT_WEBHOOK_SECRET: settings refuse to start
        return JSONResponse({"error": "endpoint not configured"}, status_code=400)
    try:
        event = verify_event(payload, request.headers.get("stripe-signature"), secret)
    except InvalidWebhook as exc:
        # Nothing is written for an unverified request. Why it failed goes to the log only: the
        # sender learns nothing about what the check looks at.
        logger.info("webhook refused: %s", exc)
        return JSONResponse({"error": "invalid signature or payload"}, status_code=400)
    raw = payload.decode("utf-8")
    try:
        outcome = await _committer.process(event, raw)
    except Exception as exc:
        logger.exception("webhook %s (%s) failed", event["id"], event["type"], exc_info=exc)
        try:
            await run_in_threadpool(_record_failure, event, raw, exc)
        except Exception:
            logger.exception("could not record the failure of %s", event["id"])
        # 5xx: Stripe delivers again later, and the event is processed then.
        return JSONResponse({"error": "processing failed; retry later"}, status_code=500)
    body = {"received": True, "duplicate": outcome.duplicate, "outcome": outcome.outcome}
    if outcome.reason:  # a refused Checkout Session: 2xx all the same, Stripe has nothing to retry
        body["reason"] = outcome.reason
    return JSONResponse(body)
