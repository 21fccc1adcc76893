"""Reachable PostgreSQL / Redis servers for the test suite.

Plain functions, no pytest fixtures (conftest.py builds on these):

* ``postgres_url()`` / ``redis_url()`` return the configured URL
  (``TEST_POSTGRES_URL`` / ``TEST_REDIS_URL``) when a server answers there,
  otherwise they start a throwaway server once per process (stopped at exit)
  and return its URL.  If the binaries are missing they raise a RuntimeError
  naming the missing binary (run ``scripts/ensure_services.sh`` first).
* ``fresh_postgres_database(base_url)`` creates ``qb_test_<hex>`` on that
  server and returns its SQLAlchemy URL plus a drop function.
* ``free_port()`` is the one way tests and benchmarks pick a local port.

State lives in a ``ServiceRegistry``; the module-level functions use a
process-wide default one.  Tests that need isolation create their own
registry and ``close()`` it, so they never disturb servers handed out to the
rest of the session.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: Where Debian installs the server binaries (they are not on PATH).
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: Checked when redis-server is not on PATH.
REDIS_SERVER_CANDIDATES = ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")

CONNECT_TIMEOUT = 1.0  # seconds, for "does the configured server answer?"
STARTUP_TIMEOUT = 60.0  # seconds, for a throwaway server to accept connections
STOP_TIMEOUT = 15.0

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "ServiceRegistry",
    "ThrowawayServer",
    "free_port",
    "fresh_postgres_database",
    "postgres_answers",
    "postgres_url",
    "redis_answers",
    "redis_url",
    "reset",
    "start_postgres",
    "start_redis",
]


# --------------------------------------------------------------------------
# URL helpers
# --------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    """``postgresql+psycopg://...`` -> ``postgresql://...`` (what libpq accepts)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit(parts._replace(scheme=scheme))


def _sqlalchemy_url(url: str, database: str | None = None) -> str:
    """Normalise to ``postgresql+psycopg://...``, optionally replacing the db."""
    parts = urlsplit(url)
    parts = parts._replace(scheme="postgresql+psycopg")
    if database is not None:
        parts = parts._replace(path="/" + database)
    return urlunsplit(parts)


def _tcp_answers(host: str | None, port: int, timeout: float = CONNECT_TIMEOUT) -> bool:
    if not host or host.startswith("/"):
        return True  # unix socket: let the protocol check decide
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_answers(url: str) -> bool:
    """True if a PostgreSQL server accepts ``url`` and runs ``SELECT 1``."""
    import psycopg

    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        return False
    if not _tcp_answers(parts.hostname, port):
        return False
    try:
        # libpq rounds connect_timeout below 2 s up to 2 s.
        with psycopg.connect(_libpq_url(url), connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()
        return True
    except Exception as exc:  # any failure means "not usable"
        warnings.warn(
            f"something listens at {parts.hostname}:{port} but {url!r} is not "
            f"usable ({exc.__class__.__name__}: {exc}); using a throwaway server",
            RuntimeWarning,
            stacklevel=3,
        )
        return False


def redis_answers(url: str) -> bool:
    """True if a Redis server at ``url`` answers PING."""
    import redis

    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss"):
        try:
            port = parts.port or 6379
        except ValueError:
            return False
        if not _tcp_answers(parts.hostname, port):
            return False
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception as exc:
        warnings.warn(
            f"{url!r} does not answer PING ({exc.__class__.__name__}: {exc}); using a throwaway server",
            RuntimeWarning,
            stacklevel=3,
        )
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it).

    Someone else may take it before the caller binds it: servers started on it retry
    with another port, and a URL built on it is a "nothing answers here" address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------

_libc_prctl = None
try:  # Linux: have the kernel signal our servers if this process dies hard
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _libc_prctl = _libc.prctl
except (OSError, AttributeError):  # pragma: no cover - non-Linux
    pass

_PR_SET_PDEATHSIG = 1


