"""The wheel carries what Barid reads at run time besides its modules.

Everything else about the package is in pyproject.toml. This adds one build step, so
that a plain `pip install .` (not editable) gives a working Barid:

- compiles every package's translations (translations/*/LC_MESSAGES/messages.po) into
  the .mo files Flask-Babel reads, with Babel (a build requirement as well as a runtime
  one), so no compiled file is ever committed or forgotten;
- copies the top-level templates/ and migrations/ into the app package
  (app/templates, app/migrations), where app.config looks for them when Barid runs from
  an installed package rather than a checkout.

Editable installs (`pip install -e .`, as `make` does) read the checkout itself: there
`make translations` compiles the catalogs in place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGES = ("app", "payments", "tracking", "shop")
# Beside the packages in the checkout, inside `app` in the wheel.
SHIPPED_INTO_APP = ("templates", "migrations")


def compile_catalogs(build_lib: Path) -> list[Path]:
    """Every messages.po of the packages compiled to messages.mo under `build_lib`."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for package in PACKAGES:
        for po in sorted((HERE / package).glob("**/translations/*/LC_MESSAGES/*.po")):
            mo = build_lib / po.relative_to(HERE).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            locale = po.parent.parent.name
            with po.open("rb") as source:
                catalog = read_po(source, locale=locale)
            # As `pybabel compile -f` (make translations): fuzzy entries are used too.
            with mo.open("wb") as target:
                write_mo(target, catalog, use_fuzzy=True)
            written.append(mo)
    return written


class BuildWithFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        build_lib = Path(self.build_lib)
        compile_catalogs(build_lib)
        for name in SHIPPED_INTO_APP:
            target = build_lib / "app" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(HERE / name, target,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithFiles})
