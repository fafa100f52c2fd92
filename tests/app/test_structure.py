"""The shape of the house, checked on the source: who commits, which way imports run.

These read the code rather than run it, so a new `commit()` in a service, an import
loop hidden inside a function, or a domain reaching up a layer fails here with the file
and line to look at.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app.config import ROOT

PACKAGES = ("app", "payments", "tracking", "shop")

# Which packages each may import (ARCHITECTURE.md: shop -> tracking -> payments -> app).
MAY_IMPORT = {
    "app": {"app"},
    "payments": {"app", "payments"},
    "tracking": {"app", "payments", "tracking"},
    "shop": {"app", "payments", "tracking", "shop"},
}

# Function-local imports of project modules that are deliberate, with the reason. Each
# entry is (module, imported module).
LAZY_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    # create_app imports each domain by name from DOMAINS: app may not import a domain
    # at module level (the layering rule), so the platform loads them when it is built.
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> list[str]:
    """The project modules an import statement loads (its nearest existing module)."""
    targets: list[str] = []
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin
                   for a in node.names]
    resolved = []
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target:
            resolved.append(target)
    return resolved


def _imports() -> list[tuple[str, str, int, bool]]:
    """(importer, imported, line, at module level) for every project import."""
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        # Imports under `if TYPE_CHECKING:` at module level count as module level.
        for n in tree.body:
            if isinstance(n, ast.If):
                top |= {id(c) for c in ast.walk(n)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            for target in _resolve(name, node, path.name == "__init__.py"):
                if target != name and not name.startswith(target + "."):
                    found.append((name, target, node.lineno, id(node) in top))
    return found


IMPORTS = _imports()


def test_nothing_commits_outside_the_unit_of_work():
    """Only app.database's unit of work commits; services and views flush."""
    offenders = []
    for name, path in MODULES.items():
        if name == "app.database":
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\.commit\(\)", line):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == []


def test_no_function_local_imports_of_project_modules():
    """A function-local import hides an import loop; only the listed ones are allowed."""
    local = [f"{MODULES[a].relative_to(ROOT)}:{line} imports {b}"
             for a, b, line, top in IMPORTS
             if not top and (a, b) not in LAZY_IMPORTS_ALLOWED]
    assert local == []


def test_the_import_graph_has_no_cycles():
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for a, b, _line, _top in IMPORTS:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_dependencies_run_one_way():
    """app imports no domain; payments neither tracking nor shop; tracking not shop."""
    wrong = [f"{MODULES[a].relative_to(ROOT)}:{line} imports {b}"
             for a, b, line, _top in IMPORTS
             if b.split(".")[0] not in MAY_IMPORT[a.split(".")[0]]]
    assert wrong == []


def test_settings_are_not_read_from_the_environment_at_call_time():
    """Settings are declared once (app.settings) and read from app.config."""
    allowed = {"app.settings", "app.config"}
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for name, path in MODULES.items() if name not in allowed
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if "os.environ" in line or "os.getenv" in line]
    assert offenders == []


def test_payment_methods_are_told_apart_only_by_their_providers():
    """Post card, Stripe and cash differ inside payments/providers.py; elsewhere a
    payment is asked through the provider protocol, not `if payment.method == ...`."""
    compare = re.compile(r"\.method\s*(==|!=|in\b|not in\b)\s*.*PaymentMethod|"
                         r"PaymentMethod\.\w+\s*(==|!=)|\.method\s*(==|!=)\s*PaymentMethod")
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for name, path in MODULES.items() if name != "payments.providers"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if compare.search(line)]
    assert offenders == []
