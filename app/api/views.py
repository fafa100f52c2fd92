"""The API's own documentation: the OpenAPI document and a page that reads it."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import force_locale
from werkzeug.wrappers import Response

from app.api.openapi import build_document
from app.api.platform import API_PREFIX, API_VERSION
from app.i18n import current_locale

bp = Blueprint("api_docs", __name__, url_prefix=API_PREFIX, static_folder="static",
               static_url_path="/static")


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3 document of every merchant API operation."""
    response = jsonify(build_document(request.host_url.rstrip("/")))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response



@bp.get("/docs")
def docs() -> str | Response:
    """The API reference for people, rendered from the same document (no script, no
    internet). `?lang=en` or `?lang=ar` picks the language."""
    lang = request.args.get("lang")
    if lang in ("ar", "en"):
        with force_locale(lang):
            return _render_docs(lang)
    return _render_docs(current_locale())


def _render_docs(lang: str) -> str:
    doc = build_document(request.host_url.rstrip("/"))
    groups: dict[str, list[dict]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            groups.setdefault(op["tags"][0], []).append(
                {"path": path, "method": method.upper(), **op})
    return render_template(
        "api/docs.html", doc=doc, groups=groups, schemas=doc["components"]["schemas"],
        version=API_VERSION, lang=lang, direction="rtl" if lang == "ar" else "ltr",
        spec_url=url_for("api_docs.openapi_json"),
        other_lang="en" if lang == "ar" else "ar",
    )
