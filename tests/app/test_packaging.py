"""`pip install .` (not editable) gives a working Barid: templates, static files, compiled
translations, migrations and data files travel in the wheel.

Offline and quick: the wheel is built from a copy of the sources without any compiled
.mo file (so the build must compile them), without build isolation, and installed with
--no-deps into a fresh virtualenv whose dependencies come from this suite's own
site-packages through a .pth file. Then everything runs from a folder outside the
checkout, so nothing can be read from the sources by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from babel.messages.pofile import read_po

from app.config import ROOT

PROBE = """
import app, sys
from pathlib import Path
from app import create_app
from app.migrate import upgrade_database
from sqlalchemy import inspect

here = Path(app.__file__).resolve().parent
assert str(here).startswith(sys.prefix), here  # the installed package, not a checkout
flask_app = create_app({"DATABASE_URL": sys.argv[1]})
with flask_app.app_context():
    upgrade_database()  # already at head: a second run finds nothing to do
    from app.database import get_engine
    assert "parcels" in inspect(get_engine()).get_table_names()
client = flask_app.test_client()
home = client.get("/")
assert home.status_code == 200, home.status_code
page = home.get_data(as_text=True)
assert 'dir="rtl"' in page
assert sys.argv[2] in page  # the title in Arabic, from the compiled catalog
assert "Shop, pay and track with Iraqi Post" not in page
track = client.get("/track/CP000000014IQ")
assert track.status_code == 404, track.status_code  # a template of tracking's, rendered
css = client.get("/static/barid.css")
assert css.status_code == 200 and css.data
assert client.get("/shop/static/shop.css").status_code == 200
from app.geo import GOVERNORATES_CSV
from tracking.services.customs import SAMPLE_TARIFF_CSV
assert GOVERNORATES_CSV.is_file() and SAMPLE_TARIFF_CSV.is_file()
print("ok", here)
"""


def _sources(into: Path) -> Path:
    """The files a source distribution has: no compiled catalogs, caches or builds."""
    return Path(shutil.copytree(ROOT, into, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "*.mo",
        "instance", "tests", "bench", ".*_cache")))


def test_the_wheel_installs_a_working_barid(tmp_path):
    src = _sources(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "--no-index", "-q", "-w", str(wheels)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("barid-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print("
                                "sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies: this suite's installed packages (after the venv's own, where the
    # wheel goes). A path in a .pth file is appended without running its .pth files, so
    # the checkout's editable install does not come along.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "barid-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=300)

    run = tmp_path / "elsewhere"
    run.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BARID", "PYTHON", "DATABASE_URL", "REDIS_URL"))}
    db_url = f"sqlite:///{run / 'barid.sqlite3'}"

    def barid(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "barid"), *args], cwd=run, text=True,
                              env={**env, "DATABASE_URL": db_url}, capture_output=True,
                              timeout=120)

    checked = barid("check")
    assert checked.returncode == 0, checked.stderr
    upgraded = barid("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "newest migration" in upgraded.stdout

    with (ROOT / "app/translations/ar/LC_MESSAGES/messages.po").open("rb") as po:
        arabic = read_po(po, locale="ar").get("Shop, pay and track with Iraqi Post").string
    probe = subprocess.run([str(python), "-c", PROBE, db_url, arabic], cwd=run, env=env, text=True,
                           capture_output=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.startswith("ok ") and str(venv) in probe.stdout
    # Nothing was written beside the installed package or into the sources.
    assert not (site / "instance").exists()
