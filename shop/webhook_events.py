"""Domain events, told to the merchants they concern as signed webhooks.

One subscriber, registered for each event a merchant would want, turns it into a
small, versioned message (`{"id", "type", "api_version", "timestamp", "data"}`) for
each merchant concerned, delivered to its endpoints by app.webhooks. Orders and
refunds name their merchants through the order's consignments; parcels through the
consignment (or order) they were made for. Events that concern no merchant, and
merchants without endpoints, cost one lookup and nothing else. `init_app` registers the
event types and the subscriber.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields
from sqlalchemy import or_, select

from app.database import db
from app.events import DomainEvent, subscribe
from app.webhooks.services import register_event_types, stage_message
from shop.models import Consignment
from shop.services.references import ORDER_KIND
from tracking.models import CustomsCase, CustomsState

EVENT_TYPES: dict[str, LazyString] = {
    "order.created": _l("A shopper placed an order with items of yours (not paid yet)."),
    "order.paid": _l("An order with items of yours is paid: prepare your consignment."),
    "order.cancelled": _l("An order with items of yours was cancelled."),
    "consignment.ready": _l("Your consignment has a parcel and label: hand it to the post."),
    "consignment.shipped": _l("The post has your consignment's parcel."),
    "consignment.delivered": _l("Your consignment's parcel was delivered."),
    "consignment.cancelled": _l("Your consignment was cancelled."),
    "parcel.status_changed": _l("One of your parcels changed status."),
    "parcel.delivered": _l("One of your parcels was delivered."),
    "parcel.returned": _l("One of your parcels is going back to the sender."),
    "customs.held": _l("Customs is holding one of your parcels."),
    "customs.released": _l("Customs released one of your parcels."),
    "refund.succeeded": _l("A refund of an order with items of yours was paid."),
}



class OrderEventData(Schema):
    """`order.*`: an order with items of the merchant's."""

    order_id = fields.Integer(required=True)
    order_number = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    previous_status = fields.String(required=True, allow_none=True)
    consignment_ids = fields.List(fields.Integer(), required=True, metadata={
        "description": "the merchant's own consignments of the order"})


class ConsignmentEventData(Schema):
    """`consignment.*`: the merchant's part of an order."""

    consignment_id = fields.Integer(required=True)
    order_id = fields.Integer(required=True, allow_none=True)
    status = fields.String(required=True)
    previous_status = fields.String(required=True, allow_none=True)
    tracking_number = fields.String(required=True, allow_none=True)


class ParcelEventData(Schema):
    """`parcel.*` and `customs.released`: a parcel made for the merchant's consignments."""

    tracking_number = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, allow_none=True)
    previous_status = fields.String(allow_none=True, metadata={
        "description": "absent when the parcel has no earlier status"})
    consignment_ids = fields.List(fields.Integer(), required=True)


class CustomsHeldData(ParcelEventData):
    """`customs.held`: customs is holding the parcel."""

    reason = fields.String(required=True)


class RefundEventData(Schema):
    """`refund.succeeded`: money went back for an order with the merchant's items."""

    refund_id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    amount = fields.Integer(required=True, metadata={
        "description": "this refund, in the currency's minor units (whole dinars for IQD)"})
    currency = fields.String(required=True)
    order_refunded_amount = fields.Integer(required=True, allow_none=True, metadata={
        "description": "all refunds of the order's payment so far"})


# The schema of each type's `data`, documented in /api/v1/openapi.json under webhooks.
EVENT_DATA: dict[str, type[Schema]] = {
    **dict.fromkeys(("order.created", "order.paid", "order.cancelled"), OrderEventData),
    **dict.fromkeys(("consignment.ready", "consignment.shipped", "consignment.delivered",
                     "consignment.cancelled"), ConsignmentEventData),
    **dict.fromkeys(("parcel.status_changed", "parcel.delivered", "parcel.returned",
                     "customs.released"), ParcelEventData),
    "customs.held": CustomsHeldData,
    "refund.succeeded": RefundEventData,
}

ORDER_EVENTS = {"order.placed": "order.created", "order.paid": "order.paid",
                "order.cancelled": "order.cancelled"}
CONSIGNMENT_EVENTS = {f"consignment.{s}": f"consignment.{s}"
                      for s in ("ready", "shipped", "delivered", "cancelled")}
PARCEL_EVENTS = {"parcel.status_changed": "parcel.status_changed",
                 "parcel.delivered": "parcel.delivered", "parcel.returned": "parcel.returned",
                 "parcel.held_by_customs": "customs.held",
                 "parcel.released_by_customs": "customs.released",
                 "customs.released": "customs.released"}

Message = tuple[str, int, dict[str, Any]]  # (type, merchant id, data)


def _own_consignments(order_id: int, merchant_id: int) -> list[int]:
    return list(db.scalars(select(Consignment.id).where(
        Consignment.order_id == order_id, Consignment.merchant_id == merchant_id)
        .order_by(Consignment.id)))


