"""The data of the webhook messages app.webhooks sends itself (domains declare theirs)."""

from __future__ import annotations

from marshmallow import Schema, fields


class TestEventData(Schema):
    """`webhook.test`: sent from the portal or the API to one endpoint."""

    endpoint_id = fields.Integer(required=True)
    note = fields.String(required=True)
