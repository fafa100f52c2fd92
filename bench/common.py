"""What every benchmark shares: one row format for `make bench`'s table, load average,
free ports, medians.

A benchmark ends with one line `BENCH {"rows": [...]}` (when run with --json); each row
is a dict made by `row()`: the goal (P1..P9), what was measured and its unit, Barid's
figure, the baseline's name and figure, their ratio (against a goal, "goal >=" or
"goal <=", a ratio of 1 or more meets it), p50/p99 in ms where they apply,
the conditions, and the 1-minute load average before the run. bench/run.py prints them.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
from collections.abc import Callable
from typing import Any


def load() -> float:
    """The 1-minute load average now (say it with every figure: the machine is shared)."""
    return os.getloadavg()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def row(goal: str, work: str, barid: float, baseline_name: str, baseline: float | None,
        ratio: float | None = None, *, p50: float | None = None, p99: float | None = None,
        conditions: str = "", load: float | None = None, runs: int | None = None,
        ok: bool | None = None) -> dict[str, Any]:
    """One line of the table (see the module's docstring)."""
    if ratio is None and baseline and barid:
        # Against a goal, a ratio of 1 or more meets it, whichever way the goal points.
        ratio = baseline / barid if baseline_name.startswith("goal <=") else barid / baseline
    return {"goal": goal, "work": work, "barid": barid, "baseline_name": baseline_name,
            "baseline": baseline, "ratio": ratio, "p50": p50, "p99": p99,
            "conditions": conditions, "load": load, "runs": runs, "ok": ok}


def emit(rows: list[dict[str, Any]], *, json_line: bool = True, **extra: Any) -> None:
    """Print the rows readably, and as the `BENCH <json>` line bench/run.py reads."""
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "-"
        print(f"  {r['work']}: {r['barid']:.1f} vs {r['baseline_name']} "
              f"{r['baseline'] if r['baseline'] is not None else '-'}; ratio {ratio}; "
              f"{r['conditions']}")
    if json_line:
        print("BENCH " + json.dumps({"rows": rows, **extra}))


def median_of(runs: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Medians of `runs` calls of fn(), each result with the load average before it."""
    results = []
    for _ in range(runs):
        before = load()
        r = fn()
        r.setdefault("load", before)
        results.append(r)
    return {k: statistics.median(r[k] for r in results)
            for k in results[0] if isinstance(results[0][k], (int, float))}
