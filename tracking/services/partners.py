"""Partner posts and handheld fleets, and the API keys they report tracking events with.

A partner is an API key owner of its own kind ("partner"): its keys live on the API
platform (app.api: hashed, scoped, revocable) and may hold only `tracking:events:write`,
so a merchant's key can never post events and a partner's can never touch a shop.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.api import keys
from app.api.models import ApiKey
from app.audit import record_audit
from app.database import db
from app.errors import NotFound, ValidationFailed
from tracking.models import TrackingPartner

PARTNER_KIND = "partner"
EVENTS_WRITE = "tracking:events:write"
PARTNER_SCOPES = (EVENTS_WRITE,)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")


def partner_is_active(partner_id: int) -> bool:
    """Whether the partner may use its API keys now (the platform's owner check)."""
    return db.scalar(select(TrackingPartner.active)
                     .where(TrackingPartner.id == partner_id)) is True


def get_partner(partner_id: int) -> TrackingPartner:
    """The partner with this id; raises NotFound."""
    partner = db.get(TrackingPartner, partner_id)
    if partner is None:
        raise NotFound(_l("No such partner."))
    return partner


def partner_named(name: str) -> TrackingPartner:
    """The partner called `name`; raises NotFound."""
    partner = db.scalar(select(TrackingPartner).where(TrackingPartner.name == name))
    if partner is None:
        raise NotFound(_l("No such partner."))
    return partner


def issue_key(name: str, *, key_name: str | None = None, actor_id: int | None = None
              ) -> tuple[TrackingPartner, ApiKey, str]:
    """Give partner `name` (registered now if new, and active again if it was stopped) a
    new API key with the `tracking:events:write` scope.

    Returns the partner, the key and its secret, which is shown once and never stored.
    Flushes (and audits). Raises ValidationFailed for a name that is not lower-case
    letters, digits, dots, dashes or underscores (2 to 64).
    """
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValidationFailed(_l("A partner name is 2 to 64 lower-case letters, digits, "
                                  "dots, dashes or underscores."), fields={"name": [name]})
    partner = db.scalar(select(TrackingPartner).where(TrackingPartner.name == name))
    if partner is None:
        partner = TrackingPartner(name=name)
        db.add(partner)
        db.flush()
        record_audit("tracking.partner_created", object_type="tracking_partner",
                     object_id=partner.id, actor_id=actor_id, details={"name": name})
    partner.active = True
    key, secret = keys.create_key(partner.id, key_name or name, PARTNER_SCOPES,
                                  actor_id=actor_id, owner_kind=PARTNER_KIND)
    return partner, key, secret


def revoke_key(name: str, key_id: int, *, actor_id: int | None = None) -> ApiKey:
    """Stop one of partner `name`'s keys now (audited by the platform). Flushes.
    Raises NotFound for an unknown partner or a key that is not theirs."""
    partner = partner_named(name)
    return keys.revoke_key(partner.id, key_id, actor_id=actor_id, owner_kind=PARTNER_KIND)


def list_keys(name: str) -> list[ApiKey]:
    """Partner `name`'s keys, newest first; raises NotFound for an unknown partner."""
    return keys.list_keys(partner_named(name).id, owner_kind=PARTNER_KIND)
