"""Bounded requests: oversized bodies are refused before the server stores or buffers them.
Goals: an upload refused with < 1 MiB written to the server's temp dir; a Stripe-bound body
(webhook, embedded Stripe API) refused with < 16 MiB RSS growth of the server's processes.

    python -m bench.bench_limits                                 # 1 GiB uploads, 512 MiB Stripe bodies
    python -m bench.bench_limits --upload-mib 256 --stripe-mib 128

The real app under ``reflex run --env prod --single-port`` (bench/_harness.py reflex_app, SQLite,
embedded Stripe), with its own TMPDIR (where Reflex's multipart parser spools uploads) and
MAX_UPLOAD_BYTES at 64 MiB. A raw asyncio client sends each body in 1 MiB blocks as fast as the
server takes them, and stops when the server answers or closes. Disk: the largest size of the
server's TMPDIR while the request ran (sampled every 20 ms), minus its size before. RSS: for
each process of the server's process group, VmHWM after the request minus VmRSS just before it
(VmHWM reset through /proc/<pid>/clear_refs first), summed.

As reported before the limits (main at 75d1df8): a 1 GiB anonymous upload left a 981 MiB temp file; a
512 MiB chunked webhook body grew the server's RSS by 2.2 GiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import load_note, reflex_app, reset_hwm, run_main, status_kib, tempdir

MIB = 1024 * 1024
DISK_GOAL_MIB = 1.0
RSS_GOAL_MIB = 16.0
SELLER_UPLOAD_LIMIT = 64 * MIB
UPLOAD_HANDLER = (
    "reflex___state____state.quantoxbay___state___seller_products____product_form_state.receive_files"
)
BOUNDARY = "benchboundary7f3a"


@dataclass
class Case:
    name: str
    path: str
    size: int
    chunked: bool
    declared: int | None = None  # a Content-Length that is not the body's size
    headers: tuple[tuple[str, str], ...] = ()
    preamble: bytes = b""
    goal: str = "rss"  # "rss" or "disk"
    # 0: the server closed the connection without reading the rest, and the kernel's reset
    # reached the client before the 413 did (the refusal is the same; the client only missed why).
    want_status: tuple[int, ...] = (413, 0)


@dataclass
class Result:
    case: Case
    status: int
    sent_mib: float
    seconds: float
    disk_mib: float
    rss_mib: float

    @property
    def ok(self) -> bool:
        within = self.disk_mib < DISK_GOAL_MIB if self.case.goal == "disk" else self.rss_mib < RSS_GOAL_MIB
        return within and self.status in self.case.want_status


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a temp file removed while we looked
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class DiskPeak:
    """The largest size ``path`` reaches while the block runs."""

    def __init__(self, path: Path) -> None:
        self.path, self.peak, self._stop = path, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, dir_bytes(self.path))
            time.sleep(0.02)

    def __enter__(self) -> DiskPeak:
        self.before = dir_bytes(self.path)
        self.peak = self.before
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, dir_bytes(self.path))


async def push(port: int, case: Case) -> tuple[int, int]:
    """Send ``case``'s request; (status or 0 if closed without an answer, body bytes written)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"POST {case.path} HTTP/1.1", f"Host: localhost:{port}", f"Origin: http://localhost:{port}"]
    lines += [f"{k}: {v}" for k, v in case.headers]
    if case.chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {case.declared if case.declared is not None else case.size}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    zeros = b"\0" * MIB
    block = case.preamble + zeros[len(case.preamble) :]
    sent = 0
    try:
        while sent < case.size and not answer.done():
            data = block[: min(MIB, case.size - sent)] if sent == 0 else zeros[: min(MIB, case.size - sent)]
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if case.chunked else data)
            await asyncio.wait_for(writer.drain(), 15)
            sent += len(data)
        if case.chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
    except (ConnectionError, TimeoutError, OSError):
        pass
    try:
        head = await asyncio.wait_for(answer, 30)
        status = int(head[9:12])
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, OSError):
        status = 0
    writer.close()
    return status, sent


def measure(port: int, pgid: int, tmp: Path, case: Case) -> Result:
    pids = group_pids(pgid)
    for pid in pids:
        reset_hwm(pid)
    rss_before = {pid: status_kib(pid, "VmRSS") for pid in pids}
    start = time.perf_counter()
    with DiskPeak(tmp) as disk:
        status, sent = asyncio.run(push(port, case))
    seconds = time.perf_counter() - start
    rss_growth = 0
    for pid in pids:
        with contextlib.suppress(OSError, KeyError):  # that process ended
            rss_growth += max(0, status_kib(pid, "VmHWM") - rss_before[pid])
    return Result(case, status, sent / MIB, seconds, (disk.peak - disk.before) / MIB, rss_growth / 1024)


