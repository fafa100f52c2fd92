"""The database: one typed declarative base, one scoped session, UTC timestamps.

Every model in every domain derives from `Base`. Code talks to the database through
`db`, a thread-scoped session. One unit of work owns each transaction: whatever starts a
use case (a view, an API handler, the job runner, a CLI command) opens
`unit_of_work()`; services and models only add and flush. An inner unit of work joins
the outer one, and a step that may fail on its own takes a `savepoint()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

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
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
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


def engine_url(url: str) -> str:
    """SQLAlchemy's form of a DATABASE_URL, which may be written as libpq writes it.

    `postgresql://` means the psycopg 3 driver. libpq's several hosts
    (`postgresql://u@baghdad:5432,basra:5432/barid?target_session_attrs=read-write`,
    how the two sites are named) become repeated `host=` parameters, which psycopg hands
    to libpq as one list to try in order.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return url
    path, question, query = tail.partition("?")
    params = [f"host={quote(h.strip(), safe=':[]')}" for h in hosts.split(",") if h.strip()]
    query = "&".join(params + ([query] if query else []))
    return f"{scheme}://{userinfo}{at}/{path}?{query}"


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
    engine = create_engine(engine_url(url), **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    db.configure(bind=engine)
    _engine = engine
    return engine


_DEPTH = "barid_unit_of_work_depth"
P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """The transaction of one use case: commit when the block ends, roll back if it raises.

    Opened by whatever starts the use case. Inside an open unit of work it joins the
    outer one and neither commits nor rolls back: the outermost owner decides for all
    of it. Catch a domain error outside the block, so what was flushed before it is
    rolled back with it.
    """
    session = db()
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info[_DEPTH] = depth


def in_unit_of_work() -> bool:
    """Whether the calling code runs inside an open unit of work."""
    return bool(db.registry.has() and db().info.get(_DEPTH, 0))


def transactional(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` as one unit of work (for views, API handlers, jobs and commands)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with unit_of_work():
            return func(*args, **kwargs)

    return wrapper


@contextmanager
def savepoint() -> Iterator[Session]:
    """A step that may fail on its own: if the block raises, only its changes are undone
    and the enclosing transaction goes on (the exception still propagates)."""
    session = db()
    with session.begin_nested():
        yield session


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
