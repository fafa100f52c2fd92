"""API keys: create (shown once), authenticate, revoke, rotate.

A key looks like `bk_live_<32 characters>` (`bk_test_` outside production). Only its
SHA-256 is stored; the full key exists once, in the answer to the request that made it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from app.api.models import MERCHANT, ApiKey
from app.api.owners import scopes_for
from app.audit import record_audit
from app.database import db, get_engine, utcnow
from app.errors import NotFound, ValidationFailed

PREFIX_LENGTH = 12  # "bk_live_" and four characters of the random part
LAST_USED_RESOLUTION = timedelta(seconds=60)
KEY_NOT_FOUND = _l("There is no such API key.")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _new_secret() -> str:
    mode = "live" if current_app.config.get("BARID_ENV") == "production" else "test"
    return f"bk_{mode}_{secrets.token_urlsafe(24)}"


def _clean_scopes(scopes: Iterable[str], owner_kind: str = MERCHANT) -> list[str]:
    allowed = scopes_for(owner_kind)
    chosen = list(dict.fromkeys(scopes))
    unknown = [s for s in chosen if s not in allowed]
    if unknown or not chosen:
        raise ValidationFailed(_l("Choose at least one of the listed permissions."),
                               fields={"scopes": [", ".join(allowed)]})
    return [s for s in allowed if s in chosen]


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(_l("Give the key a name of up to 100 characters."),
                               fields={"name": ["length"]})
    return name


def _issue(owner_id: int, name: str, scopes: list[str], actor_id: int | None,
           owner_kind: str = MERCHANT) -> tuple[ApiKey, str]:
    secret = _new_secret()
    key = ApiKey(owner_id=owner_id, owner_kind=owner_kind, name=name,
                 prefix=secret[:PREFIX_LENGTH], key_hash=hash_key(secret), scopes=scopes,
                 created_by_id=actor_id)
    db.add(key)
    db.flush()
    return key, secret


def create_key(owner_id: int, name: str, scopes: Iterable[str], *,
               actor_id: int | None = None, owner_kind: str = MERCHANT
               ) -> tuple[ApiKey, str]:
    """Make a new key for `owner_id` (a merchant, or an owner of `owner_kind`) with
    `scopes` and audit it (flushed).

    Returns the key row and the full secret, which is never stored and cannot be shown
    again. Raises ValidationFailed for an empty name or scopes the kind may not hold.
    """
    key, secret = _issue(owner_id, _clean_name(name), _clean_scopes(scopes, owner_kind),
                         actor_id, owner_kind)
    record_audit("api_key.created", object_type="api_key", object_id=key.id,
                 actor_id=actor_id, details={"owner_id": owner_id, "prefix": key.prefix,
                                             "scopes": key.scopes,
                                             "owner_kind": owner_kind})
    db.flush()
    return key, secret


def owned_key(owner_id: int, key_id: int, *, owner_kind: str = MERCHANT) -> ApiKey:
    """One of the owner's keys; raises NotFound for anyone else's."""
    key = db.get(ApiKey, key_id)
    if key is None or key.owner_id != owner_id or key.owner_kind != owner_kind:
        raise NotFound(KEY_NOT_FOUND)
    return key


def list_keys(owner_id: int, *, owner_kind: str = MERCHANT) -> list[ApiKey]:
    """The owner's keys, newest first (revoked ones included, marked)."""
    return list(db.scalars(select(ApiKey).where(ApiKey.owner_id == owner_id,
                                                ApiKey.owner_kind == owner_kind)
                           .order_by(ApiKey.id.desc())))


def revoke_key(owner_id: int, key_id: int, *, actor_id: int | None = None,
               owner_kind: str = MERCHANT) -> ApiKey:
    """Stop the key working now and audit it (flushed). Revoking twice changes nothing.

    Raises NotFound when the key is not the owner's.
    """
    key = owned_key(owner_id, key_id, owner_kind=owner_kind)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record_audit("api_key.revoked", object_type="api_key", object_id=key.id,
                     actor_id=actor_id, details={"owner_id": owner_id, "prefix": key.prefix})
    db.flush()
    return key


def rotate_key(owner_id: int, key_id: int, *, actor_id: int | None = None,
               grace: timedelta | None = None, owner_kind: str = MERCHANT
               ) -> tuple[ApiKey, str]:
    """Replace a key with a new one of the same name and scopes and audit it (flushed).

    The old key keeps working for `grace` (API_KEY_ROTATION_GRACE seconds, a day by
    default; zero ends it now) so the merchant can switch without downtime. Returns the
    new key and its secret. Raises NotFound for another owner's key and ValidationFailed
    for a revoked or expired one.
    """
    old = owned_key(owner_id, key_id, owner_kind=owner_kind)
    now = utcnow()
    if not old.usable(now) or old.replaced_by_id is not None:
        raise ValidationFailed(_l("This key no longer works; create a new one instead."),
                               code="key_not_active")
    if grace is None:
        grace = timedelta(seconds=current_app.config.get("API_KEY_ROTATION_GRACE", 86400))
    new, secret = _issue(owner_id, old.name, list(old.scopes), actor_id, old.owner_kind)
    old.replaced_by_id = new.id
    old.expires_at = now + grace
    if grace <= timedelta(0):
        old.revoked_at = now
    record_audit("api_key.rotated", object_type="api_key", object_id=old.id,
                 actor_id=actor_id, details={"owner_id": owner_id, "new_key_id": new.id,
                                             "old_expires_at": old.expires_at.isoformat()})
    db.flush()
    return new, secret


def find_usable(secret: str) -> ApiKey | None:
    """The key this secret belongs to if it works now (not revoked or expired), else
    None. Reads only; `touch` records the use."""
    if not secret.startswith("bk_") or len(secret) > 100:
        return None
    key = db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if key is None or not key.usable(utcnow()):
        return None
    return key


def touch(key_id: int, now: datetime | None = None) -> None:
    """Record that the key was used, at most once a minute, outside the request's
    transaction (a busy key would otherwise write its row on every request)."""
    now = now or utcnow()
    with get_engine().begin() as conn:
        conn.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id,
                   or_(ApiKey.last_used_at.is_(None),
                       ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
            .values(last_used_at=now)
        )
