"""`python -m quantoxbay ...` against a throwaway DATA_DIR (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from quantoxbay.db import make_engine
from quantoxbay.models import Role, User, UserSession
from quantoxbay.services import accounts
from quantoxbay.services.demo import DEMO_PASSWORD, DEMO_USERS

ROOT = Path(__file__).resolve().parents[2]
NETWORK_HOST = "0.0.0.0"  # noqa: S104  (what HOST=0.0.0.0 make run passes)

# Every test starts the real app in subprocesses: slow, so left out of `make test-fast`.
pytestmark = pytest.mark.slow


@pytest.fixture
def cli(tmp_path: Path):
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data")}

    def run(*args: str, host: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "quantoxbay", *args],
            cwd=ROOT,
            env={**env, "HOST": host} if host is not None else env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert run("migrate").returncode == 0
    return run


def test_seed_demo_is_idempotent_and_prints_logins(cli) -> None:
    first = cli("seed-demo")
    assert first.returncode == 0, first.stderr
    assert "Demo data created." in first.stdout
    assert "seller@demo.quantoxbay.test" in first.stdout
    second = cli("seed-demo")
    assert "Demo data already present." in second.stdout


def _demo_db(tmp_path: Path) -> Session:
    return Session(make_engine(f"sqlite:///{tmp_path / 'data' / 'quantoxbay.db'}"))


def _opens(tmp_path: Path, email: str, password: str) -> bool:
    with _demo_db(tmp_path) as s:
        user = s.exec(select(User).where(User.email == email)).one()
        return accounts.verify_password(password, user.password_hash)


def _printed_passwords(stdout: str) -> dict[str, str]:
    """``role  email  password`` lines of the CLI's output."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in DEMO_USERS.values():
            found[parts[1]] = parts[2]
    return found


def test_seed_demo_on_loopback_uses_the_published_password(cli, tmp_path: Path) -> None:
    seeded = cli("seed-demo")  # HOST unset: 127.0.0.1
    assert seeded.returncode == 0, seeded.stderr
    assert f"password for all: {DEMO_PASSWORD}" in seeded.stdout
    assert _opens(tmp_path, DEMO_USERS[Role.ADMIN], DEMO_PASSWORD)
    # secure-demo on loopback changes nothing.
    assert cli("secure-demo", host="localhost").returncode == 0
    assert _opens(tmp_path, DEMO_USERS[Role.ADMIN], DEMO_PASSWORD)


def test_seed_demo_on_a_network_host_never_uses_the_published_password(cli, tmp_path: Path) -> None:
    seeded = cli("seed-demo", host=NETWORK_HOST)
    assert seeded.returncode == 0, seeded.stderr
    assert "Demo data created." in seeded.stdout and DEMO_PASSWORD not in seeded.stdout
    passwords = _printed_passwords(seeded.stdout)
    assert set(passwords) == set(DEMO_USERS.values())
    assert len(set(passwords.values())) == 3 and all(len(p) >= 16 for p in passwords.values())
    for email, password in passwords.items():
        assert _opens(tmp_path, email, password)
        assert not _opens(tmp_path, email, DEMO_PASSWORD)
    # Printed once: a second run shows no password at all.
    again = cli("seed-demo", host=NETWORK_HOST)
    assert "Demo data already present." in again.stdout
    assert not _printed_passwords(again.stdout) and not any(p in again.stdout for p in passwords.values())


def test_published_password_is_replaced_before_a_network_host_listens(cli, tmp_path: Path) -> None:
    assert cli("seed-demo").returncode == 0  # an earlier `make run` on loopback
    admin = DEMO_USERS[Role.ADMIN]
    with _demo_db(tmp_path) as s:
        admin_id = s.exec(select(User.id).where(User.email == admin)).one()
        accounts.start_session(session=s, user_id=admin_id)  # type: ignore[arg-type]
        s.commit()
    exposed = cli("secure-demo", host=NETWORK_HOST)  # what `HOST=0.0.0.0 make run-prod` runs first
    assert exposed.returncode == 0, exposed.stderr
    passwords = _printed_passwords(exposed.stdout)
    assert set(passwords) == set(DEMO_USERS.values()) and DEMO_PASSWORD not in exposed.stdout
    for email, password in passwords.items():
        assert _opens(tmp_path, email, password) and not _opens(tmp_path, email, DEMO_PASSWORD)
    with _demo_db(tmp_path) as s:
        assert s.exec(select(UserSession).where(UserSession.user_id == admin_id)).first() is None
    # Already replaced: nothing more to print, whichever command runs next.
    again = cli("seed-demo", host=NETWORK_HOST)
    assert "no demo account opens with the published password" in again.stdout
    assert not _printed_passwords(again.stdout)
    # Back on loopback the CLI does not claim the published password still works.
    local = cli("seed-demo")
    assert "password set at random earlier" in local.stdout


