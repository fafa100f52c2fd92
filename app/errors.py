"""Typed domain errors and the one place that maps errors to HTTP.

Services raise a subclass of DomainError; views do not catch them. Pages get an HTML
error page in the visitor's language, `/api/` gets `{"error", "message", "fields"}`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.auth.models import role_label

log = logging.getLogger("barid.errors")


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



# Machine-readable codes for the HTTP errors the platform answers itself.
HTTP_CODES = {
    400: "bad_request",
    401: "login_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

# What a person sees, per status: a title and one plain sentence.
PAGE_TEXT: dict[int, tuple[Any, Any]] = {
    400: (_l("We could not understand that"),
          _l("Something in what you sent was not right. Go back and try again.")),
    401: (_l("Please log in"), _l("You need to log in to open this page.")),
    403: (_l("You cannot open this page"),
          _l("Your account does not have permission to open this page.")),
    404: (_l("Page not found"),
          _l("We could not find this page. Check the address, or start again from the "
             "home page.")),
    405: (_l("This cannot be done here"), _l("This page cannot be used this way.")),
    409: (_l("This could not be done"),
          _l("Something changed in the meantime. Reload the page and try again.")),
    413: (_l("Too large"), _l("The file or form you sent is too large.")),
    422: (_l("Please check what you entered"),
          _l("Some of what you entered is not right.")),
    429: (_l("Too many attempts"),
          _l("You tried too many times. Please wait a few minutes and try again.")),
    500: (_l("Something went wrong on our side"),
          _l("Sorry, this is our fault and it has been recorded. Please try again in a "
             "few minutes.")),
    503: (_l("Back in a moment"),
          _l("We cannot reach our records just now. Please try again in a minute.")),
}
GENERIC_TEXT = (_l("Something went wrong"), _l("Please go back and try again."))


def wants_json() -> bool:
    """The API answers errors in JSON; pages answer in HTML."""
    return request.path.startswith("/api/") or request.path == "/api"


def _role_label(role: Any) -> str:
    return str(role_label(role))


def _plain(value: Any) -> Any:
    """Lazy strings and other objects made JSON-friendly, in the visitor's language."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _fallback_page(status: int, request_id: str | None) -> Response:
    """A page that needs no template: for when rendering the real one failed too."""
    ref = f"<p>Reference / المرجع: <code>{escape(request_id)}</code></p>" if request_id else ""
    html = (
        '<!doctype html><html lang="ar" dir="rtl"><meta charset="utf-8">'
        f"<title>{status}</title><h1>{status}</h1>"
        "<p>حدث خطأ. الرجاء المحاولة مرة أخرى.</p>"
        '<p dir="ltr">Something went wrong. Please try again.</p>'
        f'{ref}<p><a href="/">بريد · Barid</a></p></html>'
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def error_response(status: int, code: str, message: Any = None, *, title: Any = None,
                   fields: dict[str, Any] | None = None,
                   headers: list[tuple[str, str]] | None = None) -> Response:
    """The error answer for the current request: JSON under /api/, a page otherwise."""
    request_id = getattr(request, "request_id", None)
    default_title, default_message = PAGE_TEXT.get(status, GENERIC_TEXT)
    roles = [_role_label(r) for r in g.get("required_roles", ())] if status == 403 else []
    if wants_json():
        out_fields = _plain(fields or {})
        if roles:
            out_fields = {**out_fields,
                          "required_roles": [str(r) for r in g.get("required_roles", ())]}
        body = {"error": code, "message": str(message or default_message),
                "fields": out_fields}
        if status >= 500 and request_id:
            body["request_id"] = request_id
        response = jsonify(body)
        response.status_code = status
    else:
        try:
            html = render_template(
                "errors/error.html", status=status, code=code,
                title=title or default_title, message=message or default_message,
                fields=_plain(fields or {}), roles=roles,
                request_id=request_id if status >= 500 else None,
            )
            response = Response(html, status=status, content_type="text/html; charset=utf-8")
        except Exception:
            log.exception("could not render the error page for %s", status)
            response = _fallback_page(status, request_id)
    for name, value in headers or ():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def handle_http_error(exc: HTTPException) -> Response:
    # A missing CSRF token has its own handler (app.security), which calls error_response.
    status = exc.code or 500
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    # A view that passed its own description (abort(404, _("No such parcel"))) said
    # something more useful than the generic sentence; werkzeug's English default did not.
    custom = exc.description if exc.description != type(exc).description else None
    code = HTTP_CODES.get(status, f"http_{status}")
    if status == 413:
        custom = None
    return error_response(status, code, custom, headers=headers)


def handle_server_error(exc: InternalServerError) -> Response:
    # Flask has already logged the original exception (with the request id, through the
    # JSON formatter) before it calls this handler.
    return error_response(500, HTTP_CODES[500])


# SQLSTATE classes of a database that is down, restarting or unreachable: connection
# exceptions (08), and operator intervention such as a shutdown or restart (57P). An
# error with no SQLSTATE never came from the server: the connection itself failed.
_UNREACHABLE_SQLSTATES = ("08", "57P")


def database_unreachable(exc: OperationalError) -> bool:
    """Whether `exc` says the database is down or the connection was cut (not a bug)."""
    if exc.connection_invalidated:
        return True
    if not hasattr(exc.orig, "sqlstate"):  # not psycopg (SQLite has no server to lose)
        return False
    sqlstate: str | None = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNREACHABLE_SQLSTATES)


def handle_operational_error(exc: OperationalError) -> Response:
    # While PostgreSQL restarts, a request that was using a cut connection gets 503 with
    # Retry-After (a load balancer retries elsewhere; a person reads "back in a moment");
    # the next request checks a fresh connection out of the pool (pool_pre_ping).
    if database_unreachable(exc):
        log.warning("database unreachable: %s", type(exc.orig).__name__)
        return error_response(503, HTTP_CODES[503], headers=[("Retry-After", "5")])
    log.error("database error", exc_info=exc)
    return error_response(500, HTTP_CODES[500])


def handle_domain_error(exc: DomainError) -> Response:
    headers = []
    if isinstance(exc, RateLimited):
        headers.append(("Retry-After", str(exc.retry_after)))
    message = exc.message if exc.message != exc.code else None
    return error_response(exc.http_status, exc.code, message, fields=exc.fields,
                          headers=headers)


def init_app(app: Flask) -> None:
    """Every error, from werkzeug, a domain rule or a bug, answered in one shape."""
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(InternalServerError, handle_server_error)
    app.register_error_handler(OperationalError, handle_operational_error)
    app.register_error_handler(HTTPException, handle_http_error)
