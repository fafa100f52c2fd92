"""P8: from a fresh clone to serving, `make run`, with a warm package cache.

Clones this checkout's HEAD (git clone --local: committed work only) into a temporary
folder and times `make run PORT=<free>` there until /readyz answers 200: the virtualenv
is made, the packages installed from pip's cache (warm after the first `make`), the
translations compiled, the SQLite database created and the demo seeded. Then stops it
and removes the clone. Ends with `BENCH <json>` (--json).

    .venv/bin/python bench/fresh_clone.py [--timeout 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import emit, free_port, load, row  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="barid-bench-clone-"))
    clone = tmp / "barid"
    before = load()
    started = time.monotonic()
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(clone)], check=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BARID_", "REDIS_", "DATABASE_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if "/.venv/" not in p)
    log = (tmp / "make-run.log").open("w")
    proc = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    ready = None
    try:
        while time.monotonic() - started < args.timeout and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz",
                                            timeout=1) as res:
                    if res.status == 200:
                        ready = time.monotonic() - started
                        break
            except OSError:
                time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    if ready is None:
        print((tmp / "make-run.log").read_text()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit("make run did not serve within the timeout")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"  fresh clone to /readyz 200: {ready:.1f} s")
    emit([row("P8", "P8 clone -> serving (s)", ready, "goal <=", 60.0,
              conditions="git clone --local + make run (venv, pip from a warm cache, "
              "translations, SQLite schema and demo data)", load=before, runs=1,
              ok=ready <= 60)], json_line=args.json)


if __name__ == "__main__":
    main()
