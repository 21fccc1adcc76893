"""Browser tests: the real app in Reflex's production mode, driven by Playwright in Debian's Chromium.

The app is started once per test session (a production build takes a while) and
shared; every test makes its own users and data, in its own browser context.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, expect

from tests.support.servers import free_port

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope
    from aiosmtpd.smtp import Session as SMTPSession

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STARTUP_TIMEOUT = 420  # first run builds .web (bun install + vite build)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
    # The embedded Stripe's clock only moves forward and the app is shared: once a test has moved
    # it days ahead, checkouts the app opens on wall-clock time expire at once. Those tests go last.
    items.sort(key=lambda item: item.get_closest_marker("stripe_clock") is not None)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(
        self, predicate: Callable[[email.message.EmailMessage], bool], timeout: float = 20.0
    ) -> email.message.EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if predicate(message):
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no matching e-mail in {timeout}s; got {[m['Subject'] for m in self.messages]}")


@dataclass
class LiveApp:
    url: str
    data_dir: Path
    env: dict[str, str]
    smtp: SmtpSink

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "quantoxbay", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _wait_for(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200 and b"<html" in resp.read(2000).lower():
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the app did not answer at {url} in {STARTUP_TIMEOUT}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def web_build_lock() -> Iterator[None]:
    """Held for the whole test session: a second run in the same checkout would rebuild .web
    under the apps this one is serving, so runs take turns."""
    lock = (ROOT / ".web.build.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@pytest.fixture(scope="session")
def live_app(web_build_lock: None) -> Iterator[LiveApp]:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="qb-e2e-"))
    smtp = SmtpSink()
    smtp.start()
    env = {
        **os.environ,
        "SMTP_URL": smtp.url,
        "DATA_DIR": str(data_dir),
        "APP_PORT": str(port),
        "PUBLIC_URL": f"http://localhost:{port}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "PATH": f"{ROOT / '.tools/node_modules/.bin'}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    app = LiveApp(url=f"http://localhost:{port}", data_dir=data_dir, env=env, smtp=smtp)
    for step in (("migrate",), ("seed-demo",)):
        result = app.cli(*step)
        assert result.returncode == 0, result.stderr
    log = data_dir / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex",
                "run",
                "--env",
                "prod",
                "--single-port",
                "--backend-port",
                str(port),
                "--frontend-port",
                str(port),
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(app.url + "/", proc, log)
        yield app
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        smtp.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser, live_app: LiveApp) -> Iterator[Callable[..., Page]]:
    """A factory of pages, each in its own browser context (its own cookies). Any Content
    Security Policy violation a page reports fails the test (the policy is api/security.py's)."""
    contexts: list[BrowserContext] = []
    violations: list[str] = []

    def note_violation(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    def make(viewport: ViewportSize | None = None) -> Page:
        context = browser.new_context(
            base_url=live_app.url, viewport=viewport or {"width": 1280, "height": 860}
        )
        context.set_default_timeout(15_000)
        # Assertions wait as long as actions: sign-up (bcrypt, cookie hand-off, a fresh page) took
        # over expect's 5 s default on a loaded 2-core machine.
        expect.set_options(timeout=15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", note_violation)
        return page

    yield make
    for context in contexts:
        context.close()
    assert violations == [], violations