def seller_cookie(data_dir: Path) -> str:
    """A seller's session cookie, written straight into the app's database."""
    from sqlalchemy import insert, select
    from sqlmodel import Session, col

    from quantoxbay.db import make_engine
    from quantoxbay.models import User, utcnow
    from quantoxbay.services import accounts

    engine = make_engine(f"sqlite:///{data_dir / 'quantoxbay.db'}")
    tag = os.urandom(4).hex()
    try:
        with Session(engine) as session:
            session.execute(
                insert(User).values(
                    email=f"seller-{tag}@bench.test", password_hash="x", role="seller",
                    display_name="Bench seller", handle=f"bench-{tag}", disabled=False,
                    failed_login_count=0, created_at=utcnow(),
                )
            )  # fmt: skip
            user_id = session.execute(
                select(col(User.id)).where(col(User.email) == f"seller-{tag}@bench.test")
            ).scalar_one()
            token = accounts.start_session(session=session, user_id=user_id)
            session.commit()
    finally:
        engine.dispose()
    return token


def cases(upload: int, stripe: int, cookie: str) -> list[Case]:
    preamble = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    upload_headers = (
        ("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"),
        ("Reflex-Client-Token", str(uuid.uuid4())),
        ("Reflex-Event-Handler", UPLOAD_HANDLER),
    )
    size = f"{upload // MIB} MiB"
    stripe_size = f"{stripe // MIB} MiB"
    form = (("Content-Type", "application/x-www-form-urlencoded"),)
    return [
        Case(f"upload {size}, anonymous, Content-Length", "/_upload", upload, False,
             headers=upload_headers, preamble=preamble, goal="disk", want_status=(403, 413, 0)),
        Case(f"upload {size}, anonymous, chunked", "/_upload", upload, True,
             headers=upload_headers, preamble=preamble, goal="disk", want_status=(411, 403, 0)),
        Case(f"upload {size}, seller over the 64 MiB limit", "/_upload", upload, False,
             headers=(*upload_headers, ("Cookie", f"qb_session={cookie}")), preamble=preamble, goal="disk"),
        Case(f"webhook {stripe_size}, chunked", "/api/stripe/webhook", stripe, True),
        Case(f"webhook {stripe_size}, Content-Length says 1 KiB", "/api/stripe/webhook", stripe, False,
             declared=1024, want_status=(400, 0)),
        Case(f"webhook {stripe_size}, Content-Length says 1 MiB + 1", "/api/stripe/webhook", stripe, False,
             declared=MIB + 1),
        Case(f"embedded Stripe API {stripe_size}, chunked", "/stripe-local/v1/customers", stripe, True,
             headers=form),
        # Control: a small unsigned event still reaches the route (400: no signature), not 413.
        Case("webhook 1 KiB, chunked (control)", "/api/stripe/webhook", 1024, True, want_status=(400,)),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument("--stripe-mib", type=int, default=512)
    args = parser.parse_args(argv)

    workdir = tempdir("qb-bench-limits-")
    data_dir, tmp = workdir / "data", workdir / "tmp"
    data_dir.mkdir()
    tmp.mkdir()
    results: list[Result] = []
    try:
        env = {"TMPDIR": str(tmp), "MAX_UPLOAD_BYTES": str(SELLER_UPLOAD_LIMIT)}
        with reflex_app(data_dir, backend_only=False, extra_env=env) as app:
            port = int(app.url.rsplit(":", 1)[1])
            cookie = seller_cookie(data_dir)
            for case in cases(args.upload_mib * MIB, args.stripe_mib * MIB, cookie):
                result = measure(port, app.pid, tmp, case)
                results.append(result)
                print(
                    f"{case.name:<52} status {result.status:>3}  sent {result.sent_mib:7.1f} MiB in "
                    f"{result.seconds:5.2f} s  temp dir +{result.disk_mib:6.2f} MiB  "
                    f"RSS +{result.rss_mib:6.1f} MiB  {'ok' if result.ok else 'MISSED'}",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    disk = max(r.disk_mib for r in results if r.case.goal == "disk")
    rss = max(r.rss_mib for r in results if r.case.goal == "rss")
    print(f"\n{load_note()}")
    print(f"uploads refused: largest temp dir growth {disk:.2f} MiB (goal < {DISK_GOAL_MIB:.0f} MiB)")
    print(f"Stripe bodies refused: largest RSS growth {rss:.1f} MiB (goal < {RSS_GOAL_MIB:.0f} MiB)")
    met = all(r.ok for r in results)
    print("goal met" if met else "goal MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    run_main(main)
