"""Tracking's settings, declared once (see app.settings); code reads `current_app.config`.

Iraqi customs figures are weak-sourced (see reference/README.md), so they are settings,
not constants: an administrator changes them without a release.
"""

from __future__ import annotations

from flask import Flask

from app.settings import Setting, load_settings, parse_json

SETTINGS: tuple[Setting, ...] = (
    # IQD per SDR, used only to choose between CN22 and CN23 (a decimal string).
    Setting("CUSTOMS_SDR_RATE_IQD", default="1950", doc="IQD per SDR"),
    Setting("CUSTOMS_CN22_LIMIT_SDR", parse=int, default=300,
            doc="declared value (SDR) up to which a CN22 is enough"),
    Setting("CUSTOMS_INSPECTION_FEE_IQD", parse=int, default=5000, doc="IQD"),
    Setting("CUSTOMS_STAMP_FEE_IQD", parse=int, default=10000, doc="IQD"),
    Setting("CUSTOMS_AUTO_RELEASE_LIMIT_IQD", parse=int, default=2_000_000,
            doc="declared values above this (IQD) always go to an officer"),
    # Dict defaults are made afresh for each app, so changing one app's never leaks.
    Setting("DELIVERY_MAX_ATTEMPTS", parse=int, default=3,
            doc="failed delivery attempts before a parcel goes back to its sender"),
    Setting("SCAN_REPEAT_WINDOW_SECONDS", parse=int, default=600,
            doc="the same event at the same office on the same parcel within this many "
                "seconds is a repeated scan and changes nothing; 0 turns the rule off"),
    Setting("PICKUP_HOLD_DAYS", parse=int, default=14,
            doc="days a parcel waits for pickup before it goes back"),
    Setting("STALE_AFTER_HOURS", parse=parse_json,
            computed=lambda _cfg: {"picked_up": 72, "in_transit": 120, "on_hold": 240,
                                   "out_for_delivery": 24, "delivery_failed": 72,
                                   "ready_for_pickup": 24 * 15, "pending": 24 * 30},
            doc="JSON: hours a parcel may sit with no event, by status, before the "
                "sweep flags it"),
    Setting("TRACKING_LOOKUPS_PER_MINUTE", parse=int, default=60,
            doc="public tracking lookups per client and minute; 0 turns the limit off"),
    Setting("TRACKING_CACHE_SECONDS", parse=int, default=10,
            doc="seconds a client or cache may reuse a public tracking answer (JSON) "
                "before asking again; the ETag then answers 304 until a new event"),
    Setting("BULK_MAX_ROWS", parse=int, default=20000,
            doc="rows accepted in one uploaded or posted event batch"),
    # Partner feeds post thousands of events at once: more than the API's usual body.
    Setting("TRACKING_EVENTS_MAX_BODY_BYTES", parse=int, default=2 * 1024 * 1024,
            doc="largest body of POST /api/v1/tracking-events, in bytes"),
    Setting("MAX_PARCEL_WEIGHT_GRAMS", parse=int, default=30000, doc="grams"),
)


def init_app(app: Flask) -> None:
    """Load tracking's settings into `app.config`."""
    load_settings(app, "tracking", SETTINGS)
