"""Alembic environment: the models' metadata, the configured database URL."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from app.database import Base, applies_to_dialect

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from app.config import database_url

        url = database_url()
    from app.database import engine_url

    return engine_url(url)


def _metadata():
    from app.models_registry import load_all

    load_all()
    return Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=_metadata(), literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = engine_from_config({"sqlalchemy.url": _url()}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=lambda obj, *_: applies_to_dialect(obj, connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
