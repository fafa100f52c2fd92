"""Schema migrations: the Alembic configuration and bringing a database to the newest one.

Used by `barid db upgrade` (app.cli) and by the embedded platform (app.serve).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from flask import current_app

from app.config import MIGRATIONS_DIR


def alembic_config() -> Config:
    """Alembic's configuration for the app's DATABASE_URL and migrations/."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", current_app.config["DATABASE_URL"])
    return cfg


def upgrade_database() -> None:
    """Bring the configured database to the newest migration."""
    command.upgrade(alembic_config(), "head")