def _death_signal_preexec(sig: int) -> Callable[[], None] | None:
    """preexec_fn that ties the child's life to ours (covers os._exit/SIGKILL,
    e.g. a pytest-timeout abort, where atexit does not run).  Only used from
    the main thread: PDEATHSIG fires when the *thread* that forked exits."""
    if _libc_prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl = _libc_prctl

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return _preexec


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _make_workdir(prefix: str, base: str | None = None) -> Path:
    """mkdtemp that records our pid, after removing dirs left by dead owners
    (a hard-killed run: the kernel stops the servers, nobody removes the dirs)."""
    base = base or tempfile.gettempdir()
    for old in glob.glob(os.path.join(base, prefix + "*")):
        try:
            pid = int(Path(old, "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (OSError, ValueError):
            pass  # no/partial pid file yet, or not ours to judge
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    (workdir / "owner.pid").write_text(str(os.getpid()))
    return workdir


def _world_traversable(path: str) -> bool:
    p = Path(path).resolve()
    for part in (p, *p.parents):
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


class ThrowawayServer:
    """A server process we started; ``stop()`` is idempotent."""

    def __init__(
        self,
        kind: str,
        url: str,
        proc: subprocess.Popen,
        workdir: Path,
        stop_signal: int,
    ) -> None:
        self.kind = kind
        self.url = url
        self.proc = proc
        self.workdir = workdir
        self.stop_signal = stop_signal
        self.owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    def stop(self) -> None:
        with self._lock:
            if self._stopped or os.getpid() != self.owner_pid:
                return  # a forked child must not stop its parent's server
            self._stopped = True
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(self.stop_signal)
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<ThrowawayServer {self.kind} {self.url} pid={self.proc.pid}>"


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def _pg_binaries() -> tuple[str, str]:
    """(initdb, postgres) paths; newest Debian version first, then PATH."""

    def version(d: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([\d.]+)/bin$", d)
        return tuple(int(x) for x in m.group(1).split(".") if x) if m else ()

    for d in sorted(glob.glob(PG_BIN_GLOB), key=version, reverse=True):
        initdb, postgres = os.path.join(d, "initdb"), os.path.join(d, "postgres")
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return initdb, postgres
    found = []
    for name in ("initdb", "postgres"):
        path = shutil.which(name)
        if path is None:
            raise RuntimeError(
                f"PostgreSQL binary {name!r} not found (looked in {PG_BIN_GLOB} "
                "and PATH) and no server answers on TEST_POSTGRES_URL; install it "
                "with `bash scripts/ensure_services.sh` (apt-get install postgresql)"
            )
        found.append(os.path.realpath(path))  # resolve /usr/local/bin symlinks
    return found[0], found[1]


def _pg_run_as() -> tuple[int, int] | None:
    """(uid, gid) to run initdb/postgres as; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return pw.pw_uid, pw.pw_gid
    raise RuntimeError(
        "running as root and there is no 'postgres' (or 'nobody') user to run "
        "initdb/postgres as; install Debian's postgresql package"
    )


def _pg_user_kwargs(ids: tuple[int, int] | None) -> dict:
    if ids is None:
        return {}
    uid, gid = ids
    return {"user": uid, "group": gid, "extra_groups": []}


def start_postgres() -> ThrowawayServer:
    """initdb + start a private PostgreSQL on a free 127.0.0.1 port.

    The returned server has trust auth, fsync=off and a ``test`` database;
    its ``url`` is ``postgresql+psycopg://postgres@127.0.0.1:<port>/test``.
    """
    import psycopg

    initdb_bin, postgres_bin = _pg_binaries()
    ids = _pg_run_as()
    base = tempfile.gettempdir()
    if ids is not None and not _world_traversable(base):
        base = "/tmp"
    workdir = _make_workdir("qb-pg-", base)
    proc: subprocess.Popen | None = None
    try:
        datadir = workdir / "data"
        if ids is not None:
            os.chown(workdir, *ids)
        os.chmod(workdir, 0o700)
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        env.pop("PGDATA", None)
        init = subprocess.run(
            [
                initdb_bin,
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
            **_pg_user_kwargs(ids),
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout[-3000:]}")

        last_error = ""
        for _attempt in range(5):  # retry if someone grabs the port first
            port = free_port()
            logpath = workdir / f"postgres-{port}.log"
            with open(logpath, "wb") as log:
                proc = subprocess.Popen(
                    [
                        postgres_bin,
                        "-D",
                        str(datadir),
                        "-p",
                        str(port),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"unix_socket_directories={workdir}",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ],
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # terminal Ctrl-C goes to pytest only
                    preexec_fn=_death_signal_preexec(signal.SIGQUIT),
                    **_pg_user_kwargs(ids),
                )
            url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
            server = ThrowawayServer("postgres", url, proc, workdir, signal.SIGINT)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            while True:
                if proc.poll() is not None:
                    last_error = _log_tail(logpath)
                    break
                try:
                    with psycopg.connect(admin, connect_timeout=2, autocommit=True) as conn:
                        conn.execute("CREATE DATABASE test")
                    return server
                except psycopg.OperationalError as exc:
                    last_error = str(exc)
                    if time.monotonic() > deadline:
                        _stop_proc(proc)
                        raise RuntimeError(
                            f"throwaway PostgreSQL did not come up on port {port} "
                            f"within {STARTUP_TIMEOUT:.0f}s:\n{_log_tail(logpath)}"
                        ) from exc
                    time.sleep(0.1)
            if "could not bind" not in last_error and "in use" not in last_error:
                break
        raise RuntimeError(f"throwaway PostgreSQL failed to start:\n{last_error}")
    except BaseException:
        if proc is not None:
            _stop_proc(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    for cand in REDIS_SERVER_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    raise RuntimeError(
        "Redis binary 'redis-server' not found on PATH and no server answers on "
        "TEST_REDIS_URL; install it with `bash scripts/ensure_services.sh` "
        "(apt-get install redis-server)"
    )


def start_redis(db: int = 0) -> ThrowawayServer:
    """Start a private ``redis-server`` on a free 127.0.0.1 port (no persistence)."""
    import redis

    binary = _redis_binary()
    workdir = _make_workdir("qb-redis-")
    proc: subprocess.Popen | None = None
    try:
        last_error = ""
        for _attempt in range(5):
            port = free_port()
            logpath = workdir / f"redis-{port}.log"
            with open(logpath, "wb") as log:
                proc = subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--daemonize",
                        "no",
                        "--dir",
                        str(workdir),
                    ],
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_death_signal_preexec(signal.SIGTERM),
                )
            url = f"redis://127.0.0.1:{port}/{db}"
            server = ThrowawayServer("redis", url, proc, workdir, signal.SIGTERM)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                if proc.poll() is not None:
                    last_error = _log_tail(logpath)
                    break
                client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
                try:
                    if client.ping():
                        return server
                except redis.RedisError as exc:
                    last_error = str(exc)
                    if time.monotonic() > deadline:
                        _stop_proc(proc)
                        raise RuntimeError(
                            f"throwaway Redis did not come up on port {port} within "
                            f"{STARTUP_TIMEOUT:.0f}s:\n{_log_tail(logpath)}"
                        ) from exc
                    time.sleep(0.05)
                finally:
                    client.close()
            if "in use" not in last_error.lower() and "bind" not in last_error.lower():
                break
        raise RuntimeError(f"throwaway Redis failed to start:\n{last_error}")
    except BaseException:
        if proc is not None:
            _stop_proc(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        raise


# --------------------------------------------------------------------------
# Registry (once-per-process caching) and the module-level API
# --------------------------------------------------------------------------


class ServiceRegistry:
    """Resolves configured URLs, starting at most one throwaway server per kind.

    Results are cached per configured URL; ``close()`` stops the servers this
    registry started and clears the cache (also registered with atexit).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._resolved: dict[tuple[str, str], str] = {}
        self._servers: dict[str, ThrowawayServer] = {}
        atexit.register(self.close)

    @property
    def servers(self) -> dict[str, ThrowawayServer]:
        """Throwaway servers started by this registry, by kind."""
        return dict(self._servers)

    def postgres_url(self, configured: str | None = None) -> str:
        if configured is None:
            configured = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
        return self._resolve("postgres", configured, postgres_answers, start_postgres)

    def redis_url(self, configured: str | None = None) -> str:
        if configured is None:
            configured = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
        return self._resolve("redis", configured, redis_answers, self._start_redis_for(configured))

    @staticmethod
    def _start_redis_for(configured: str) -> Callable[[], ThrowawayServer]:
        path = urlsplit(configured).path.strip("/")
        return lambda: start_redis(int(path) if path.isdigit() else 0)

    def _resolve(
        self,
        kind: str,
        configured: str,
        answers: Callable[[str], bool],
        start: Callable[[], ThrowawayServer],
    ) -> str:
        with self._lock:
            key = (kind, configured)
            if key in self._resolved:
                return self._resolved[key]
            if answers(configured):
                url = configured
            else:
                server = self._servers.get(kind)
                if server is None:
                    server = start()
                    self._servers[kind] = server
                url = server.url
            self._resolved[key] = url
            return url

    def close(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
            self._resolved.clear()
        for server in servers:
            server.stop()


_default = ServiceRegistry()


def postgres_url(configured: str | None = None) -> str:
    """URL (``postgresql+psycopg://``) of a reachable PostgreSQL server.

    ``configured`` defaults to ``$TEST_POSTGRES_URL`` or
    ``DEFAULT_POSTGRES_URL``; it is returned unchanged if it answers, else a
    throwaway server is started (once per process) and its URL returned.
    """
    return _default.postgres_url(configured)


def redis_url(configured: str | None = None) -> str:
    """URL of a reachable Redis server (``$TEST_REDIS_URL`` or a throwaway)."""
    return _default.redis_url(configured)


def reset() -> None:
    """Stop the default registry's throwaway servers and forget cached URLs."""
    _default.close()


_SAFE_DBNAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def fresh_postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """Create ``qb_test_<hex>`` on ``base_url``'s server.

    Returns its SQLAlchemy URL (``postgresql+psycopg://...``) and an
    idempotent function that drops it ``WITH (FORCE)``.
    """
    import psycopg
    from psycopg import sql

    name = f"qb_test_{uuid.uuid4().hex[:16]}"
    assert _SAFE_DBNAME.match(name)
    admin = _libpq_url(base_url)
    for attempt in range(5):
        try:
            with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            break
        except psycopg.errors.ObjectInUse:  # template1 busy (concurrent CREATE)
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))

    dropped = threading.Event()
    drop_lock = threading.Lock()

    def drop() -> None:
        with drop_lock:
            if dropped.is_set():
                return
            with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            dropped.set()

    return _sqlalchemy_url(base_url, database=name), drop
