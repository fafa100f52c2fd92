"""The merchant API's one request path: key, rate limit, strict JSON, idempotency.

A domain declares each operation with `ApiBlueprint.operation(...)`: its method and
path, the scope it needs, and the marshmallow schemas of its query, body and answer.
The same declaration drives the request handling here and the OpenAPI document
(app.api.openapi), so the documentation cannot drift from what the code accepts.

Every operation, in order:

1. `Authorization: Bearer <key>`: 401 without a working key, 403 when the owner is
   not active (a suspended merchant) or the key lacks the operation's scope;
2. the key's rate limit: 429 with `Retry-After`; `RateLimit-*` headers on every answer;
3. the query string and the JSON body, parsed strictly: a body that is not JSON 415,
   too large 413, malformed or not an object 400, unknown or invalid fields 422;
4. on POST, `Idempotency-Key` (app.api.idempotency);
5. the view, which calls one service; a DomainError becomes the one error shape
   `{"error", "message", "fields"}`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask_babel import lazy_gettext as _l
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import Select
from werkzeug.datastructures import FileStorage

from app import ratelimit
from app.api import idempotency, keys
from app.api.models import ApiKey
from app.api.owners import owner_active
from app.database import db, unit_of_work
from app.errors import DomainError, ValidationFailed, error_response, handle_domain_error
from app.numbers import MAX_BIGINT

API_PREFIX = "/api/v1"
API_VERSION = "2026-11-01"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ApiRefused(DomainError):
    """An API request refused before its view ran (key, scope, body)."""

    def __init__(self, status: int, code: str, message: Any, *,
                 fields: dict[str, Any] | None = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message, fields=fields, code=code)
        self.http_status = status
        self.headers = headers or []


@dataclass
class Operation:
    """One documented API operation."""

    endpoint: str
    method: str
    path: str  # Flask rule, with the blueprint's prefix
    summary: str
    description: str
    tag: str
    scope: str | None
    body: Schema | None
    query: Schema | None
    response: Schema | None
    status: int
    errors: tuple[int, ...] = ()
    produces: str = "application/json"
    path_params: dict[str, str] = field(default_factory=dict)
    # The app.config setting that caps this operation's body (bulk feeds need more).
    max_body_setting: str = "API_MAX_BODY_BYTES"
    # The body's type: JSON, or multipart/form-data for an upload (its `body` schema then
    # loads the form fields, and each file field carries the werkzeug FileStorage).
    consumes: str = "application/json"
    # False for a JSON route served by its own view (see `document_route`): the
    # platform's key, strict query and body handling do not apply, so only `errors`
    # are its error answers.
    platform: bool = True
    # What an error status means for this operation, where the general text would mislead.
    error_text: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Webhook:
    """One documented webhook event: its type, what it means, the shape of its data."""

    event_type: str
    description: Any
    data: Schema | None


_operations: list[Operation] = []
_webhooks: dict[str, Webhook] = {}


def operations() -> list[Operation]:
    return list(_operations)


def webhooks() -> list[Webhook]:
    """Every webhook event documented so far, by type."""
    return [_webhooks[name] for name in sorted(_webhooks)]


def document_webhook(event_type: str, description: Any,
                     data: Schema | type[Schema] | None = None) -> None:
    """Describe webhook event `event_type` (its `data` schema) in the OpenAPI document.

    Called by whatever registers the event types (app.webhooks), once per type; a later
    call replaces an earlier one.
    """
    _webhooks[event_type] = Webhook(event_type, description,
                                    data() if isinstance(data, type) else data)


def document_route(method: str, path: str, *, endpoint: str, summary: str, tag: str,
                   errors: dict[int, str], query: Schema | type[Schema] | None = None,
                   response: Schema | type[Schema] | None = None, status: int = 200,
                   description: str = "") -> None:
    """Document a JSON route served by a plain blueprint (public, no API key), so the
    OpenAPI document covers it; `errors` are the error statuses its view can answer,
    each with what it means there. Its request handling stays the view's own."""
    key = (method.upper(), path)
    if any((op.method, op.path) == key for op in _operations):
        return  # create_app runs once per app; the route is documented once
    _operations.append(Operation(
        endpoint=endpoint, method=method.upper(), path=path, summary=summary,
        description=description, tag=tag, scope=None, body=None,
        query=query() if isinstance(query, type) else query,
        response=response() if isinstance(response, type) else response, status=status,
        errors=tuple(sorted(errors)), platform=False, error_text=dict(errors)))


