"""deploy/gunicorn.conf.py starts Barid: the app preloaded in the master, each worker with
database connections of its own after the fork."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests

from app.config import ROOT


def _spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_serves_with_the_shipped_config(tmp_path):
    port = _spare_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BARID")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/g.sqlite3", PYTHONPATH=str(ROOT),
               MAIL_BACKEND="memory")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"),
         "--workers", "2", "--bind", f"127.0.0.1:{port}", "app.wsgi:app"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                res = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        # Both workers answer from their own connections to the database.
        codes = {requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code
                 for _ in range(10)}
        assert res.status_code == 200 and codes == {200}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # graceful stop of the master and its workers
        _, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "Using worker: gthread" in err
