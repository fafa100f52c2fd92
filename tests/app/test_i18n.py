"""Arabic catalog coverage, Baghdad time, and numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.config import ROOT
from app.i18n import format_number, local_date, local_time, translation_directories

CATALOG = ROOT / "app" / "translations" / "ar" / "LC_MESSAGES" / "messages.po"
# The files whose strings app/translations must carry.
SOURCES = [
    ("app", [("*.py", "python")]),
    ("app/reports", [("*.py", "python")]),
    ("templates", [("base.html", "jinja2"), ("web/**.html", "jinja2"),
                   ("errors/**.html", "jinja2"), ("backoffice/report*.html", "jinja2"),
                   ("backoffice/_report_state.html", "jinja2")]),
]


def _msgids() -> set[str]:
    ids: set[str] = set()
    for folder, method_map in SOURCES:
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / folder, method_map=method_map,
            keywords={"_": None, "gettext": None, "_l": None, "lazy_gettext": None,
                      "ngettext": (1, 2)},
        ):
            ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_arabic_catalog_translates_every_platform_string():
    with Path(CATALOG).open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(_msgids() - translated)
    assert missing == [], f"add these to {CATALOG.relative_to(ROOT)}: {missing}"


def test_translation_directories_include_every_package_catalog():
    dirs = translation_directories().split(";")
    assert str(ROOT / "app" / "translations") in dirs
    for found in (ROOT / "app").glob("*/translations"):
        assert str(found) in dirs


def test_times_are_shown_in_baghdad_in_the_visitors_language(app):
    late_evening_utc = datetime(2026, 3, 5, 21, 30, tzinfo=UTC)  # 00:30 on 6 March there
    with app.test_request_context("/"):
        assert local_date(late_evening_utc) == "6 آذار 2026"
        assert "00:30" in local_time(late_evening_utc, "d MMMM y, HH:mm")
    with app.test_request_context("/"):
        from flask import session

        session["lang"] = "en"
        assert local_date(late_evening_utc) == "6 March 2026"
        assert local_time(late_evening_utc, "d MMMM y, HH:mm") == "6 March 2026, 00:30"
        assert local_date(date(2026, 1, 1)) == "1 January 2026"


def test_a_time_without_a_time_zone_is_refused(app):
    with app.test_request_context("/"), pytest.raises(ValueError):
        local_time(datetime(2026, 3, 5, 21, 30))


def test_numbers_keep_latin_digits_and_grouping_in_both_languages(app):
    with app.test_request_context("/"):
        assert format_number(1250000) == "1,250,000"
        assert format_number(2.5, digits=2) == "2.50"
    with app.test_request_context("/"):
        from flask import session

        session["lang"] = "en"
        assert format_number(1250000) == "1,250,000"


def test_template_filters_are_registered(app):
    with app.test_request_context("/"):
        rendered = app.jinja_env.from_string(
            "{{ t | local_date }}|{{ n | number }}|{{ t | local_time('HH:mm') }}"
        ).render(t=datetime(2026, 3, 5, 21, 30, tzinfo=UTC), n=25000)
    assert rendered == "6 آذار 2026|25,000|00:30"