@dataclass
class Call:
    """What a view gets: who calls, and the parsed query and body."""

    key: ApiKey | None
    query: dict[str, Any]
    body: dict[str, Any]

    @property
    def owner_id(self) -> int:
        assert self.key is not None
        return self.key.owner_id


def _refuse(status: int, code: str, message: Any, **kw: Any) -> ApiRefused:
    return ApiRefused(status, code, message, **kw)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(scope: str | None) -> ApiKey:
    """The calling key, checked for the owner's standing and `scope`."""
    challenge = [("WWW-Authenticate", 'Bearer realm="barid"')]
    token = _bearer()
    if token is None:
        raise _refuse(401, "unauthorized",
                      _l("Send your API key as: Authorization: Bearer <key>."),
                      headers=challenge)
    key = keys.find_usable(token)
    if key is None:
        raise _refuse(401, "invalid_api_key",
                      _l("This API key is not valid, or it was revoked or has expired."),
                      headers=challenge)
    if not owner_active(key.owner_id, key.owner_kind):
        raise _refuse(403, "account_inactive",
                      _l("Your account is not active, so its API keys do not work. "
                         "Contact Iraqi Post."))
    if scope is not None and scope not in key.scopes:
        raise _refuse(403, "insufficient_scope",
                      _l("This API key may not do this. It needs the permission: %(scope)s.",
                         scope=scope), fields={"scope": [scope]})
    return key


def _field_errors(exc: ValidationError) -> dict[str, Any]:
    messages = exc.messages
    if isinstance(messages, dict):
        return messages
    return {"_schema": messages}


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_json(op: Operation) -> Any:
    """The request body as JSON, or None when there is none."""
    limit = _body_limit(op)
    if request.content_length is not None and request.content_length > limit:
        raise _refuse(413, "too_large",
                      _l("The body is larger than %(n)s bytes.", n=limit))
    request.max_content_length = limit
    raw = request.get_data(cache=True)  # a chunked body past the limit raises 413
    if not raw.strip():
        return None
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise _refuse(415, "unsupported_media_type",
                      _l("Send the body as JSON with Content-Type: application/json."))
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise _refuse(415, "unsupported_media_type", _l("Send the body in UTF-8."))
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates,
                          parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refuse(400, "malformed_json", _l("The body is not valid JSON."),
                      fields={"_body": [str(exc)[:200]]}) from exc


MULTIPART = "multipart/form-data"


def _body_limit(op: Operation) -> int:
    return int(current_app.config.get(op.max_body_setting,
                                      current_app.config.get("API_MAX_BODY_BYTES", 256 * 1024)))


def _read_multipart(op: Operation) -> dict[str, Any]:
    """A multipart/form-data body: its fields, each file as a werkzeug FileStorage.
    415 for another type, 413 past the operation's limit, a repeated field refused."""
    limit = _body_limit(op)
    if request.content_length is not None and request.content_length > limit:
        raise _refuse(413, "too_large", _l("The body is larger than %(n)s bytes.", n=limit))
    if request.mimetype != MULTIPART:
        raise _refuse(415, "unsupported_media_type",
                      _l("Send the body as multipart/form-data."))
    request.max_content_length = limit
    # Read and keep the raw body first (Idempotency-Key hashes it), then parse the form
    # from the kept copy: a chunked body past the limit raises 413 here.
    request.get_data(cache=True, parse_form_data=False)
    data: dict[str, Any] = {}
    for source in (request.form, request.files):
        for name in source:
            values = source.getlist(name)
            if len(values) > 1 or name in data:
                raise ValidationFailed(_l("Some fields are not valid."),
                                       fields={name: ["Send this field once."]})
            data[name] = values[0]
    return data


