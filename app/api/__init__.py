"""The merchant API platform: keys, rate limits, idempotency, strict JSON, OpenAPI.

Domains declare their operations with `app.api.platform.ApiBlueprint`; this package
authenticates and parses every request the same way and documents them all at
`GET /api/v1/openapi.json` and `/api/v1/docs`. Owners of keys are opaque ids; the
domain that knows them registers checks in `app.api.owners`.
"""

from __future__ import annotations

from flask import Flask

MODEL_MODULES = ("app.api.models",)


def init_app(app: Flask) -> None:
    """Settings, the documentation routes and the cleanup job."""
    import os

    from app.api import jobs, views  # noqa: F401  (jobs registers its periodic job)
    from app.extensions import csrf

    app.config.setdefault("API_RATE_LIMIT", int(os.environ.get("API_RATE_LIMIT", "600")))
    app.config.setdefault("API_RATE_WINDOW", int(os.environ.get("API_RATE_WINDOW", "60")))
    app.config.setdefault("API_MAX_BODY_BYTES",
                          int(os.environ.get("API_MAX_BODY_BYTES", str(256 * 1024))))
    app.config.setdefault("API_IDEMPOTENCY_TTL", 86400)
    app.config.setdefault("API_KEY_ROTATION_GRACE", 86400)
    app.register_blueprint(views.bp)
    csrf.exempt(views.bp)
