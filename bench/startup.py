"""How long `barid run` takes to become ready, and how much memory and disk it needs.

For a given checkout (default: this one) it starts `<checkout>/.venv/bin/barid run` on a
free port against a fresh SQLite file, and measures:

- seconds from starting the command to the first 200 from /readyz (schema creation or
  migration and demo seeding included, as `make run` does on a fresh clone);
- the resident memory (VmRSS) of the web process right after it is ready, and after
  it has served a few pages;
- the size of the checkout's virtualenv;
- with --worker and a reachable Redis: the resident memory of one `barid worker`.

It prints the figures with the conditions they were taken under. It is a measurement,
not a test: nothing here fails a build.

    .venv/bin/python bench/startup.py [--checkout DIR] [--runs 3] [--worker]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident memory of one process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def base_env(db_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BARID_", "REDIS_", "DATABASE_"))}
    env["DATABASE_URL"] = f"sqlite:///{db_file}"
    return env


def one_run(checkout: Path, workdir: Path, timeout: float) -> dict:
    barid = checkout / ".venv" / "bin" / "barid"
    port = free_port()
    db_file = workdir / f"barid-{port}.sqlite3"
    url = f"http://127.0.0.1:{port}"
    log = (workdir / f"run-{port}.log").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen([str(barid), "run", "--port", str(port)], cwd=checkout,
                            env=base_env(db_file), stdout=log, stderr=subprocess.STDOUT)
    try:
        ready_after = None
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"barid run exited with {proc.returncode}; see {log.name}")
            try:
                if get(url + "/readyz", timeout=1.0) == 200:
                    ready_after = time.perf_counter() - started
                    break
            except OSError:
                pass
            time.sleep(0.05)
        if ready_after is None:
            raise RuntimeError(f"/readyz not 200 within {timeout} s; see {log.name}")
        rss_ready = rss_kib(proc.pid)
        for path in ("/", "/lang/en?next=/", "/", "/no-such-page", "/shop/", "/login",
                     "/metrics"):
            get(url + path, timeout=10)
        time.sleep(0.5)
        rss_served = rss_kib(proc.pid)
        helpers = {pid: rss_kib(pid) for pid in children(proc.pid)}
        return {"ready_s": ready_after, "rss_ready_kib": rss_ready,
                "rss_served_kib": rss_served, "children_kib": helpers, "db_file": db_file}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def worker_rss(checkout: Path, db_file: Path, redis_url: str, settle: float) -> int | None:
    """RSS of one `barid worker` a few seconds after it started (None without Redis)."""
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except Exception:
        return None
    env = base_env(db_file)
    env["REDIS_URL"] = redis_url
    proc = subprocess.Popen([str(checkout / ".venv" / "bin" / "barid"), "worker"], cwd=checkout,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)
        if proc.poll() is not None:
            raise RuntimeError(f"barid worker exited with {proc.returncode}")
        return rss_kib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", type=Path, default=here)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--worker", action="store_true", help="also measure one barid worker")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = ap.parse_args()
    checkout = args.checkout.resolve()
    if not (checkout / ".venv" / "bin" / "barid").exists():
        print(f"{checkout}/.venv/bin/barid is missing: run `make install` there first",
              file=sys.stderr)
        return 2

    results = []
    with tempfile.TemporaryDirectory(prefix="barid-bench-") as tmp:
        for _ in range(args.runs):
            results.append(one_run(checkout, Path(tmp), args.timeout))
        worker = (worker_rss(checkout, results[-1]["db_file"], args.redis_url, 3.0)
                  if args.worker else None)

    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    ready = [r["ready_s"] for r in results]
    print("Barid start-up, from `barid run` to the first 200 from /readyz")
    print(f"  conditions: checkout {checkout} at {commit}; fresh SQLite file per run "
          "(schema created, demo data seeded); no Redis (inline jobs); "
          f"{platform.python_implementation()} {platform.python_version()} on "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"  ready after:  {', '.join(f'{s:.2f}' for s in ready)} s "
          f"(median {statistics.median(ready):.2f} s over {len(ready)} runs)")
    last = results[-1]
    print(f"  web process RSS when ready:           {last['rss_ready_kib'] / 1024:.1f} MiB")
    print(f"  web process RSS after serving pages:  {last['rss_served_kib'] / 1024:.1f} MiB")
    for pid, kib in last["children_kib"].items():
        print(f"  helper process {pid} started by run:  {kib / 1024:.1f} MiB")
    if args.worker:
        shown = f"{worker / 1024:.1f} MiB" if worker else "not measured (Redis unreachable)"
        print(f"  one `barid worker` RSS after 3 s:     {shown}")
    venv = checkout / ".venv"
    print(f"  virtualenv size ({venv}): {tree_size(venv) / 1024 / 1024:.0f} MiB "
          "(dev dependencies included if installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
