"""Browser-facing protections: security headers with a CSP, and the CSRF failure page.

Session and remember-me cookies are set HttpOnly, SameSite=Lax, and Secure outside
development in app.config. Other domains widen the CSP by appending origins to
CSP_SCRIPT_SRC, CSP_FRAME_SRC or CSP_CONNECT_SRC (e.g. Stripe's JS), never by
loosening it here.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, render_template_string, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from jinja2 import TemplateNotFound
from werkzeug.wrappers import Response

from app import errors
from app.storage import media_origin

CSP_LISTS = ("CSP_SCRIPT_SRC", "CSP_FRAME_SRC", "CSP_CONNECT_SRC")

_MINIMAL_400 = """<!doctype html>
<html lang="{{ locale }}" dir="{{ direction }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title></head>
<body><h1>{{ title }}</h1><p>{{ message }}</p><p><a href="/">{{ home }}</a></p></body></html>
"""


def _sources(base: str, extra_key: str) -> str:
    extra = current_app.config.get(extra_key) or []
    seen: list[str] = [base]
    for origin in extra:
        if origin and origin not in seen:
            seen.append(origin)
    return " ".join(seen)


def content_security_policy() -> str:
    """The CSP for this app: same-origin only, plus origins the domains registered."""
    directives = [
        "default-src 'self'",
        "img-src 'self' data:" + (f" {media}" if (media := media_origin()) else ""),
        "style-src 'self'",
        "script-src " + _sources("'self'", "CSP_SCRIPT_SRC"),
        "frame-src " + _sources("'self'", "CSP_FRAME_SRC"),
        "connect-src " + _sources("'self'", "CSP_CONNECT_SRC"),
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
    return "; ".join(directives)


def _add_headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("Content-Security-Policy", content_security_policy())
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    h.setdefault("X-Frame-Options", "DENY")
    if current_app.config.get("BARID_ENV") == "production":
        # Only where TLS is certain: HSTS on a plain-HTTP development host would stick.
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def csrf_failed(exc: CSRFError):
    """400 for a form without a valid CSRF token; nothing behind it ran."""
    message = _("The form expired or was sent from elsewhere. Please try again.")
    if request.path.startswith("/api/"):
        return jsonify({"error": "csrf_failed", "message": message, "fields": {}}), 400
    title = _("Please send the form again")
    # The platform's one error page when it is there; a page of our own otherwise.
    error_response = getattr(errors, "error_response", None)
    if error_response is not None:
        return error_response(400, "csrf_failed", message, title=title)
    try:
        body = render_template("errors/400.html", message=message, title=title,
                               error=exc, description=message)
    except TemplateNotFound:
        body = render_template_string(_MINIMAL_400, title=title, message=message,
                                      home=_("Back to the home page"))
    return body, 400


def init_app(app: Flask) -> None:
    for key in CSP_LISTS:
        app.config.setdefault(key, [])
    app.after_request(_add_headers)
    app.register_error_handler(CSRFError, csrf_failed)
