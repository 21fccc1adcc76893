"""Production shape: PostgreSQL + Redis + S3 (moto) with two backends. The buyer's browser is
connected to backend A; the embedded Stripe delivers the webhook to backend B; "Payment
confirmed" still arrives live on A (Reflex routes B's push through Redis)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from quantoxbay.settings import new_stripe_local_key
from tests.e2e.conftest import ROOT, _wait_for
from tests.support import servers
from tests.support.servers import free_port

PASSWORD = "multiworker-pass-1"


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "reflex", "run", "--env", "prod", *args, "--loglevel", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass


def _wait_backend(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"backend exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"backend did not answer:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def two_backends(web_build_lock: None) -> Iterator[dict]:
    import boto3
    from moto.server import ThreadedMotoServer

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    moto.start()
    pg_url, drop_db = servers.fresh_postgres_database(servers.postgres_url())
    redis = servers.redis_url().rsplit("/", 1)[0] + "/11"
    port_a, port_b = free_port(), free_port()
    base = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis,
        "STORAGE_URL": "s3://qb-multiworker/files",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "APP_SECRET": "multiworker-app-secret-" + uuid.uuid4().hex,
        "STRIPE_WEBHOOK_SECRET": "whsec_" + uuid.uuid4().hex,
        "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_" + uuid.uuid4().hex,
        # Both backends talk to A's embedded Stripe (PUBLIC_URL): one key for both, like the secrets above.
        "STRIPE_LOCAL_SECRET_KEY": new_stripe_local_key(),
        "PUBLIC_URL": f"http://localhost:{port_a}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "GRANIAN_WORKERS": "1",
        "PATH": f"{ROOT / '.tools/node_modules/.bin'}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    boto3.client(
        "s3",
        endpoint_url=base["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket="qb-multiworker")
    dir_a, dir_b = Path(tempfile.mkdtemp(prefix="qb-a-")), Path(tempfile.mkdtemp(prefix="qb-b-"))
    # A's frontend is built for A's URL: build it in its own work dir, not under the shared live app.
    web_dir = ROOT / ".web-multiworker"
    if not web_dir.exists() and (ROOT / ".web" / "node_modules").exists():
        shutil.copytree(ROOT / ".web", web_dir, symlinks=True)
    base["REFLEX_WEB_WORKDIR"] = str(web_dir)
    env_a = {
        **base,
        "DATA_DIR": str(dir_a),
        "APP_PORT": str(port_a),
        "STRIPE_LOCAL_WEBHOOK_URL": f"http://127.0.0.1:{port_b}/api/stripe/webhook",
    }
    env_b = {**base, "DATA_DIR": str(dir_b), "APP_PORT": str(port_b)}
    cli = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "quantoxbay", *a],
        cwd=ROOT,
        env=env_a,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli("migrate").returncode == 0
    assert (
        cli("create-user", "mw-seller@example.com", "--password", PASSWORD, "--role", "seller").returncode
        == 0
    )
    # Priced products need the seller's payouts set up (on A's embedded Stripe, which A serves).
    onboarded = cli("onboard-seller", "mw-seller@example.com")
    assert onboarded.returncode == 0, onboarded.stderr
    payload = dir_a / "pack.zip"
    payload.write_bytes(os.urandom(4096))
    made = cli(
        "create-product",
        "--seller",
        "mw-seller@example.com",
        "--title",
        "Multiworker Pack",
        "--price-cents",
        "2500",
        "--file",
        str(payload),
    )
    assert made.returncode == 0, made.stderr

    log_b = dir_b / "b.log"
    backend_b = _start(["--backend-only", "--backend-port", str(port_b)], env_b, log_b)
    log_a = dir_a / "a.log"
    app_a = _start(
        ["--single-port", "--backend-port", str(port_a), "--frontend-port", str(port_a)], env_a, log_a
    )
    try:
        _wait_for(f"http://localhost:{port_a}/", app_a, log_a)
        _wait_backend(f"http://127.0.0.1:{port_b}/api/health", backend_b, log_b)
        yield {
            "a": f"http://localhost:{port_a}",
            "b": f"http://127.0.0.1:{port_b}",
            "payload": payload.read_bytes(),
            "log_a": log_a,
            "log_b": log_b,
            "db": pg_url,
            "stripe_key": base["STRIPE_LOCAL_SECRET_KEY"],
        }
    finally:
        _stop(app_a)
        _stop(backend_b)
        moto.stop()
        drop_db()


@pytest.mark.postgres  # both backends share one PostgreSQL database
def test_payment_confirmed_arrives_across_workers(browser, two_backends) -> None:
    a = two_backends["a"]
    context = browser.new_context(base_url=a)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/signup")
    page.get_by_label("Email").fill(f"mw-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()
    page.goto("/")
    page.get_by_role("link", name="Multiworker Pack").click()
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(re.compile(r"/stripe-local/checkout/cs_test_"))
    session_id = page.url.rsplit("/", 1)[-1].split("?")[0]

    # The buyer waits on the confirmation page (served by A) before paying.
    page.goto(f"/checkout/success?session_id={session_id}")
    expect(page.get_by_text("Waiting for payment confirmation")).to_be_visible()

    # Pay; the embedded Stripe on A signs the event and delivers it to backend B.
    paid = httpx.post(
        f"{a}/stripe-local/_local/checkout/{session_id}/pay",
        headers={"Authorization": f"Bearer {two_backends['stripe_key']}"},
        timeout=20,
    )
    assert paid.status_code == 200, paid.text
    expect(page.get_by_text("Payment confirmed")).to_be_visible(timeout=15_000)

    assert "POST /api/stripe/webhook" not in two_backends["log_a"].read_text()
    # The download is a presigned S3 URL (redirect) whose bytes are the seller's file.
    href = page.get_by_role("link", name="Download").first.get_attribute("href")
    response = page.request.get(href, max_redirects=0)
    assert response.status == 302 and "X-Amz-Signature" in response.headers["location"]
    assert httpx.get(response.headers["location"], timeout=10).content == two_backends["payload"]
    context.close()
