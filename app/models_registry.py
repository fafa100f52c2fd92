"""Loads every module that defines tables, so Base.metadata is complete.

Used by migrations and by tests that build a schema. The platform's own modules are
listed here; a domain lists its modules in `MODEL_MODULES` in its package `__init__`.
Modules are imported by name (importlib): the platform imports no domain.
"""

from importlib import import_module

from app.config import DOMAINS

CORE_MODEL_MODULES = ("app.audit", "app.auth.models", "app.events", "app.seed",
                      "app.api.models", "app.webhooks.models", "app.notify", "app.reports")


def load_all() -> None:
    for name in CORE_MODEL_MODULES:
        import_module(name)
    for domain in DOMAINS:
        for name in getattr(import_module(domain), "MODEL_MODULES", ()):
            import_module(name)
