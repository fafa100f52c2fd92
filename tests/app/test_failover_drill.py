"""The two-site failover drill, as `make failover-drill` runs it, inside the suite.

deploy/drill.sh starts its own PostgreSQL pair and Redis set on spare ports, runs
gunicorn and two `barid worker` on them, loads them from eight HTTP clients, kills the
Baghdad primary and promotes Basra, stops the standby under load, kills the Redis
primary, then checks every acknowledged payment and top-up. What must hold: nothing
acknowledged is lost, the ledger verifies, the outbox drains, and the old primary
refuses writes after the promotion. About three minutes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.failover_drill


def _free_run_of_ports(count: int = 9) -> int:
    """The first of `count` consecutive ports nobody listens on."""
    for base in range(41000, 60000, 97):
        free = True
        for port in range(base + 1, base + count + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    free = False
                    break
        if free:
            return base
    raise RuntimeError("no run of free ports")


def test_no_acknowledged_payment_is_lost_across_both_failovers():
    env = {**os.environ, "DRILL_PORT_BASE": str(_free_run_of_ports()),
           "DRILL_SECONDS": "8", "BIN": str(ROOT / ".venv" / "bin")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    done = subprocess.run([str(ROOT / "deploy" / "drill.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    assert "acknowledged but lost: 0" in out
    assert "ledger problems: 0" in out
    assert re.search(r"outbox rows still pending after \d+ s: 0", out)
    # Fencing: the old primary, started again after the promotion, took no write.
    assert "cannot execute CREATE TABLE in a read-only transaction" in out
    # While the standby was down, money writes waited: none was acknowledged.
    assert "acknowledged while the standby was down: 0" in out
    acknowledged = int(re.search(r"acknowledged operations: (\d+)", out).group(1))
    assert acknowledged >= 40, out[-3000:]
