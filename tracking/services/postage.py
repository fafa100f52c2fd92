"""Postage: what sending a parcel costs, by service, zone and chargeable weight.

The tariff is a table (`postage_bands`): for each service and zone, weight bands that run
from 0 g without gaps or overlaps, each "over `from` up to and including `to` grams" at a
price in dinars. Zone "any" is the tariff of every zone that has no bands of its own. An
administrator replaces a service's bands in a zone all at once (`replace_bands`), so the
counter never prices from a half-edited table.

Zones are counted between the governorate a parcel starts from and the one it goes to:
- same_governorate: both in one governorate;
- kurdistan: the route crosses into or out of the Kurdistan Region;
- other_governorate: anything else.
International parcels use the "any" tariff.

Until the table has bands for a service (a new database before its seed), postage comes
from the built-in tariff below, the one the table is seeded from, so prices are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from app.audit import record_audit
from app.database import db
from app.errors import ValidationFailed
from app.numbers import MAX_AMOUNT, MAX_GRAMS, parse_whole
from tracking.models import PostageBand, Service

KURDISTAN_REGION = frozenset({"IQ-AR", "IQ-DA", "IQ-SU", "IQ-HA"})  # Erbil, Duhok,
# Sulaymaniyah, Halabja
ANY_ZONE = "any"
ZONES = ("same_governorate", "other_governorate", "kurdistan")
ZONE_LABELS: dict[str, Any] = {
    ANY_ZONE: _l("All zones"),
    "same_governorate": _l("Within the governorate"),
    "other_governorate": _l("To another governorate"),
    "kurdistan": _l("To or from the Kurdistan Region"),
}
SERVICE_LABELS: dict[str, Any] = {
    Service.PARCEL: _l("Parcel"),
    Service.EMS: _l("EMS (express)"),
    Service.REGISTERED: _l("Registered item"),
    Service.ECOMMERCE: _l("E-commerce parcel"),
}

# The built-in tariff by service: (IQD up to the first band, grams in the first band,
# IQD for each further step, grams in a step). The table is seeded from it.
BUILT_IN_TARIFF: dict[Service, tuple[int, int, int, int]] = {
    Service.PARCEL: (5000, 1000, 1000, 500),
    Service.EMS: (10000, 500, 2000, 500),
    Service.REGISTERED: (3000, 500, 1000, 500),
    Service.ECOMMERCE: (4000, 1000, 750, 500),
}
# Couriers charge the larger of the real weight and the volume weight (cm3 / 5000 = kg).
VOLUMETRIC_DIVISOR = 5000


@dataclass(frozen=True)
class Band:
    from_grams: int
    to_grams: int
    price_iqd: int


def zone_between(origin: str | None, destination: str | None) -> str:
    """The zone between two governorate codes (see the module docstring); "any" when
    either end is unknown (international)."""
    if not origin or not destination:
        return ANY_ZONE
    if origin == destination:
        return "same_governorate"
    if (origin in KURDISTAN_REGION) != (destination in KURDISTAN_REGION):
        return "kurdistan"
    return "other_governorate"


def chargeable_grams(weight_grams: int, length_cm: int, width_cm: int, height_cm: int) -> int:
    volume = length_cm * width_cm * height_cm
    return max(weight_grams, (volume * 1000) // VOLUMETRIC_DIVISOR)


def _built_in_price(service: Service, grams: int) -> int:
    base, first, step, step_grams = BUILT_IN_TARIFF[service]
    if grams <= first:
        return base
    steps = int((Decimal(grams - first) / step_grams).to_integral_value(ROUND_CEILING))
    return base + steps * step


def built_in_bands(service: str, up_to_grams: int | None = None) -> list[Band]:
    """The built-in tariff of `service` as bands up to the heaviest parcel accepted."""
    svc = Service(service)
    top = up_to_grams or int(current_app.config["MAX_PARCEL_WEIGHT_GRAMS"])
    _base, first, _step, step_grams = BUILT_IN_TARIFF[svc]
    bands = [Band(0, first, _built_in_price(svc, first))]
    while bands[-1].to_grams < top:
        lo = bands[-1].to_grams
        bands.append(Band(lo, lo + step_grams, _built_in_price(svc, lo + step_grams)))
    return bands


def bands_of(service: str, zone: str) -> list[Band]:
    """The stored bands of a service in a zone, lightest first (empty when it has none)."""
    rows = db.scalars(select(PostageBand).where(PostageBand.service == service,
                                                PostageBand.zone == zone)
                      .order_by(PostageBand.from_grams))
    return [Band(r.from_grams, r.to_grams, r.price_iqd) for r in rows]


def postage_for(service: str, weight_grams: int, length_cm: int = 0, width_cm: int = 0,
                height_cm: int = 0, *, zone: str = ANY_ZONE) -> int:
    """Postage in IQD for a parcel of this service, weight and size, in `zone`.

    Reads the zone's bands, else the "any" bands, else the built-in tariff. Raises
    ValidationFailed (on `weight_grams`) when the chargeable weight is beyond the last band.
    """
    svc = Service(service)
    grams = chargeable_grams(weight_grams, length_cm, width_cm, height_cm)
    for z in dict.fromkeys((zone, ANY_ZONE)):
        bands = bands_of(svc, z)
        if not bands:
            continue
        for b in bands:
            if b.from_grams < grams <= b.to_grams or (grams == 0 and b.from_grams == 0):
                return b.price_iqd
        msg = _l("No postage is set for a chargeable weight of %(kg)s kg (the size counts "
                 "too); the table ends at %(top)s kg.", kg=f"{grams / 1000:g}",
                 top=f"{bands[-1].to_grams / 1000:g}")
        raise ValidationFailed(msg, fields={"weight_grams": msg})
    return _built_in_price(svc, grams)


def parse_bands(text: str) -> tuple[list[Band], dict[int, Any]]:
    """Bands typed one per line as "from to price" (Arabic-Indic digits and thousands
    commas too), and the errors by line number; blank lines are skipped."""
    bands: list[Band] = []
    errors: dict[int, Any] = {}
    for n, line in enumerate((text or "").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        numbers = [parse_whole(p) for p in parts]
        if len(parts) != 3 or any(x is None for x in numbers):
            errors[n] = _l("Line %(n)s: write three whole numbers: from (g), to (g) and "
                           "price (IQD).", n=n)
            continue
        lo, hi, price = (int(x) for x in numbers if x is not None)
        bands.append(Band(lo, hi, price))
    return bands, errors


def check_bands(bands: list[Band]) -> list[Any]:
    """What is wrong with a set of bands, each message naming its band (empty when they
    run from 0 to the heaviest parcel without gaps or overlaps, at positive prices)."""
    problems: list[Any] = []
    if not bands:
        return [_l("Give at least one band.")]
    ordered = sorted(bands, key=lambda b: (b.from_grams, b.to_grams))
    for i, b in enumerate(ordered, start=1):
        name = _l("Band %(i)s (%(lo)s–%(hi)s g)", i=i, lo=b.from_grams, hi=b.to_grams)
        if b.to_grams <= b.from_grams:
            problems.append(_l("%(band)s: it must end above where it starts.", band=name))
        if b.to_grams > MAX_GRAMS:
            problems.append(_l("%(band)s: it ends above %(max)s g.", band=name,
                               max=MAX_GRAMS))
        if b.price_iqd <= 0:
            problems.append(_l("%(band)s: the price must be more than zero.", band=name))
        elif b.price_iqd > MAX_AMOUNT:
            problems.append(_l("%(band)s: the price is too large.", band=name))
        if i == 1:
            if b.from_grams != 0:
                problems.append(_l("%(band)s: the first band must start at 0 g.", band=name))
            continue
        prev = ordered[i - 2]
        if b.from_grams > prev.to_grams:
            problems.append(_l("%(band)s: gap after the band before it, from %(a)s to "
                               "%(b)s g has no price.", band=name, a=prev.to_grams,
                               b=b.from_grams))
        elif b.from_grams < prev.to_grams:
            problems.append(_l("%(band)s: overlaps the band before it (which ends at "
                               "%(a)s g).", band=name, a=prev.to_grams))
    top = int(current_app.config["MAX_PARCEL_WEIGHT_GRAMS"])
    if ordered[-1].to_grams < top:
        problems.append(_l("The last band ends at %(a)s g: the bands must reach %(top)s g, "
                           "the heaviest parcel accepted.", a=ordered[-1].to_grams, top=top))
    return problems


def replace_bands(service: str, zone: str, bands: list[Band], *,
                  actor_id: int | None) -> list[Band]:
    """An administrator sets all the postage bands of `service` in `zone` at once.

    An empty list for a zone other than "any" removes the zone's own bands (it then uses
    the "any" tariff). Raises ValidationFailed listing every problem (gap, overlap, price,
    start, reach) and changes nothing then. Replaces the rows under a lock and audits
    `postage.bands_replaced` with the bands before and after; flushes.
    """
    try:
        svc = Service(service)
    except ValueError as exc:
        raise ValidationFailed(_l("Choose a service.")) from exc
    if zone != ANY_ZONE and zone not in ZONES:
        raise ValidationFailed(_l("Choose a zone."))
    if bands or zone == ANY_ZONE:
        problems = check_bands(bands)
        if problems:
            raise ValidationFailed(_l("The bands were not saved."),
                                   fields={"bands": problems})
    # Lock the bands being replaced, so two administrators saving at once take turns.
    old = list(db.scalars(select(PostageBand).where(PostageBand.service == svc,
                                                    PostageBand.zone == zone)
                          .order_by(PostageBand.from_grams).with_for_update()))
    before = [[b.from_grams, b.to_grams, b.price_iqd] for b in old]
    new = sorted(bands, key=lambda b: b.from_grams)
    after = [[b.from_grams, b.to_grams, b.price_iqd] for b in new]
    if before == after:
        return new
    # Until its first edit a service is priced by the built-in tariff: that is "before".
    built_in = not old and zone == ANY_ZONE
    if built_in:
        before = [[b.from_grams, b.to_grams, b.price_iqd] for b in built_in_bands(svc)]
    db.execute(delete(PostageBand).where(PostageBand.service == svc,
                                         PostageBand.zone == zone))
    db.flush()
    db.add_all(PostageBand(service=str(svc), zone=zone, from_grams=b.from_grams,
                           to_grams=b.to_grams, price_iqd=b.price_iqd) for b in new)
    record_audit("postage.bands_replaced", object_type="postage_bands",
                 object_id=f"{svc}/{zone}", actor_id=actor_id,
                 details={"service": str(svc), "zone": zone, "before": before,
                          "after": after, "before_built_in": built_in})
    db.flush()
    return new


def seed_built_in_bands() -> None:
    """Write the built-in tariff into the table for each service that has no bands yet
    (demo data and a new installation); flushes."""
    for svc in Service:
        if not bands_of(svc, ANY_ZONE):
            db.add_all(PostageBand(service=str(svc), zone=ANY_ZONE, from_grams=b.from_grams,
                                   to_grams=b.to_grams, price_iqd=b.price_iqd)
                       for b in built_in_bands(svc))
    db.flush()
