"""The migrations are one linear history that builds the same schema as the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from app.config import ROOT
from app.database import APPEND_ONLY_TABLES, Base, applies_to_dialect
from app.models_registry import load_all


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _differences(url: str) -> list:
    load_all()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            dialect = conn.dialect.name
            ctx = MigrationContext.configure(conn, opts={
                "compare_type": True,
                "include_object": lambda obj, *_: applies_to_dialect(obj, dialect),
            })
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_history_is_linear():
    script = ScriptDirectory.from_config(_alembic("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_empty_postgresql_upgrades_to_head_and_matches_models(make_database):
    url = make_database()
    command.upgrade(_alembic(url), "head")
    assert _differences(url) == []


def test_migrated_postgresql_refuses_changes_to_append_only_tables(make_database):
    url = make_database()
    command.upgrade(_alembic(url), "head")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            triggers = set(conn.execute(text(
                "SELECT event_object_table FROM information_schema.triggers "
                "WHERE trigger_name LIKE '%append_only'"
            )).scalars())
    finally:
        engine.dispose()
    load_all()
    assert set(APPEND_ONLY_TABLES) <= triggers


def test_empty_sqlite_upgrades_to_head_and_matches_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'barid.sqlite3'}"
    command.upgrade(_alembic(url), "head")
    assert _differences(url) == []
