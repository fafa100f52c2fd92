"""The OpenAPI 3.1 document of every JSON API, built from the declared operations.

Every operation declared with `ApiBlueprint.operation` (the merchant and partner APIs)
or `document_route` (public JSON routes such as tracking) brings its marshmallow
schemas; `field_schema` turns each field into JSON Schema 2020-12 (types, required,
lengths, ranges, patterns, enums, nesting) and `build_document` assembles paths,
parameters, request bodies, responses (each error status the operation can answer,
with the error shape), the bearer-key security scheme, and under `webhooks` every event
a merchant's endpoint can receive (`document_webhook`), with its signed envelope.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _
from marshmallow import Schema, fields, validate

from app.api.platform import (
    API_VERSION,
    BODY_METHODS,
    Operation,
    Webhook,
    operations,
    webhooks,
)

ERROR_TEXT = {
    400: "Malformed request: the body is not JSON, or not an object.",
    401: "No API key, or a key that is not valid, revoked or expired.",
    410: "Gone: the receiver asks Barid to switch the endpoint off.",
    403: "The key lacks the scope, or the account is not active.",
    404: "No such object among yours.",
    409: "Conflict with the current state, or the same Idempotency-Key still running.",
    413: "The body is too large.",
    415: "The body is not of the type the operation takes (application/json unless it "
         "says multipart/form-data).",
    422: "Invalid or unknown fields; an Idempotency-Key reused for another request.",
    429: "Too many requests; see Retry-After.",
}


def _component_name(schema: Schema | type[Schema]) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name[:-6] if name.endswith("Schema") and len(name) > 6 else name


class Builder:
    """Collects component schemas while converting."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, schema: Schema | type[Schema], *, for_input: bool) -> dict[str, Any]:
        inst = schema() if isinstance(schema, type) else schema
        name = _component_name(inst) + ("Input" if for_input else "")
        if name not in self.components:
            self.components[name] = {}  # placeholder against recursion
            self.components[name] = self.schema_object(inst, for_input=for_input)
        return {"$ref": f"#/components/schemas/{name}"}

    def schema_object(self, schema: Schema, *, for_input: bool) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for name, f in schema.fields.items():
            if for_input and f.dump_only:
                continue
            if not for_input and f.load_only:
                continue
            key = f.data_key or name
            props[key] = self.field_schema(f, for_input=for_input)
            if f.required and not (for_input and schema.partial is True):
                required.append(key)
        out: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        if for_input:
            out["additionalProperties"] = False
        doc = (type(schema).__doc__ or "").strip()
        if doc:
            out["description"] = doc.split("\n\n")[0]
        return out

    def field_schema(self, f: fields.Field, *, for_input: bool) -> dict[str, Any]:
        out = self._type_of(f, for_input=for_input)
        for v in _validators(f):
            _apply_validator(out, v)
        meta = f.metadata or {}
        if meta.get("description"):
            out["description"] = meta["description"]
        if "example" in meta:
            out["example"] = meta["example"]
        if f.allow_none:
            out = _or_null(out)
        if f.dump_only:
            out["readOnly"] = True
        return out

    def _type_of(self, f: fields.Field, *, for_input: bool) -> dict[str, Any]:
        meta = f.metadata or {}
        if "openapi" in meta:
            return dict(meta["openapi"])
        if isinstance(f, fields.Nested):
            nested = f.nested() if callable(f.nested) and not isinstance(f.nested, type) \
                else f.nested
            ref = self.ref(nested, for_input=for_input)  # type: ignore[arg-type]
            return {"type": "array", "items": ref} if f.many else ref
        if isinstance(f, fields.List):
            return {"type": "array", "items": self.field_schema(f.inner, for_input=for_input)}
        if isinstance(f, fields.Dict):
            values = getattr(f, "value_field", None)
            if values is not None:
                return {"type": "object",
                        "additionalProperties": self.field_schema(values, for_input=for_input)}
            return {"type": "object"}
        if isinstance(f, fields.Boolean):
            return {"type": "boolean"}
        if isinstance(f, fields.Integer):
            return {"type": "integer"}
        if isinstance(f, fields.Float | fields.Decimal | fields.Number):
            return {"type": "number"}
        if isinstance(f, fields.AwareDateTime | fields.DateTime):
            return {"type": "string", "format": "date-time"}
        if isinstance(f, fields.Date):
            return {"type": "string", "format": "date"}
        if isinstance(f, fields.Email):
            return {"type": "string", "format": "email"}
        if isinstance(f, fields.Url):
            return {"type": "string", "format": "uri"}
        if isinstance(f, fields.UUID):
            return {"type": "string", "format": "uuid"}
        if isinstance(f, fields.Enum):
            return {"type": "string", "enum": [m.value for m in f.enum]}
        if isinstance(f, fields.String):
            return {"type": "string"}
        return {}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or JSON null (OpenAPI 3.1 has no `nullable`)."""
    kind = schema.get("type")
    if isinstance(kind, str) and "$ref" not in schema:
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**schema, "type": [*kind, "null"] if "null" not in kind else kind}
    return {"anyOf": [schema, {"type": "null"}]}


def _validators(f: fields.Field) -> list[Any]:
    return list(getattr(f, "validators", []) or [])


def _apply_validator(out: dict[str, Any], v: Any) -> None:
    kind = out.get("type")
    if isinstance(v, validate.Length):
        lo, hi = ("minItems", "maxItems") if kind == "array" else ("minLength", "maxLength")
        if v.equal is not None:
            out[lo] = out[hi] = v.equal
        if v.min is not None:
            out[lo] = v.min
        if v.max is not None:
            out[hi] = v.max
    elif isinstance(v, validate.Range):
        if v.min is not None:
            out["minimum" if v.min_inclusive else "exclusiveMinimum"] = v.min
        if v.max is not None:
            out["maximum" if v.max_inclusive else "exclusiveMaximum"] = v.max
    elif isinstance(v, validate.Regexp):
        out["pattern"] = v.regex.pattern
    elif isinstance(v, validate.OneOf):
        target = out["items"] if kind == "array" and "items" in out else out
        target["enum"] = list(v.choices)


_RULE_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")


def _path_and_params(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for m in _RULE_PARAM.finditer(rule):
        kind = {"int": {"type": "integer", "minimum": 0}}.get(m.group("conv") or "",
                                                               {"type": "string"})
        params.append({"name": m.group("name"), "in": "path", "required": True,
                       "schema": kind})
    return _RULE_PARAM.sub(lambda m: "{" + m.group("name") + "}", rule), params


def _error_statuses(op: Operation, has_path_params: bool) -> list[int]:
    codes = set(op.errors)
    if not op.platform:  # its own view: only what it declares
        return sorted(codes)
    if op.scope is not None:
        codes |= {401, 403, 429}
    codes.add(422)  # unknown query parameters
    if op.method in BODY_METHODS:
        codes |= {400, 413, 415, 422}
    if op.method == "POST":
        codes.add(409)
    if has_path_params:
        codes.add(404)
    return sorted(codes)


def _operation_object(b: Builder, op: Operation) -> tuple[str, dict[str, Any]]:
    path, params = _path_and_params(op.path)
    if op.query is not None:
        for name, f in op.query.fields.items():
            params.append({"name": f.data_key or name, "in": "query",
                           "required": bool(f.required),
                           "schema": b.field_schema(f, for_input=True)})
    if op.method == "POST" and op.platform:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                       "description": "Repeat the request safely: the first answer is "
                                      "returned again for 24 hours."})
    obj: dict[str, Any] = {
        "operationId": op.endpoint.replace(".", "_"),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": {},
    }
    if op.description:
        obj["description"] = op.description
    if op.scope is not None:
        obj["security"] = [{"apiKey": []}]
        obj["x-barid-scope"] = op.scope
    else:
        obj["security"] = []
    if op.method in BODY_METHODS:
        body_ref = b.ref(op.body, for_input=True) if op.body is not None else {
            "type": "object", "additionalProperties": False, "properties": {}}
        required = op.body is not None and any(f.required for f in op.body.fields.values())
        obj["requestBody"] = {"required": required,
                              "content": {op.consumes: {"schema": body_ref}}}
    ok: dict[str, Any] = {"description": "OK" if op.status < 300 else str(op.status)}
    if op.status != 204 and op.produces != "application/json":
        ok["content"] = {op.produces: {"schema": {"type": "string", "format": "binary"}}}
    elif op.status != 204:
        if op.response is not None:
            schema = b.ref(op.response, for_input=False)
            if getattr(op.response, "many", False):
                schema = {"type": "array", "items": schema}
            ok["content"] = {"application/json": {"schema": schema}}
        else:
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    obj["responses"][str(op.status)] = ok
    for code in _error_statuses(op, bool(_RULE_PARAM.search(op.path))):
        if code in op.error_text:
            obj["responses"][str(code)] = {
                "description": op.error_text[code],
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}}
        else:
            obj["responses"][str(code)] = {"$ref": f"#/components/responses/E{code}"}
    return path, obj


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message", "fields"],
    "properties": {
        "error": {"type": "string", "description": "stable machine-readable code"},
        "message": {"type": "string", "description": "for people, in Accept-Language"},
        "fields": {"type": "object", "description": "per-field problems"},
        "request_id": {"type": "string"},
    },
}


# Standard Webhooks: what every message carries besides its body.
WEBHOOK_HEADERS = (
    ("webhook-id", "The message id (msg_…), the same on every retry: deduplicate on it."),
    ("webhook-timestamp", "Unix seconds of this attempt; refuse ones over 5 minutes old."),
    ("webhook-signature", "v1,<base64 HMAC-SHA256 of \"{id}.{timestamp}.{body}\"> with "
                          "the endpoint's secret; two during a secret rotation."),
)
WEBHOOK_TAG = "Webhooks"


def _webhook_object(b: Builder, hook: Webhook) -> dict[str, Any]:
    data = b.ref(hook.data, for_input=False) if hook.data is not None else {"type": "object"}
    envelope = {
        "type": "object",
        "required": ["id", "type", "api_version", "timestamp", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"},
            "type": {"const": hook.event_type},
            "api_version": {"type": "string", "examples": [API_VERSION]},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": data,
        },
    }
    return {"post": {
        "operationId": "webhook_" + re.sub(r"\W", "_", hook.event_type),
        "summary": hook.event_type,
        "description": str(hook.description),
        "tags": [WEBHOOK_TAG],
        "parameters": [{"name": name, "in": "header", "required": True,
                        "schema": {"type": "string"}, "description": text}
                       for name, text in WEBHOOK_HEADERS],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": envelope}}},
        "responses": {
            "2XX": {"description": "Received. Anything else, or no answer within 10 "
                                   "seconds, is retried on the published schedule."},
            "410": {"description": ERROR_TEXT[410]},
        },
    }}


def build_document(server_url: str | None = None) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for the operations and webhooks declared so far."""
    b = Builder()
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for op in sorted(operations(), key=lambda o: (o.path, o.method)):
        path, obj = _operation_object(b, op)
        paths.setdefault(path, {})[op.method.lower()] = obj
        if op.tag not in tags:
            tags.append(op.tag)
    hooks = {hook.event_type: _webhook_object(b, hook) for hook in webhooks()}
    if hooks and WEBHOOK_TAG not in tags:
        tags.append(WEBHOOK_TAG)
    responses = {
        f"E{code}": {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code, text in ERROR_TEXT.items() if code != 410
    }
    for code in (401,):
        responses[f"E{code}"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    responses["E429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Barid merchant API",
            "version": API_VERSION,
            "description": _(
                "Sync your catalog and stock, receive orders, hand parcels to Iraqi Post "
                "and follow their delivery. Authenticate with an API key from the "
                "merchant portal: Authorization: Bearer <key>."),
        },
        "servers": [{"url": server_url or "/"}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "webhooks": hooks,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **b.components},
            "responses": responses,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "An API key such as bk_live_…"},
            },
        },
    }


__all__ = ["build_document"]
