"""Webhook endpoints through the merchant API (scope `webhooks`)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from app.api.models import Scope
from app.api.platform import ApiBlueprint, Call, PageQuery, page_schema, paginate
from app.webhooks import services
from app.webhooks.models import WebhookAttempt, WebhookEndpoint

bp = ApiBlueprint("webhooks_api", __name__, tag="Webhooks")
S = Scope.WEBHOOKS.value


class EndpointCreateSchema(Schema):
    """A URL to receive events; all types when event_types is empty."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                        metadata={"example": "https://shop.example/barid/webhooks"})
    event_types = fields.List(fields.String(validate=validate.Length(max=64)),
                              load_default=list, validate=validate.Length(max=50))
    description = fields.String(load_default="", validate=validate.Length(max=200))


class EndpointUpdateSchema(Schema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    event_types = fields.List(fields.String(validate=validate.Length(max=64)),
                              validate=validate.Length(max=50))
    description = fields.String(validate=validate.Length(max=200))
    enabled = fields.Boolean()


class EndpointSchema(Schema):
    """A webhook endpoint (its secret is shown by create and rotate-secret)."""

    id = fields.Integer(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    event_types = fields.List(fields.String(), required=True)
    enabled = fields.Boolean(required=True)
    disabled_reason = fields.String(allow_none=True, required=True)
    failing_since = fields.AwareDateTime(allow_none=True, required=True)
    created_at = fields.AwareDateTime(required=True)


class EndpointSecretSchema(EndpointSchema):
    """A webhook endpoint with its signing secret (`whsec_...`)."""

    secret = fields.String(required=True)
    previous_secret_expires_at = fields.AwareDateTime(allow_none=True, required=True)


class AttemptSchema(Schema):
    """One attempt to deliver a message to the endpoint."""

    id = fields.Integer(required=True)
    message_id = fields.String(required=True)
    attempt_number = fields.Integer(required=True)
    attempted_at = fields.AwareDateTime(required=True)
    succeeded = fields.Boolean(required=True)
    status_code = fields.Integer(allow_none=True, required=True)
    latency_ms = fields.Integer(required=True)
    response_excerpt = fields.String(required=True)
    error = fields.String(allow_none=True, required=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True, required=True)


class MessageSchema(Schema):
    """A message as sent: `id` is the webhook-id header, `payload` the exact body."""

    id = fields.String(required=True)
    event_type = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    payload = fields.Dict(required=True)


class ReplaySchema(Schema):
    endpoint_id = fields.Integer(load_default=None, allow_none=True, strict=True)


class ReplayFailedSchema(Schema):
    since = fields.AwareDateTime(required=True, metadata={
        "description": "Replay failed messages created at or after this time (UTC)."})


class ReplayedSchema(Schema):
    replayed = fields.Integer(required=True)


class EventTypeSchema(Schema):
    type = fields.String(required=True)
    description = fields.String(required=True)


@bp.operation("GET", "/webhook-event-types", scope=S, summary="Event types you can receive",
              response=EventTypeSchema(many=True))
def event_types(call: Call) -> list[dict[str, Any]]:
    """Every event type Barid sends, with what it means."""
    return [{"type": t, "description": str(d)} for t, d in sorted(services.EVENT_TYPES.items())]


@bp.operation("GET", "/webhook-endpoints", scope=S, summary="List webhook endpoints",
              query=PageQuery, response=page_schema(EndpointSchema, "EndpointPage"))
def list_endpoints(call: Call) -> dict[str, Any]:
    """Your endpoints, newest first."""
    return paginate(services.endpoints_query(call.owner_id), WebhookEndpoint.id, call.query)


@bp.operation("POST", "/webhook-endpoints", scope=S, summary="Add a webhook endpoint",
              body=EndpointCreateSchema, response=EndpointSecretSchema, status=201)
def create_endpoint(call: Call) -> WebhookEndpoint:
    """Register a URL. The answer holds its signing secret; verify every delivery with it
    (Standard Webhooks). In production only public https URLs are accepted."""
    return services.create_endpoint(call.owner_id, call.body["url"],
                                    event_types=call.body["event_types"],
                                    description=call.body["description"])


@bp.operation("GET", "/webhook-endpoints/<int:endpoint_id>", scope=S,
              summary="Get a webhook endpoint", response=EndpointSchema)
def get_endpoint(call: Call, endpoint_id: int) -> WebhookEndpoint:
    """One of your endpoints."""
    return services.get_endpoint(call.owner_id, endpoint_id)


@bp.operation("PATCH", "/webhook-endpoints/<int:endpoint_id>", scope=S,
              summary="Change a webhook endpoint", body=EndpointUpdateSchema,
              response=EndpointSchema)
def update_endpoint(call: Call, endpoint_id: int) -> WebhookEndpoint:
    """Change the URL, event types, description, or enable and disable it."""
    return services.update_endpoint(call.owner_id, endpoint_id, call.body)


@bp.operation("DELETE", "/webhook-endpoints/<int:endpoint_id>", scope=S,
              summary="Delete a webhook endpoint", status=204)
def delete_endpoint(call: Call, endpoint_id: int) -> tuple[None, int]:
    """Stop sending to it for good."""
    services.delete_endpoint(call.owner_id, endpoint_id)
    return None, 204


@bp.operation("POST", "/webhook-endpoints/<int:endpoint_id>/rotate-secret", scope=S,
              summary="Rotate the signing secret", response=EndpointSecretSchema)
def rotate_secret(call: Call, endpoint_id: int) -> WebhookEndpoint:
    """A new secret signs from now on; the old one adds a second signature for a day."""
    return services.rotate_secret(call.owner_id, endpoint_id)


@bp.operation("POST", "/webhook-endpoints/<int:endpoint_id>/test", scope=S,
              summary="Send a test event", response=MessageSchema, status=202)
def send_test(call: Call, endpoint_id: int) -> Any:
    """Send a `webhook.test` message to this endpoint now."""
    return services.send_test_event(call.owner_id, endpoint_id)


@bp.operation("POST", "/webhook-endpoints/<int:endpoint_id>/replay-failed", scope=S,
              summary="Replay failed messages since a time", body=ReplayFailedSchema,
              response=ReplayedSchema, status=202)
def replay_failed(call: Call, endpoint_id: int) -> dict[str, int]:
    """Send again every message whose delivery to this endpoint failed, since `since`."""
    n = services.replay_failed_since(call.owner_id, endpoint_id, call.body["since"])
    return {"replayed": n}


@bp.operation("GET", "/webhook-endpoints/<int:endpoint_id>/attempts", scope=S,
              summary="Delivery log of an endpoint", query=PageQuery,
              response=page_schema(AttemptSchema, "AttemptPage"))
def attempts(call: Call, endpoint_id: int) -> dict[str, Any]:
    """Every attempt, newest first: time, HTTP status, latency, the answer's first bytes."""
    return paginate(services.attempts_query(call.owner_id, endpoint_id), WebhookAttempt.id,
                    call.query)


@bp.operation("GET", "/webhook-messages/<message_id>", scope=S, summary="Get a message",
              response=MessageSchema)
def get_message(call: Call, message_id: str) -> Any:
    """A message you were sent, with its exact body."""
    return services.get_message(call.owner_id, message_id)


@bp.operation("POST", "/webhook-messages/<message_id>/replay", scope=S,
              summary="Replay a message", body=ReplaySchema, response=ReplayedSchema,
              status=202)
def replay_message(call: Call, message_id: str) -> dict[str, int]:
    """Send the message again with the same webhook-id, to one endpoint or to every
    enabled endpoint it went to."""
    restarted = services.replay_message(call.owner_id, message_id,
                                        endpoint_id=call.body.get("endpoint_id"))
    return {"replayed": len(restarted)}
