"""A Redis server and a PostgreSQL cluster of a test's own, on spare ports.

Outage tests kill and restart these, never the shared services (5432, 6379) that other
tests and other people use. Both are plain Debian binaries (`redis-server`, and
PostgreSQL's `initdb`/`pg_ctl`), started with no persistence and trust authentication
on 127.0.0.1 only. The fixtures `throwaway_redis` and `throwaway_pg` (tests/conftest.py)
hand them out and stop them at the end; bench/outage.py uses the classes directly.

As root (the CI container), PostgreSQL's tools run as the `postgres` user, which owns
the cluster's directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up within {timeout}s")


class RedisServer:
    """`redis-server` on a spare port: start(), kill() (SIGKILL, as a crash), restart."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 20) -> RedisServer:
        import redis

        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            _wait_for(client.ping, timeout, f"redis-server on {self.port}")
        finally:
            client.close()
        return self

    def kill(self) -> None:
        """Stop the server at once, as a crash would (SIGKILL); its data is gone."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(10)
            self.process = None

    stop = kill

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} (Debian package postgresql)")
    return found[-1]


class PostgresCluster:
    """A PostgreSQL cluster in a temporary directory on a spare port: trust auth,
    no fsync, unix socket in its own directory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = Path(tempfile.mkdtemp(prefix="barid-pg-"))
        self.data = self.base / "data"
        self.logfile = self.base / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> PostgresCluster:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        return self

    def _ctl(self, action: str, *extra: str, timeout: float = 60) -> None:
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
                  "-o", options, "-w", "-t", str(int(timeout)), action, *extra,
                  timeout=timeout + 10)

    def start(self) -> PostgresCluster:
        if not self.data.exists():
            self.init()
        self._ctl("start")
        return self

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m fast`: every client connection is cut."""
        self._ctl("restart", "-m", mode)

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._ctl("stop", "-m", mode)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
