"""The shopper's address book: governorate, district, nearest landmark, phone."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.auth.identifiers import normalise_phone
from app.auth.models import OfficeKind, PostOffice
from app.database import db
from app.errors import NotFound, ValidationFailed
from app.geo import governorate, governorates
from app.numbers import ascii_digits
from shop.models import Address

MAX_ADDRESSES = 20
_POSTAL = re.compile(r"^\d{5}$")


@dataclass(frozen=True)
class AddressInput:
    recipient_name: str
    phone: str
    governorate: str
    district: str
    landmark: str
    postal_code: str = ""


def _clean(value: str | None, limit: int) -> str:
    return " ".join((value or "").split())[:limit]


def validate_address(data: AddressInput) -> dict[str, str | None]:
    """Checked and normalised address fields; raises ValidationFailed naming every
    field that is wrong (missing governorate, malformed phone, ...)."""
    errors: dict[str, object] = {}
    name = _clean(data.recipient_name, 200)
    if not name:
        errors["recipient_name"] = _l("Write the name of the person who receives it.")
    phone = ""
    try:
        phone = normalise_phone(ascii_digits(data.phone or ""), "phone")
    except ValidationFailed as exc:
        errors.update(exc.fields)
    code = (data.governorate or "").strip()
    if not code or governorate(code) is None:
        errors["governorate"] = _l("Choose a governorate.")
    district = _clean(data.district, 120)
    if not district:
        errors["district"] = _l("Write the district or area.")
    landmark = _clean(data.landmark, 200)
    if not landmark:
        errors["landmark"] = _l("Write the nearest landmark, for example a mosque, a school "
                                "or a well-known shop.")
    postal = ascii_digits(data.postal_code or "")
    if postal and not _POSTAL.match(postal):
        errors["postal_code"] = _l("A postal code has five digits. Leave it empty if you "
                                   "do not know it.")
    if errors:
        first = next(iter(errors.values()))
        raise ValidationFailed(first, fields=errors)
    return {"recipient_name": name, "phone": phone, "governorate": code,
            "district": district, "landmark": landmark, "postal_code": postal or None}


def add_address(user_id: int, data: AddressInput) -> Address:
    """Add an address to the shopper's book. Flushes. Raises ValidationFailed for a
    missing or malformed field, or when the book is full."""
    values = validate_address(data)
    count = len(addresses_of(user_id))
    if count >= MAX_ADDRESSES:
        raise ValidationFailed(_l("Your address book is full. Remove an address first."))
    address = Address(user_id=user_id, **values)
    db.add(address)
    db.flush()
    return address


def addresses_of(user_id: int) -> list[Address]:
    """The shopper's current addresses, newest first."""
    return list(db.scalars(select(Address).where(
        Address.user_id == user_id, Address.archived.is_(False)).order_by(Address.id.desc())))


def owned_address(address_id: int, user_id: int) -> Address:
    """The shopper's own address; NotFound for anyone else's (or a removed one)."""
    address = db.get(Address, address_id)
    if address is None or address.user_id != user_id or address.archived:
        raise NotFound()
    return address


def remove_address(address_id: int, user_id: int) -> None:
    """Take an address out of the book (orders keep their own copy). Flushes. Raises
    NotFound for someone else's address."""
    owned_address(address_id, user_id).archived = True
    db.flush()


# Offices that serve the public at a counter; a sorting centre has no counter to collect at.
PICKUP_KINDS = (OfficeKind.COUNTER, OfficeKind.DELIVERY, OfficeKind.EXCHANGE)


def pickup_offices() -> list[PostOffice]:
    """Every open post office where a shopper may collect a parcel (counter, delivery
    and exchange offices; a closed office or a sorting centre is not offered), by
    governorate in the governorates list's order (Baghdad first), then by name."""
    order = {g.code: i for i, g in enumerate(governorates())}
    found = db.scalars(select(PostOffice).where(PostOffice.closed_at.is_(None),
                                                PostOffice.kind.in_(PICKUP_KINDS)))
    return sorted(found, key=lambda o: (order.get(o.governorate, len(order)), o.name_en))


def pickup_groups(locale: str) -> list[tuple[str, list[PostOffice]]]:
    """pickup_offices() grouped for a chooser: (governorate name in `locale`, offices)."""
    groups: dict[str, list[PostOffice]] = {}
    for office in pickup_offices():
        gov = governorate(office.governorate)
        groups.setdefault(gov.name(locale) if gov else office.governorate, []).append(office)
    return list(groups.items())


def pickup_office(office_id: int) -> PostOffice:
    office = db.get(PostOffice, office_id)
    if office is None or office.closed_at is not None or office.kind not in PICKUP_KINDS:
        raise ValidationFailed(_l("Choose a post office to collect from."),
                               fields={"office": _l("Choose a post office to collect from.")})
    return office
