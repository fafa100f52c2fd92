"""Check an answer against the schema /api/v1/openapi.json documents for it."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


def validate_answer(doc: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    """Raise jsonschema.ValidationError when `instance` does not fit `schema`, a schema
    of the OpenAPI 3.1 document `doc` (its $refs point into doc's components)."""
    Draft202012Validator({**schema, "components": doc["components"]},
                         format_checker=Draft202012Validator.FORMAT_CHECKER
                         ).validate(instance)


def answer_schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema of `method path`'s answer with `status`, references followed."""
    response = doc["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]
