"""The UPU tracking event codes, read from app/data/upu-events.csv (never retyped here)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from app.config import ROOT

EVENTS_CSV = ROOT / "app" / "data" / "upu-events.csv"

# Karrio's normalized statuses, the set the CSV uses.
STATUSES = (
    "pending", "picked_up", "in_transit", "on_hold", "out_for_delivery", "ready_for_pickup",
    "delivery_failed", "delivered", "return_to_sender", "cancelled", "delivery_delayed",
    "unknown",
)


@dataclass(frozen=True)
class EventCode:
    code: str
    meaning_en: str
    meaning_ar: str
    leg: str  # origin, transit, destination
    status: str
    final: bool
    notes: str

    def meaning(self, locale: str) -> str:
        return self.meaning_ar if locale.startswith("ar") else self.meaning_en


@lru_cache(maxsize=1)
def event_codes() -> dict[str, EventCode]:
    """Every UPU event code in the CSV, keyed by code, in the CSV's order."""
    with EVENTS_CSV.open(encoding="utf-8", newline="") as fh:
        out = {}
        for row in csv.DictReader(fh):
            code = row["code"].strip()
            status = row["normalized_status"].strip()
            if status not in STATUSES:
                raise ValueError(f"{EVENTS_CSV}: unknown status {status!r} for {code}")
            out[code] = EventCode(
                code=code,
                meaning_en=row["meaning_en"].strip(),
                meaning_ar=row["meaning_ar"].strip(),
                leg=row["leg"].strip(),
                status=status,
                final=row["terminal"].strip().lower() == "yes",
                notes=row["notes"].strip(),
            )
        return out


def event_code(code: str) -> EventCode | None:
    return event_codes().get((code or "").strip().upper())
