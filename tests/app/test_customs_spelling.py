"""Customs is written one way in Arabic everywhere the shopper or a clerk reads it: the
Iraqi الكمارك / الكمركية, never the ج spelling (الجمارك, الجمركية, جمركي...)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Any form built on the ج root: جمرك, جمارك, with or without ال and endings.
OTHER_SPELLING = re.compile(r"جم(?:ر|ار)ك")


def _texts() -> list[Path]:
    found = [*ROOT.glob("**/translations/ar/LC_MESSAGES/*.po"), *ROOT.glob("templates/**/*.html"),
             *ROOT.glob("*/templates/**/*.html")]
    return [p for p in found if ".venv" not in p.parts]


def test_every_po_file_and_template_spells_customs_the_iraqi_way():
    files = _texts()
    assert any(p.suffix == ".po" for p in files) and any(p.suffix == ".html" for p in files)
    wrong = {str(p.relative_to(ROOT)): OTHER_SPELLING.findall(p.read_text(encoding="utf-8"))
             for p in files}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_pattern_catches_the_other_spellings():
    for word in ("الجمارك", "الجمركية", "جمركي", "الرسوم الجمركية"):
        assert OTHER_SPELLING.search(word), word
    for word in ("الكمارك", "الكمركية", "كمركي", "جمع", "جميل"):
        assert not OTHER_SPELLING.search(word), word
