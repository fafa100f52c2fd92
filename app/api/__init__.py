"""The merchant API platform: keys, rate limits, idempotency, strict JSON, OpenAPI.

Domains declare their operations with `app.api.platform.ApiBlueprint`; this package
authenticates and parses every request the same way and documents them all at
`GET /api/v1/openapi.json` and `/api/v1/docs`. Owners of keys are opaque ids; the
domain that knows them registers checks in `app.api.owners`.
"""

from __future__ import annotations

from flask import Flask

from app.api import jobs, views  # noqa: F401  (jobs registers its periodic job)
from app.api.settings import SETTINGS
from app.extensions import csrf
from app.settings import load_settings

MODEL_MODULES = ("app.api.models",)


def init_app(app: Flask) -> None:
    """Settings, the documentation routes and the cleanup job."""
    load_settings(app, "api", SETTINGS)
    app.register_blueprint(views.bp)
    csrf.exempt(views.bp)
