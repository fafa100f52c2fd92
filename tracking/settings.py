"""Tracking's settings and their defaults (overridable through app.config or the environment).

Iraqi customs figures are weak-sourced (see reference/README.md), so they are settings,
not constants: an administrator changes them without a release.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, current_app

DEFAULTS: dict[str, Any] = {
    # IQD per SDR, used only to choose between CN22 and CN23.
    "CUSTOMS_SDR_RATE_IQD": "1950",
    "CUSTOMS_CN22_LIMIT_SDR": 300,
    "CUSTOMS_INSPECTION_FEE_IQD": 5000,
    "CUSTOMS_STAMP_FEE_IQD": 10000,
    # Declared values above this (IQD) always go to an officer.
    "CUSTOMS_AUTO_RELEASE_LIMIT_IQD": 2_000_000,
    # IQD per one unit of a foreign currency, for valuing declarations.
    "CUSTOMS_EXCHANGE_RATES": {"USD": "1310", "EUR": "1420", "GBP": "1660", "TRY": "40",
                               "AED": "357", "CNY": "181", "SAR": "349", "JOD": "1848",
                               "KWD": "4260", "IQD": "1"},
    "DELIVERY_MAX_ATTEMPTS": 3,
    "PICKUP_HOLD_DAYS": 14,
    # How long a parcel may sit with no event, by status, before the sweep flags it (hours).
    "STALE_AFTER_HOURS": {"picked_up": 72, "in_transit": 120, "on_hold": 240,
                          "out_for_delivery": 24, "delivery_failed": 72,
                          "ready_for_pickup": 24 * 15, "pending": 24 * 30},
    "TRACKING_LOOKUPS_PER_MINUTE": 60,
    "BULK_MAX_ROWS": 20000,
    # Partner posts and handheld fleets that may post events: {"name": "key"}.
    "TRACKING_PARTNER_KEYS": {},
    "MAX_PARCEL_WEIGHT_GRAMS": 30000,
}


def setting(name: str) -> Any:
    return current_app.config.get(name, DEFAULTS[name])


def init_app(app: Flask) -> None:
    for name, default in DEFAULTS.items():
        raw = os.environ.get(name)
        if raw is not None and name not in app.config:
            app.config[name] = json.loads(raw) if isinstance(default, dict | int) else raw
        app.config.setdefault(name, default)