def test_seed_demo_rotates_on_a_network_host_too(cli, tmp_path: Path) -> None:
    assert cli("seed-demo").returncode == 0
    exposed = cli("seed-demo", host="192.168.1.20")  # what `HOST=192.168.1.20 make run` runs first
    assert "Demo data already present." in exposed.stdout
    passwords = _printed_passwords(exposed.stdout)
    assert set(passwords) == set(DEMO_USERS.values())
    seller = DEMO_USERS[Role.SELLER]
    assert _opens(tmp_path, seller, passwords[seller]) and not _opens(tmp_path, seller, DEMO_PASSWORD)


def test_create_user_and_product(cli, tmp_path: Path) -> None:
    made = cli("create-user", "maker@example.com", "--password", "long-enough-pw", "--role", "seller")
    assert made.returncode == 0, made.stderr
    assert "Created seller maker@example.com" in made.stdout
    book = tmp_path / "book.pdf"
    book.write_bytes(b"%PDF-1.4 tiny")
    args = ("create-product", "--seller", "maker@example.com", "--title", "Tiny Book", "--price-cents", "700",
            "--file", str(book))  # fmt: skip
    refused = cli(*args)
    assert refused.returncode == 2 and "Set up payouts before selling priced products" in refused.stderr
    onboarded = cli("onboard-seller", "maker@example.com")
    assert onboarded.returncode == 0, onboarded.stderr
    assert "maker@example.com: Payouts enabled (acct_" in onboarded.stdout
    product = cli(*args)
    assert product.returncode == 0, product.stderr
    assert "Published product" in product.stdout
    again = cli("onboard-seller", "maker@example.com")  # the same account, still enabled
    assert again.returncode == 0 and again.stdout == onboarded.stdout


def test_reconcile_with_no_sales_reports_no_drift(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("reconcile")
    assert done.returncode == 0, done.stderr
    assert "Reconciled 0 order(s) with Stripe: drift 0 cents." in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create-user", "not-an-email", "--password", "long-enough-pw"), "valid email"),
        (("create-user", "a@example.com", "--password", "short"), "at least 8 characters"),
        (
            (
                "create-product",
                "--seller",
                "nobody@example.com",
                "--title",
                "T",
                "--price-cents",
                "100",
                "--file",
                "/no/such/file",
            ),
            "no such file",
        ),
        (
            ("create-user", "a@example.com", "--password", "long-enough-pw", "--role", "king"),
            "invalid choice",
        ),
    ],
)
def test_bad_arguments_give_clear_errors(cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_create_product_for_unknown_seller(cli, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    result = cli(
        "create-product",
        "--seller",
        "ghost@example.com",
        "--title",
        "T",
        "--price-cents",
        "100",
        "--file",
        str(f),
    )
    assert result.returncode == 2
    assert "no user with email ghost@example.com" in result.stderr


@pytest.mark.parametrize("command", ["migrate", "seed-demo", "secure-demo"])
def test_a_broken_production_configuration_is_refused_with_a_message(tmp_path: Path, command: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("STRIPE_WEBHOOK_SECRET", "APP_SECRET")}
    env.update(DATA_DIR=str(tmp_path / "data"), STRIPE_SECRET_KEY="sk_live_not_for_printing")
    env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    result = subprocess.run(
        [sys.executable, "-m", "quantoxbay", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY" in result.stderr
    assert "stripe listen" in result.stderr
    assert "APP_SECRET is required with REDIS_URL" in result.stderr
    assert "sk_live_not_for_printing" not in result.stderr
    assert not (tmp_path / "data" / "quantoxbay.db").exists()