def _load_body(op: Operation) -> dict[str, Any]:
    data = _read_multipart(op) if op.consumes == MULTIPART else _read_json(op)
    if data is None:
        data = {}
        if op.body is not None and any(f.required for f in op.body.fields.values()):
            raise _refuse(400, "body_required", _l("This request needs a JSON body."))
    if not isinstance(data, dict):
        raise _refuse(400, "malformed_json", _l("The body must be a JSON object."))
    schema = op.body if op.body is not None else Schema()
    try:
        return schema.load(data, unknown=RAISE)
    except ValidationError as exc:
        raise ValidationFailed(_l("Some fields are not valid."),
                               fields=_field_errors(exc)) from exc


def _load_query(op: Operation) -> dict[str, Any]:
    args = request.args.to_dict(flat=True)
    if op.query is None:
        if args:
            raise ValidationFailed(_l("This request takes no query parameters."),
                                   fields={k: ["Unknown field."] for k in args})
        return {}
    try:
        return op.query.load(args, unknown=RAISE)
    except ValidationError as exc:
        raise ValidationFailed(_l("Some query parameters are not valid."),
                               fields=_field_errors(exc)) from exc


def _json_response(payload: Any, status: int) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return Response(body, status=status, content_type="application/json")


def _render(op: Operation, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    status = op.status
    if isinstance(result, tuple):
        result, status = result
    if status == 204:
        return Response(status=204)
    payload = op.response.dump(result) if op.response is not None else result
    return _json_response(payload, status)


def _error(exc: DomainError) -> Response:
    if isinstance(exc, ApiRefused):
        message = exc.message if exc.message != exc.code else None
        return error_response(exc.http_status, exc.code, message, fields=exc.fields,
                              headers=exc.headers)
    return handle_domain_error(exc)


def _with_headers(response: Response, allowance: ratelimit.Allowance | None) -> Response:
    if allowance is not None:
        for name, value in allowance.headers():
            response.headers[name] = value
    response.headers["Barid-Version"] = API_VERSION
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _rate_rule() -> ratelimit.Rule:
    """API_RATE_LIMIT requests per API_RATE_WINDOW seconds for each key (counted in
    Redis when configured, so every web process shares the count)."""
    return ratelimit.Rule("api:rate", int(current_app.config["API_RATE_LIMIT"]),
                          max(int(current_app.config["API_RATE_WINDOW"]), 1))


def _run(op: Operation, view: Callable[..., Any], path_args: dict[str, Any]) -> Response:
    allowance: ratelimit.Allowance | None = None
    claim: int | None = None
    try:
        key = None
        if op.scope is not None:
            key = authenticate(op.scope)
            g.api_key_id = key.id
            allowance = ratelimit.hit(_rate_rule(), str(key.id))
            if not allowance.allowed:
                raise _refuse(429, "rate_limited",
                              _l("Too many requests. Try again in %(n)s seconds.",
                                 n=allowance.reset))
            keys.touch(key.id)
        query = _load_query(op)
        body = _load_body(op) if op.method in BODY_METHODS else {}
        idem_key = request.headers.get("Idempotency-Key")
        if op.method == "POST" and idem_key is not None and key is not None:
            digest = idempotency.request_hash(op.method, request.path,
                                              _canonical_body())
            claimed = idempotency.claim(key.id, idempotency.check_key(idem_key), digest)
            if isinstance(claimed, idempotency.Stored):
                response = Response(claimed.body, status=claimed.status,
                                    headers=claimed.headers)
                response.headers["Idempotent-Replayed"] = "true"
                return _with_headers(response, allowance)
            claim = claimed
        try:
            # The operation's one unit of work: its service's changes commit together,
            # or roll back with the DomainError (answered as JSON below). The key check,
            # the last-used time and the idempotency record run apart from it, on their
            # own connections (see app.api.keys.touch and app.api.idempotency).
            with unit_of_work():
                response = _render(op, view(Call(key=key, query=query, body=body),
                                            **path_args))
        except DomainError as exc:
            response = _error(exc)
        if claim is not None:
            if response.status_code >= 500:
                idempotency.release(claim)
            else:
                kept = {k: v for k, v in response.headers.items()
                        if k.lower() in ("content-type", "location")}
                idempotency.finish(claim, response.status_code, response.get_data(), kept)
            claim = None
        return _with_headers(response, allowance)
    except DomainError as exc:
        return _with_headers(_error(exc), allowance)
    finally:
        if claim is not None:  # the view crashed: a retry must run again
            idempotency.release(claim)


def _file_digest(upload: FileStorage) -> str:
    stream = upload.stream
    at = stream.tell()
    stream.seek(0)
    digest = hashlib.sha256(stream.read()).hexdigest()
    stream.seek(at)
    return "sha256:" + digest


def _canonical_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    if request.mimetype == MULTIPART:
        # The parts' boundary differs on each send: hash what the fields hold.
        fields_ = {**request.form.to_dict(), **request.files.to_dict()}
        return {name: _file_digest(value) if isinstance(value, FileStorage) else value
                for name, value in sorted(fields_.items())}
    return json.loads(raw.decode("utf-8"))


class ApiBlueprint(Blueprint):
    """A blueprint whose routes are documented API operations (see `operation`)."""

    def __init__(self, name: str, import_name: str, *, tag: str,
                 url_prefix: str = API_PREFIX, **kw: Any) -> None:
        super().__init__(name, import_name, url_prefix=url_prefix, **kw)
        self.tag = tag

    def operation(self, method: str, rule: str, *, scope: str | None, summary: str,
                  body: Schema | type[Schema] | None = None,
                  query: Schema | type[Schema] | None = None,
                  response: Schema | type[Schema] | None = None, status: int = 200,
                  errors: tuple[int, ...] = (), tag: str | None = None,
                  produces: str = "application/json",
                  max_body_setting: str = "API_MAX_BODY_BYTES",
                  consumes: str = "application/json"
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare `view(call, **path_args)` as `method rule`; see the module docstring."""

        def inst(s: Schema | type[Schema] | None) -> Schema | None:
            return s() if isinstance(s, type) else s

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            op = Operation(
                endpoint=f"{self.name}.{view.__name__}", method=method.upper(),
                path=(self.url_prefix or "") + rule, summary=summary,
                description=(view.__doc__ or "").strip(), tag=tag or self.tag,
                scope=scope, body=inst(body), query=inst(query), response=inst(response),
                status=status, errors=errors, produces=produces,
                max_body_setting=max_body_setting, consumes=consumes,
            )
            _operations.append(op)

            @wraps(view)
            def handler(**path_args: Any) -> Response:
                return _run(op, view, path_args)

            self.add_url_rule(rule, endpoint=view.__name__, view_func=handler,
                              methods=[op.method])
            return handler

        return decorate


# -- ids and cursor pagination -----------------------------------------------------------

# An id a client sends (in a body, a query or a cursor): a BIGINT, so PostgreSQL never sees
# a bind it must refuse with a 500.
ID_RANGE = validate.Range(min=1, max=MAX_BIGINT, error=_l("This id does not exist."))


class PageQuery(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100),
                           metadata={"description": "How many to return, 1 to 100."})
    cursor = fields.String(load_default=None, metadata={
        "description": "next_cursor of the previous page"})


def page_schema(item: type[Schema], name: str) -> Schema:
    """{"data": [item], "has_more", "next_cursor"}: one page of a list."""
    cls = Schema.from_dict({
        "data": fields.List(fields.Nested(item), required=True),
        "has_more": fields.Boolean(required=True),
        "next_cursor": fields.String(allow_none=True, required=True),
    }, name=name)
    return cls()


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id":
            raise ValueError(kind)
        after = int(value)
        if not 1 <= after <= MAX_BIGINT:
            raise ValueError(value)
        return after
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed(_l("This cursor is not valid."),
                               fields={"cursor": ["invalid"]}) from exc


def paginate(stmt: Select[Any], id_column: Any, query: dict[str, Any]) -> dict[str, Any]:
    """One page of `stmt`, newest (highest id) first, after the query's cursor."""
    limit = int(query.get("limit") or 20)
    after = decode_cursor(query.get("cursor"))
    if after is not None:
        stmt = stmt.where(id_column < after)
    rows = list(db.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": rows, "has_more": more,
            "next_cursor": encode_cursor(rows[-1].id) if more and rows else None}
