"""The database: one typed declarative base, one scoped session, UTC timestamps.

Every model in every domain derives from `Base`. Code talks to the database through
`db`, a thread-scoped session: services add, flush and commit once per use case; models
never commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind stored)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    PostgreSQL keeps `timestamptz`; SQLite keeps naive text, so values are normalised
    to UTC on the way in and tagged as UTC on the way out. A naive datetime is refused:
    it is a bug to not know which clock a time came from.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# 64-bit integers everywhere (money in minor units, ids); SQLite only autoincrements a
# column declared INTEGER, hence the variant.
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, int: BigInt}

db = scoped_session(sessionmaker(expire_on_commit=False))
_engine: Engine | None = None


def init_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for `url` and bind the scoped session to it."""
    global _engine
    if _engine is not None:
        db.remove()
        _engine.dispose()
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    db.configure(bind=engine)
    _engine = engine
    return engine


def get_engine() -> Engine:
    if _engine is None:
        raise RuntimeError("database engine not initialised (call create_app first)")
    return _engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


APPEND_ONLY_TABLES: list[str] = []


def append_only_sql(table: str) -> str:
    """PostgreSQL DDL that refuses UPDATE and DELETE on `table` for every client."""
    return f"""
CREATE OR REPLACE FUNCTION barid_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION barid_refuse_change();
"""


def append_only(table: Any) -> None:
    """Mark a table append-only: the trigger is created with the table on PostgreSQL.

    Migrations that create such a table call `append_only_sql` themselves.
    """
    from sqlalchemy import DDL

    APPEND_ONLY_TABLES.append(table.name)
    # DDL() treats % as a format character.
    ddl = DDL(append_only_sql(table.name).replace("%", "%%"))
    event.listen(table, "after_create", ddl.execute_if(dialect="postgresql"))


def applies_to_dialect(obj: Any, dialect: str) -> bool:
    """Whether a schema object exists on `dialect` (False for e.g. a PostgreSQL-only
    index declared with `.ddl_if(dialect="postgresql")`). Used when comparing the models
    with a migrated database."""
    only = getattr(obj, "_ddl_if", None)
    return only is None or only.dialect is None or only.dialect == dialect
