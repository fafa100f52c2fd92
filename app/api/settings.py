"""The merchant API platform's settings, declared once (see app.settings)."""

from __future__ import annotations

from app.settings import Setting

SETTINGS = (
    Setting("API_RATE_LIMIT", parse=int, default=600, doc="requests per key per window"),
    Setting("API_RATE_WINDOW", parse=int, default=60, doc="seconds"),
    Setting("API_MAX_BODY_BYTES", parse=int, default=256 * 1024,
            doc="largest JSON body accepted"),
    Setting("API_IDEMPOTENCY_TTL", parse=int, default=86400,
            doc="seconds an Idempotency-Key answer is kept"),
    Setting("API_KEY_ROTATION_GRACE", parse=int, default=86400,
            doc="seconds a rotated key keeps working"),
)
