"""Domain events through a transactional outbox.

`publish(name, payload)` writes the event and one outbox job per subscriber in the
caller's transaction. Nothing is handed to an executor until that transaction commits
(see app.jobs), so a rolled-back change publishes nothing and a crash after commit loses
nothing: the outbox rows are still there for the sweeper.

Subscribers register by event name (or "*" for every event) with `@subscribe`. A
subscriber is a plain function `handler(event: DomainEvent) -> None`; it runs in a job,
in the same transaction that marks the job done, so its database effects happen once.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ForeignKey, Index, String, Text, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.database import Base, db, utcnow
from app.logs import current_request_id

Handler = Callable[["DomainEvent"], None]
_subscribers: dict[str, list[str]] = {}
# "queue|path" of a subscriber -> the payload values an event must carry for it to be
# staged (see subscribe's only_if).
_conditions: dict[str, dict[str, Any]] = {}
# Task paths of subscribers someone waits on (see subscribe's urgent).
_urgent: set[str] = set()


class DomainEvent(Base):
    __tablename__ = "domain_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(64))


class JobState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class OutboxJob(Base):
    """A unit of work staged in the database until its transaction commits."""

    __tablename__ = "outbox_jobs"
    __table_args__ = (Index("ix_outbox_jobs_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("domain_events.id"), index=True)
    task: Mapped[str] = mapped_column(String(200))  # "module:function"
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queue: Mapped[str] = mapped_column(String(32), default="default")
    state: Mapped[str] = mapped_column(String(16), default=JobState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


def task_path(func: Callable[..., Any] | str) -> str:
    """"module:function" of a job; a dotted path is taken as it is, so a module can name
    a job without importing the module that defines it."""
    if isinstance(func, str):
        return func
    return f"{func.__module__}:{func.__qualname__}"


def subscribe(event_name: str, *, queue: str = "default",
              only_if: dict[str, Any] | None = None,
              urgent: bool = False) -> Callable[[Handler], Handler]:
    """Register `handler` to run (as a job) for every event called `event_name`.

    `only_if` ({payload key: value}) stages the job only for events whose payload has
    every one of those values. A subscriber that would return at once for other events
    says so here, so they cost no job (a job is a round of the queue, a forked
    work-horse and a commit); the handler keeps its own check too.

    `urgent`: a person waits on this job's effect (a shopper for "paid"), so it goes to
    the front of its queue rather than behind notices and webhooks."""

    def register(handler: Handler) -> Handler:
        path = task_path(handler)
        entries = _subscribers.setdefault(event_name, [])
        key = f"{queue}|{path}"
        if key not in entries:
            entries.append(key)
        if only_if:
            _conditions[f"{event_name}|{key}"] = dict(only_if)
        if urgent:
            _urgent.add(path)
        return handler

    return register


def is_urgent(task: str | None) -> bool:
    """Whether jobs of `task` go to the front of their queue (subscribe's urgent)."""
    return task in _urgent


def subscribers_of(event_name: str) -> list[tuple[str, str]]:
    """(queue, task path) of every handler registered for `event_name`, "*" ones last."""
    keys = _subscribers.get(event_name, []) + _subscribers.get("*", [])
    return [tuple(k.split("|", 1)) for k in keys]  # type: ignore[misc]


def publish(name: str, payload: dict[str, Any]) -> DomainEvent:
    """Record event `name` and stage a job for each subscriber, in the open transaction.

    The caller commits. Payloads are small JSON: ids and the changed state.
    """
    rid = current_request_id()
    event = DomainEvent(id=str(uuid.uuid4()), name=name, payload=payload, request_id=rid)
    db.add(event)
    for queue, path in subscribers_of(name):
        wanted = _conditions.get(f"{name}|{queue}|{path}")
        if wanted and any(payload.get(k) != v for k, v in wanted.items()):
            continue  # the subscriber has nothing to do with this event
        db.add(
            OutboxJob(
                event_id=event.id, task=path, args={}, queue=queue, request_id=rid
            )
        )
    return event


# Where a session keeps the outbox rows written in each of its (nested) transactions
# until they commit (app.jobs.dispatch hands them to the executor then).
PENDING_OUTBOX_KEY = "barid_outbox_new"


class Staged(NamedTuple):
    """What the executor needs to know of an outbox row."""

    id: int
    queue: str
    run_after: datetime | None = None
    urgent: bool = False  # to the front of its queue (subscribe's urgent)


def stage_inserted(session: Session, rows: Iterable[Any]) -> None:
    """Note outbox rows inserted without the ORM (id, queue, run_after, task) as the
    flush hook notes ORM ones: handed to the executor after commit, forgotten on
    rollback of their savepoint or transaction."""
    levels = session.info.setdefault(PENDING_OUTBOX_KEY, {})
    levels.setdefault(session.get_nested_transaction(), {}).update(
        {r.id: Staged(r.id, r.queue, r.run_after, is_urgent(r.task)) for r in rows})


def publish_many(events: list[tuple[str, dict[str, Any]]]) -> None:
    """`publish` for many events at once (a batch of parcel scans): the same rows, the
    events and their subscribers' jobs, written as multi-row INSERTs rather than as
    thousands of ORM objects to flush. Flushes; the staged jobs are handed to the
    executor when the transaction commits, as `publish`'s are."""
    if not events:
        return
    rid = current_request_id()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    for name, payload in events:
        event_id = str(uuid.uuid4())
        rows.append({"id": event_id, "name": name, "payload": payload, "occurred_at": now,
                     "request_id": rid})
        for queue, path in subscribers_of(name):
            wanted = _conditions.get(f"{name}|{queue}|{path}")
            if wanted and any(payload.get(k) != v for k, v in wanted.items()):
                continue
            jobs.append({"event_id": event_id, "task": path, "args": {}, "queue": queue,
                         "request_id": rid, "created_at": now, "run_after": now})
    db.flush()  # what the session holds first, as its own flush order would
    if db.get_bind().dialect.name == "postgresql":
        # INSERT ... SELECT FROM unnest(arrays): a few parameters, where a multi-row
        # VALUES of thousands of rows costs more to build and parse than to run.
        driver: Any = db.connection().connection.driver_connection
        cursor = driver.cursor()
        cursor.execute(
            "INSERT INTO domain_events (id, name, payload, occurred_at, request_id) "
            "SELECT id, name, payload::json, %s, %s FROM unnest(%s::text[], %s::text[], "
            "%s::text[]) AS v(id, name, payload)",
            [now, rid, [r["id"] for r in rows], [r["name"] for r in rows],
             [json.dumps(r["payload"]) for r in rows]])
        if jobs:
            staged = cursor.execute(
                "INSERT INTO outbox_jobs (event_id, task, args, queue, state, attempts, "
                "request_id, created_at, run_after) SELECT event_id, task, '{}'::json, "
                "queue, %s, 0, %s, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[]) "
                "AS v(event_id, task, queue) RETURNING id, queue, run_after, task",
                [str(JobState.PENDING), rid, now, now, [j["event_id"] for j in jobs],
                 [j["task"] for j in jobs], [j["queue"] for j in jobs]]).fetchall()
            stage_inserted(db(), [_Row(*r) for r in staged])
        return
    events_table: Any = DomainEvent.__table__
    db.execute(insert(events_table), rows)
    if jobs:
        table: Any = OutboxJob.__table__
        staged = db.execute(insert(table).returning(
            table.c.id, table.c.queue, table.c.run_after, table.c.task,
            sort_by_parameter_order=True), jobs).all()
        stage_inserted(db(), staged)


class _Row(NamedTuple):
    id: int
    queue: str
    run_after: datetime
    task: str


def enqueue_after_commit(
    func: Callable[..., Any] | str, *, queue: str = "default",
    run_after: datetime | None = None,
    **kwargs: Any,
) -> OutboxJob:
    """Stage `func(**kwargs)` to run as a job once the open transaction commits; `func`
    may be given as its dotted path ("pkg.module:function").

    `func` is the function or its dotted path ("package.module:function"); the path
    lets a service stage a job without importing the module that defines it. Arguments
    must be JSON: ids and values, never objects.
    """
    job = OutboxJob(
        task=func if isinstance(func, str) else task_path(func), args=kwargs, queue=queue,
        request_id=current_request_id(),
        run_after=run_after or utcnow(),
    )
    db.add(job)
    return job
