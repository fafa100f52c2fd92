"""What the database says about the two sites: which role this connection reached, and,
on the primary, whether a standby is synchronous and how far behind it is.

Read-only questions to PostgreSQL's own views (`pg_is_in_recovery`,
`pg_stat_replication`); Barid replicates nothing itself. The database user needs the
`pg_monitor` role to see the standby's positions (without it the lag reads as unknown).
SQLite answers "embedded" and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class ReplicationState:
    role: str  # "primary", "standby" or "embedded"
    synchronous: bool = False  # a standby confirms each commit before it returns
    standbys: int = 0  # standbys streaming from this primary
    lag_bytes: int | None = None  # WAL the furthest standby has yet to replay
    lag_seconds: float | None = None  # how long ago the furthest standby replayed
    synchronous_names: str = ""  # synchronous_standby_names on this primary


_STANDBYS = text("""
    SELECT count(*) FILTER (WHERE state = 'streaming'),
           count(*) FILTER (WHERE sync_state IN ('sync', 'quorum')),
           max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)),
           max(extract(epoch FROM replay_lag)),
           current_setting('synchronous_standby_names')
    FROM pg_stat_replication
""")


def read_state(engine: Engine) -> ReplicationState:
    """Ask the database `engine` reaches for its replication state (its own connection,
    outside any unit of work). Raises what the driver raises when the database is down."""
    if engine.dialect.name != "postgresql":
        return ReplicationState(role="embedded")
    with engine.connect() as conn:
        if conn.execute(text("SELECT pg_is_in_recovery()")).scalar():
            return ReplicationState(role="standby")
        streaming, sync, lag_bytes, lag_seconds, names = conn.execute(_STANDBYS).one()
    return ReplicationState(
        role="primary", synchronous=bool(sync), standbys=int(streaming or 0),
        lag_bytes=int(lag_bytes) if lag_bytes is not None else None,
        lag_seconds=float(lag_seconds) if lag_seconds is not None else None,
        synchronous_names=names or "")
