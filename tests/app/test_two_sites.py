"""The two sites on PostgreSQL's own replication, driven by the operator's scripts.

deploy/pg-site.sh sets up Baghdad (primary) and Basra (synchronous standby) on spare
ports; the tests check what an operator and Barid see: a commit on both sites, the
replication state Barid reports, a promotion that fences the old primary, a rewind that
brings it back as the standby, and one URL naming both hosts that always reaches the
one that takes writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from app.database import engine_url
from app.replication import read_state
from tests.throwaway import free_port

ROOT = Path(__file__).resolve().parents[2]
PG_SITE = str(ROOT / "deploy" / "pg-site.sh")


def _site(*args: str) -> None:
    subprocess.run([PG_SITE, *args], check=True, timeout=120, capture_output=True)


def _sql(port: int, statement: str, dbname: str = "postgres"):
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname,
                         autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else None


@pytest.fixture
def sites():
    """Baghdad primary and Basra standby, stopped and removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="barid-sites-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    ports = {"baghdad": free_port(), "basra": free_port()}
    dirs = {name: str(base / name) for name in ports}
    try:
        _site("primary", "baghdad", str(ports["baghdad"]), dirs["baghdad"], "basra")
        _site("standby", "basra", str(ports["basra"]), dirs["basra"], str(ports["baghdad"]))
        yield ports, dirs
    finally:
        for d in dirs.values():
            subprocess.run([PG_SITE, "stop", d, "immediate"], timeout=60, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_a_commit_is_on_both_sites_and_barid_sees_a_synchronous_standby(sites):
    ports, _dirs = sites
    _sql(ports["baghdad"], "CREATE TABLE payments (id int)")
    _sql(ports["baghdad"], "INSERT INTO payments VALUES (1)")
    # Synchronous commit: when the INSERT returned, Basra had it (replayed a moment later).
    for _ in range(50):
        if _sql(ports["basra"], "SELECT count(*) FROM payments")[0][0] == 1:
            break
        time.sleep(0.1)
    assert _sql(ports["basra"], "SELECT count(*) FROM payments") == [(1,)]

    primary = sa.create_engine(engine_url(f"postgresql://postgres@127.0.0.1:{ports['baghdad']}/postgres"))
    standby = sa.create_engine(engine_url(f"postgresql://postgres@127.0.0.1:{ports['basra']}/postgres"))
    state = read_state(primary)
    assert (state.role, state.synchronous, state.standbys) == ("primary", True, 1)
    assert state.lag_bytes is not None and state.synchronous_names == "basra"
    assert read_state(standby).role == "standby"
    primary.dispose()
    standby.dispose()


def test_basra_down_shows_no_synchronous_standby(sites):
    ports, dirs = sites
    subprocess.run([PG_SITE, "stop", dirs["basra"], "immediate"], check=True, timeout=60)
    engine = sa.create_engine(engine_url(f"postgresql://postgres@127.0.0.1:{ports['baghdad']}/postgres"))
    state = read_state(engine)
    # The alarm: a commit would now wait; nothing confirms it on a second site.
    assert (state.role, state.synchronous, state.standbys) == ("primary", False, 0)
    engine.dispose()


def test_failover_fences_the_old_primary_and_one_url_follows_the_writable_site(sites):
    ports, dirs = sites
    url = engine_url(f"postgresql://postgres@127.0.0.1:{ports['baghdad']},"
                     f"127.0.0.1:{ports['basra']}/postgres?target_session_attrs=read-write"
                     "&connect_timeout=3")
    engine = sa.create_engine(url, pool_pre_ping=True)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE payments (id int)"))
        conn.execute(sa.text("INSERT INTO payments VALUES (1)"))
        assert conn.execute(sa.text("SELECT inet_server_port()")).scalar() == ports["baghdad"]

    pid = int(Path(dirs["baghdad"], "postmaster.pid").read_text().split()[0])
    subprocess.run(["kill", "-9", str(pid)], check=True)
    _site("promote", "basra", str(ports["basra"]), dirs["basra"], dirs["baghdad"])

    # The same URL now reaches Basra, with the acknowledged row, and writes there.
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT inet_server_port()")).scalar() == ports["basra"]
        conn.execute(sa.text("INSERT INTO payments VALUES (2)"))
    assert read_state(engine).role == "primary"

    # Fencing: the old primary, started again by anyone, comes up read-only...
    pg_ctl = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1])
    start = [str(pg_ctl), "-D", dirs["baghdad"], "-l", dirs["baghdad"] + ".fenced.log",
             "-w", "start"]
    if os.geteuid() == 0:
        start = ["runuser", "-u", "postgres", "--", *start]
    subprocess.run(start, check=True, timeout=60, capture_output=True)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _sql(ports["baghdad"], "INSERT INTO payments VALUES (99)")
    # ...and the URL still chooses Basra, the one that takes writes.
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT inet_server_port()")).scalar() == ports["basra"]

    # Rejoin: Baghdad rewinds onto Basra's timeline and streams from it, synchronously.
    _site("rejoin", "baghdad", str(ports["baghdad"]), dirs["baghdad"], "basra",
          str(ports["basra"]))
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO payments VALUES (3)"))
    for _ in range(50):
        if _sql(ports["baghdad"], "SELECT count(*) FROM payments")[0][0] == 3:
            break
        time.sleep(0.1)
    rows = _sql(ports["baghdad"], "SELECT array_agg(id ORDER BY id) FROM payments")
    assert rows == [([1, 2, 3],)]
    state = read_state(engine)
    assert (state.role, state.synchronous, state.synchronous_names) == ("primary", True, "baghdad")
    engine.dispose()
