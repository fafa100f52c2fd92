"""Typed domain errors and the one place that maps errors to HTTP.

Services raise a subclass of DomainError; views do not catch them. Pages get an HTML
error page in the visitor's language, `/api/` gets `{"error", "message", "fields"}`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask


class DomainError(Exception):
    """A use case refused: bad input, a rule of the business, a conflict.

    `code` is stable and machine-readable; `message` is for people and should be a
    lazy-translated string where it is shown on a page.
    """

    code = "error"
    http_status = 400

    def __init__(self, message: Any = None, *, fields: dict[str, Any] | None = None,
                 code: str | None = None) -> None:
        super().__init__(str(message) if message is not None else self.code)
        self.message = message if message is not None else self.code
        self.fields = fields or {}
        if code:
            self.code = code


class ValidationFailed(DomainError):
    code = "validation_failed"
    http_status = 422


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class RateLimited(DomainError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: Any = None, *, retry_after: int = 60, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


def init_app(app: Flask) -> None:
    pass