def _order_messages(event: DomainEvent) -> list[Message]:
    data = event.payload
    kind = ORDER_EVENTS[event.name]
    out = []
    for merchant_id in data.get("merchant_ids") or []:
        out.append((kind, int(merchant_id), {
            "order_id": data.get("order_id"), "order_number": data.get("number"),
            "status": data.get("status"), "previous_status": data.get("previous_status"),
            "consignment_ids": _own_consignments(int(data["order_id"]), int(merchant_id)),
        }))
    return out


def _consignment_messages(event: DomainEvent) -> list[Message]:
    data = event.payload
    if data.get("merchant_id") is None:
        return []
    return [(CONSIGNMENT_EVENTS[event.name], int(data["merchant_id"]), {
        "consignment_id": data.get("consignment_id"), "order_id": data.get("order_id"),
        "status": data.get("status"), "previous_status": data.get("previous_status"),
        "tracking_number": data.get("tracking_number"),
    })]


def _parcel_merchants(data: dict[str, Any]) -> dict[int, list[int]]:
    """merchant id -> its consignment ids, for the parcel in `data`."""
    conditions = []
    if data.get("parcel_id") is not None:
        conditions.append(Consignment.parcel_id == data["parcel_id"])
    kind, _, raw = str(data.get("order_ref") or "").partition(":")
    if raw.isdigit() and kind == "consignment":
        conditions.append(Consignment.id == int(raw))
    elif raw.isdigit() and kind == "order":
        conditions.append(Consignment.order_id == int(raw))
    if not conditions:
        return {}
    out: dict[int, list[int]] = {}
    for cid, mid in db.execute(select(Consignment.id, Consignment.merchant_id)
                               .where(or_(*conditions)).order_by(Consignment.id)):
        if mid is not None:
            out.setdefault(int(mid), []).append(int(cid))
    return out


def _customs_released(data: dict[str, Any]) -> bool:
    """A status change that ended a customs hold (tracking announces holds, not
    releases, so the release is read from the customs case)."""
    if data.get("previous_status") != "on_hold" or data.get("parcel_id") is None:
        return False
    state = db.scalar(select(CustomsCase.state).where(
        CustomsCase.parcel_id == data["parcel_id"]))
    return state == CustomsState.RELEASED


def _parcel_messages(event: DomainEvent) -> list[Message]:
    data = event.payload
    merchants = _parcel_merchants(data)
    if not merchants:
        return []
    kinds = [PARCEL_EVENTS[event.name]]
    if event.name == "parcel.status_changed" and _customs_released(data):
        kinds.append("customs.released")
    out = []
    for merchant_id, consignment_ids in merchants.items():
        body = {"tracking_number": data.get("tracking_number"), "status": data.get("status"),
                "consignment_ids": consignment_ids}
        if "previous_status" in data:
            body["previous_status"] = data["previous_status"]
        if event.name == "parcel.held_by_customs":
            body["reason"] = data.get("reason") or ""
        out += [(kind, merchant_id, body) for kind in kinds]
    return out


def _refund_messages(event: DomainEvent) -> list[Message]:
    data = event.payload
    if data.get("reference_kind") != ORDER_KIND or not str(data.get("reference_id")).isdigit():
        return []
    order_id = int(data["reference_id"])
    merchant_ids = sorted({m for m in db.scalars(select(Consignment.merchant_id).where(
        Consignment.order_id == order_id)) if m is not None})
    return [("refund.succeeded", mid, {
        "refund_id": data.get("refund_id"), "order_id": order_id,
        "amount": data.get("refund_amount"), "currency": data.get("currency"),
        "order_refunded_amount": data.get("refunded_amount"),
    }) for mid in merchant_ids]


ROUTES: dict[str, Callable[[DomainEvent], list[Message]]] = {
    **dict.fromkeys(ORDER_EVENTS, _order_messages),
    **dict.fromkeys(CONSIGNMENT_EVENTS, _consignment_messages),
    **dict.fromkeys(PARCEL_EVENTS, _parcel_messages),
    "refund.succeeded": _refund_messages,
}


def messages_for(event: DomainEvent) -> list[Message]:
    """(type, merchant id, data) of every webhook message `event` becomes."""
    route = ROUTES.get(event.name)
    return route(event) if route else []


def tell_merchants(event: DomainEvent) -> None:
    """Job: turn a domain event into webhook messages for the merchants it concerns.

    Stages (flushes) the messages and their first delivery attempts in the job's unit of
    work, which the job runner commits. A merchant gets one message per event and type,
    however often this runs. Raises nothing of its own.
    """
    for kind, merchant_id, data in messages_for(event):
        stage_message(merchant_id, kind, data, source_event_id=f"{event.id}|{kind}")


def init_app(app: Flask) -> None:
    """Make the merchant event types known to app.webhooks and subscribe
    `tell_merchants` to the events behind them (both idempotent)."""
    register_event_types(EVENT_TYPES, EVENT_DATA)
    # Subscribed by name rather than to "*": the other events (and every test or bench
    # event) then cost no outbox row at all.
    for name in ROUTES:
        subscribe(name)(tell_merchants)
