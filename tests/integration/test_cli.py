"""`python -m quantoxbay ...` against a throwaway DATA_DIR (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "quantoxbay", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert run("migrate").returncode == 0
    return run


def test_seed_demo_is_idempotent_and_prints_logins(cli) -> None:  # type: ignore[no-untyped-def]
    first = cli("seed-demo")
    assert first.returncode == 0, first.stderr
    assert "Demo data created." in first.stdout
    assert "seller@demo.quantoxbay.test" in first.stdout
    second = cli("seed-demo")
    assert "Demo data already present." in second.stdout


def test_create_user_and_product(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    made = cli("create-user", "maker@example.com", "--password", "long-enough-pw", "--role", "seller")
    assert made.returncode == 0, made.stderr
    assert "Created seller maker@example.com" in made.stdout
    book = tmp_path / "book.pdf"
    book.write_bytes(b"%PDF-1.4 tiny")
    product = cli(
        "create-product",
        "--seller",
        "maker@example.com",
        "--title",
        "Tiny Book",
        "--price-cents",
        "700",
        "--file",
        str(book),
    )
    assert product.returncode == 0, product.stderr
    assert "Published product" in product.stdout


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
def test_bad_arguments_give_clear_errors(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_create_product_for_unknown_seller(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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
