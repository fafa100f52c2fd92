"""`barid run`: the embedded platform, and its refusal to start on a busy port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from app.config import ROOT

BARID = str(Path(sys.executable).parent / "barid")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BARID_", "REDIS_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'barid.sqlite3'}"
    return env


def test_run_on_a_busy_port_says_so_and_touches_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run(
            [BARID, "run", "--port", str(port)], env=_env(tmp_path), cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode != 0
    assert f"port {port} is already in use on 127.0.0.1" in done.stderr
    assert "Barid is running" not in done.stdout
    # Nothing else happened: no database was created, nothing was seeded.
    assert not (tmp_path / "barid.sqlite3").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_migrates_seeds_and_serves_the_arabic_home_page(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [BARID, "run", "--port", str(port)], env=_env(tmp_path), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200, proc.poll() is not None and proc.communicate()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            page = r.read().decode()
        assert '<html lang="ar" dir="rtl">' in page
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"Barid is running on http://127.0.0.1:{port}/" in out
    assert "demo data loaded" in out
    assert (tmp_path / "barid.sqlite3").exists()
