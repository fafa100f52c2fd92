"""The outbound webhooks' settings, declared once (see app.settings)."""

from __future__ import annotations

from typing import Any

from app.settings import Setting, parse_bool, parse_floats

# Seconds before each attempt (the Standard Webhooks schedule): immediately, 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
DEFAULT_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


def _not_production(config: dict[str, Any]) -> bool:
    return config.get("BARID_ENV") != "production"


SETTINGS = (
    Setting("WEBHOOKS_ALLOW_LOOPBACK", parse=parse_bool, computed=_not_production,
            doc="deliver to 127.0.0.1 and other private addresses (never in production)"),
    Setting("WEBHOOK_TIMEOUT", parse=float, default=10.0, doc="seconds per attempt"),
    Setting("WEBHOOK_DISABLE_AFTER", parse=int, default=5 * 86400,
            doc="seconds of failures before an endpoint is disabled"),
    Setting("WEBHOOK_SECRET_OVERLAP", parse=int, default=86400,
            doc="seconds the previous secret still signs after a rotation"),
    Setting("WEBHOOK_JITTER", parse=float, default=0.1,
            doc="fraction by which retry delays vary"),
    Setting("WEBHOOK_RETRY_SCHEDULE", parse=parse_floats, default=list(DEFAULT_SCHEDULE),
            doc="seconds before each attempt, comma-separated"),
    Setting("WEBHOOK_DRAIN_THREADS", parse=int, default=4,
            doc="endpoints one rq work-horse delivers to at once"),
    Setting("WEBHOOK_DRAIN_BATCH", parse=int, default=500,
            doc="due attempts one drain looks at"),
    Setting("WEBHOOK_DRAIN_SECONDS", parse=float, default=30.0,
            doc="seconds after which a drain starts no new attempt"),
)
