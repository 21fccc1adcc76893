"""Run Alembic migrations from Python (CLI, app start-up scripts, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config for this project, optionally bound to ``database_url``."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade_to_head(database_url: str | None = None) -> None:
    """Bring the database at ``database_url`` (default: settings) to the newest schema."""
    # "heads": feature branches of the migration graph may be open at once (merged later).
    command.upgrade(alembic_config(database_url), "heads")
