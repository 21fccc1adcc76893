"""tests/support/servers.py really falls back to throwaway servers.

Every test uses its own ``ServiceRegistry`` (closed afterwards), so the
servers the rest of the session got from ``postgres_url()``/``redis_url()``
are never touched.  Nothing here skips: on a machine without PostgreSQL or
Redis running, the fallback path is exactly what these tests exercise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from tests.support import servers
from tests.support.servers import ServiceRegistry, free_port

# Servers started and stopped for real: slow, so left out of `make test-fast`.
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def registry():
    reg = ServiceRegistry()
    yield reg
    reg.close()


@pytest.fixture
def dead_pg_url() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"


@pytest.fixture
def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_fallback_starts_throwaway_server(registry, dead_pg_url):
    assert not servers.postgres_answers(dead_pg_url)

    t0 = time.monotonic()
    url = registry.postgres_url(dead_pg_url)
    elapsed = time.monotonic() - t0

    assert url != dead_pg_url
    assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert urlsplit(url).path == "/test"
    server = registry.servers["postgres"]
    assert server.url == url and server.proc.poll() is None
    print(f"throwaway postgres up in {elapsed:.2f}s at {url}")

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("test",)
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)

    # once per process: asking again (even with another dead URL) reuses it
    assert registry.postgres_url(dead_pg_url) == url
    other_dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    assert registry.postgres_url(other_dead) == url
    assert registry.servers["postgres"] is server

    # close() stops it and removes its directory
    workdir, port = server.workdir, server.port
    registry.close()
    assert server.proc.poll() is not None
    assert not workdir.exists()
    assert not _port_open(port)


@pytest.mark.postgres
def test_fresh_database_on_throwaway_server(registry, dead_pg_url):
    base = registry.postgres_url(dead_pg_url)
    url, drop = servers.fresh_postgres_database(base)
    name = urlsplit(url).path.lstrip("/")
    assert url.startswith("postgresql+psycopg://")
    assert name.startswith("qb_test_") and len(name) > len("qb_test_")

    # an open connection does not block the (FORCE) drop
    conn = psycopg.connect(_libpq(url), autocommit=True)
    conn.execute("CREATE TABLE x (v int)")
    drop()
    drop()  # idempotent
    conn.close()

    with psycopg.connect(_libpq(base), autocommit=True) as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is None


@pytest.mark.postgres
def test_fresh_database_accepts_plain_postgresql_scheme(registry, dead_pg_url):
    base = registry.postgres_url(dead_pg_url).replace("postgresql+psycopg://", "postgresql://")
    url, drop = servers.fresh_postgres_database(base)
    try:
        assert url.startswith("postgresql+psycopg://")
        with psycopg.connect(_libpq(url)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        drop()


@pytest.mark.postgres
def test_configured_postgres_is_used_when_it_answers(registry, dead_pg_url):
    # Make sure *some* server answers (a throwaway one if this machine has
    # none), then check a fresh registry hands that URL back unchanged.
    answering = ServiceRegistry()
    try:
        live = answering.postgres_url(dead_pg_url)
        assert registry.postgres_url(live) == live
        assert registry.servers == {}
    finally:
        answering.close()


@pytest.mark.postgres
def test_module_level_postgres_url_answers():
    # Whatever the environment: the default registry returns a usable URL,
    # and the configured one if it answers.
    configured = os.environ.get("TEST_POSTGRES_URL") or servers.DEFAULT_POSTGRES_URL
    url = servers.postgres_url()
    if servers.postgres_answers(configured):
        assert url == configured
    with psycopg.connect(_libpq(url), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_postgres_missing_binary_raises_clear_error(registry, dead_pg_url, monkeypatch, tmp_path):
    monkeypatch.setattr(servers, "PG_BIN_GLOB", str(tmp_path / "nothing" / "*" / "bin"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="initdb"):
        registry.postgres_url(dead_pg_url)


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


def test_redis_fallback_starts_throwaway_server(registry, dead_redis_url):
    assert not servers.redis_answers(dead_redis_url)

    t0 = time.monotonic()
    url = registry.redis_url(dead_redis_url)
    elapsed = time.monotonic() - t0

    assert url != dead_redis_url
    assert url.startswith("redis://127.0.0.1:")
    server = registry.servers["redis"]
    assert server.proc.poll() is None
    print(f"throwaway redis up in {elapsed:.2f}s at {url}")

    client = redis.Redis.from_url(url)
    try:
        assert client.ping() is True
        client.set("qb:key", "value")
        assert client.get("qb:key") == b"value"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()

    assert registry.redis_url(dead_redis_url) == url

    workdir, port = server.workdir, server.port
    registry.close()
    assert server.proc.poll() is not None
    assert not workdir.exists()
    assert not _port_open(port)


def test_redis_fallback_keeps_db_index(registry):
    url = registry.redis_url(f"redis://127.0.0.1:{free_port()}/3")
    assert urlsplit(url).path == "/3"
    client = redis.Redis.from_url(url)
    try:
        assert client.connection_pool.connection_kwargs["db"] == 3
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_configured_redis_is_used_when_it_answers(registry, dead_redis_url):
    answering = ServiceRegistry()
    try:
        live = answering.redis_url(dead_redis_url)
        assert registry.redis_url(live) == live
        assert registry.servers == {}
    finally:
        answering.close()


def test_module_level_redis_url_answers():
    configured = os.environ.get("TEST_REDIS_URL") or servers.DEFAULT_REDIS_URL
    url = servers.redis_url()
    if servers.redis_answers(configured):
        assert url == configured
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_redis_missing_binary_raises_clear_error(registry, dead_redis_url, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(servers, "REDIS_SERVER_CANDIDATES", ())
    with pytest.raises(RuntimeError, match="redis-server"):
        registry.redis_url(dead_redis_url)


# --------------------------------------------------------------------------
# Process exit
# --------------------------------------------------------------------------


@pytest.mark.postgres
def test_servers_stopped_at_process_exit(tmp_path):
    """A child process that falls back gets its servers stopped by atexit."""
    code = textwrap.dedent(
        f"""
        from tests.support.servers import postgres_url, redis_url
        print(postgres_url("postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"))
        print(redis_url("redis://127.0.0.1:{free_port()}/0"))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
    ).stdout.split()
    pg, rd = out[-2], out[-1]
    assert pg.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert rd.startswith("redis://127.0.0.1:")
    for port in (urlsplit(pg).port, urlsplit(rd).port):
        assert port is not None
        assert not _port_open(port), f"server on port {port} outlived its process"
