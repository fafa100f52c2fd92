"""Merchants: registration, approval and suspension by an admin, commission.

Every decision an admin takes on a merchant is audited and announced as an event
(`merchant.approved`, `merchant.suspended`, `merchant.commission_changed`).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit import record_audit
from app.auth.models import PostOffice, Role, User, UserRole
from app.database import db, savepoint, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import publish
from app.i18n import current_locale
from shop.models import HOME_COUNTRY, HOME_CURRENCY, Merchant, MerchantStatus
from shop.schemas import MerchantSchema

MERCHANT_NOT_FOUND = _l("There is no such merchant.")


def _get(merchant_id: int, *, lock: bool = False) -> Merchant:
    stmt = select(Merchant).where(Merchant.id == merchant_id)
    if lock:
        stmt = stmt.with_for_update(of=Merchant)
    merchant = db.scalar(stmt)
    if merchant is None:
        raise NotFound(MERCHANT_NOT_FOUND)
    return merchant


def list_merchants(status: str | None = None) -> list[Merchant]:
    """Merchants, pending ones first (they wait for a decision), then by name."""
    stmt = select(Merchant)
    if status:
        stmt = stmt.where(Merchant.status == status)
    order = [(Merchant.status != MerchantStatus.PENDING), Merchant.name_en, Merchant.id]
    return list(db.scalars(stmt.order_by(*order)))


def get_merchant(merchant_id: int) -> Merchant:
    """One merchant by id; raises NotFound."""
    return _get(merchant_id)


def register_merchant(owner_id: int, data: dict[str, Any]) -> Merchant:
    """Record a new merchant, pending an admin's approval, owned by user `owner_id`
    (who is given the merchant role); flushes, so it has its id.

    Raises ValidationFailed for bad fields (a local shop must price in IQD, a foreign
    one in a foreign currency) and Conflict when the slug is taken.
    """
    try:
        fields = MerchantSchema().load(data)
    except ValidationError as exc:
        raise ValidationFailed(_l("Some merchant details are not valid."),
                               fields=exc.messages_dict) from exc
    local = fields["country"] == HOME_COUNTRY
    if local != (fields["currency"] == HOME_CURRENCY):
        raise ValidationFailed(
            _l("A shop in Iraq prices in dinars; a shop abroad in its own currency."),
            fields={"currency": ["country_currency"]},
        )
    if fields["post_office_id"] is not None and db.get(PostOffice, fields["post_office_id"]) \
            is None:
        raise ValidationFailed(_l("There is no such post office."),
                               fields={"post_office_id": ["unknown"]})
    owner = db.get(User, owner_id)
    if owner is None:
        raise NotFound(_l("There is no such user."))
    if not owner.has_role(Role.MERCHANT):
        db.add(UserRole(user_id=owner.id, role=Role.MERCHANT))
    merchant = Merchant(owner_id=owner_id, status=MerchantStatus.PENDING, **fields)
    try:
        # A savepoint around the insert: a taken slug (the unique index) undoes only the
        # insert, and the Conflict lets the caller's unit of work decide about the rest.
        with savepoint():
            db.add(merchant)
            db.flush()
    except IntegrityError as exc:
        raise Conflict(_l("Another shop already uses this web name."),
                       fields={"slug": ["taken"]}) from exc
    record_audit("merchant.registered", object_type="merchant", object_id=merchant.id,
                 details={"slug": merchant.slug})
    return merchant


def approve_merchant(merchant_id: int, *, actor_id: int | None = None) -> Merchant:
    """Make a pending or suspended merchant active (its products appear), audit it,
    publish `merchant.approved`; flushes. Approving an active merchant changes nothing.

    Raises NotFound; ValidationFailed when a local merchant has no post office to hand
    parcels over at.
    """
    merchant = _get(merchant_id, lock=True)
    if merchant.is_active:
        return merchant  # the caller's unit of work ends and releases the row lock
    if merchant.is_local and merchant.post_office_id is None:
        raise ValidationFailed(
            _l("Choose the post office where this shop hands over its parcels first."),
            fields={"post_office_id": ["required"]},
        )
    previous = merchant.status
    merchant.status = MerchantStatus.ACTIVE
    merchant.status_changed_at = utcnow()
    record_audit("merchant.approved", object_type="merchant", object_id=merchant.id,
                 actor_id=actor_id, details={"from": previous})
    publish("merchant.approved", {"merchant_id": merchant.id})
    db.flush()
    return merchant


def suspend_merchant(merchant_id: int, *, reason: str, actor_id: int | None = None
                     ) -> Merchant:
    """Suspend an active or pending merchant (its shop and products disappear from the
    catalog at once), audit it with the reason, publish `merchant.suspended`; flushes.
    Suspending a suspended merchant changes nothing.

    Raises NotFound; ValidationFailed without a reason.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_l("Say why the shop is suspended."),
                               fields={"reason": ["required"]})
    merchant = _get(merchant_id, lock=True)
    if merchant.status == MerchantStatus.SUSPENDED:
        return merchant
    previous = merchant.status
    merchant.status = MerchantStatus.SUSPENDED
    merchant.status_changed_at = utcnow()
    record_audit("merchant.suspended", object_type="merchant", object_id=merchant.id,
                 actor_id=actor_id, details={"from": previous, "reason": reason[:500]})
    publish("merchant.suspended", {"merchant_id": merchant.id})
    db.flush()
    return merchant


def set_commission(merchant_id: int, commission_bps: int, *, actor_id: int | None = None
                   ) -> Merchant:
    """Set Barid's commission on the merchant's sales (basis points, 0-10000), audit the
    old and new rate, publish `merchant.commission_changed`; flushes. The same rate
    again changes nothing.

    Raises NotFound; ValidationFailed outside 0-10000.
    """
    if isinstance(commission_bps, bool) or not isinstance(commission_bps, int) \
            or not 0 <= commission_bps <= 10000:
        raise ValidationFailed(
            _l("The commission is between 0 and 10000 basis points."),
            fields={"commission_bps": ["range"]},
        )
    merchant = _get(merchant_id, lock=True)
    previous = merchant.commission_bps
    if previous == commission_bps:
        return merchant
    merchant.commission_bps = commission_bps
    record_audit("merchant.commission_changed", object_type="merchant",
                 object_id=merchant.id, actor_id=actor_id,
                 details={"from_bps": previous, "to_bps": commission_bps})
    publish("merchant.commission_changed",
            {"merchant_id": merchant.id, "commission_bps": commission_bps})
    db.flush()
    return merchant


def set_post_office(merchant_id: int, post_office_id: int, *, actor_id: int | None = None
                    ) -> Merchant:
    """Set where a local merchant hands its parcels over, audit it; flushes.

    Raises NotFound for an unknown merchant or post office.
    """
    merchant = _get(merchant_id, lock=True)
    if db.get(PostOffice, post_office_id) is None:
        raise NotFound(_l("There is no such post office."))
    previous = merchant.post_office_id
    merchant.post_office_id = post_office_id
    record_audit("merchant.post_office_changed", object_type="merchant",
                 object_id=merchant.id, actor_id=actor_id,
                 details={"from": previous, "to": post_office_id})
    db.flush()
    return merchant


def post_office_choices() -> list[tuple[int, str]]:
    """(id, "code · name") of every post office, for choosing a merchant's hand-over
    office."""
    locale = current_locale()
    offices = db.scalars(select(PostOffice).order_by(PostOffice.code))
    return [(o.id, f"{o.code} · {o.name(locale)}") for o in offices]
