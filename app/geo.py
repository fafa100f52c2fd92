"""Iraq's governorates, read from app/data/governorates.csv (the one list every domain uses)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from app.config import ROOT

GOVERNORATES_CSV = ROOT / "app" / "data" / "governorates.csv"

# Halabja became a governorate after ISO 3166-2:IQ was last revised, so the CSV leaves its
# code empty; the platform stores it under this code (see PostOffice.governorate).
HALABJA_CODE = "IQ-HA"


@dataclass(frozen=True)
class Governorate:
    code: str
    name_en: str
    name_ar: str
    postal_prefix_hint: str | None

    def name(self, locale: str) -> str:
        return self.name_ar if locale == "ar" else self.name_en


@lru_cache(maxsize=1)
def _load() -> tuple[Governorate, ...]:
    with GOVERNORATES_CSV.open(encoding="utf-8", newline="") as fh:
        return tuple(
            Governorate(
                code=(row["iso_code"] or "").strip() or HALABJA_CODE,
                name_en=row["name_en"].strip(),
                name_ar=row["name_ar"].strip(),
                postal_prefix_hint=(row["postal_prefix_hint"] or "").strip() or None,
            )
            for row in csv.DictReader(fh)
        )


def governorates() -> list[Governorate]:
    """All governorates in the CSV's order (Baghdad first)."""
    return list(_load())


def governorate(code: str) -> Governorate | None:
    """The governorate with `code` (e.g. "IQ-BG"), or None."""
    return next((g for g in _load() if g.code == code), None)


def governorate_by_name(name_en: str) -> Governorate:
    """The governorate whose English name is `name_en`; KeyError if there is none."""
    for g in _load():
        if g.name_en.lower() == name_en.lower():
            return g
    raise KeyError(name_en)
