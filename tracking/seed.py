"""Demo data for tracking: a sample customs tariff and a few parcels with timelines, so the
tracking page and the customs queue show something in `make run`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.auth.models import PostOffice
from app.database import db, unit_of_work, utcnow
from app.seed import seeder
from tracking import s10
from tracking.models import CustomsCase, Parcel, TariffLine
from tracking.services import customs, postage
from tracking.services import events as ev
from tracking.services.parcels import Address, Article, ParcelDraft, preadvise, register_inbound

DEMO_INBOUND_CLEAR = s10.compose("LX", 12345678, "CN")  # LX123456785CN
DEMO_INBOUND_HELD = s10.compose("RB", 31415926, "TR")


def _office(code: str) -> PostOffice | None:
    return db.scalar(select(PostOffice).where(PostOffice.code == code))


def _domestic(order_ref: str, recipient_gov: str, district: str, weight: int) -> Parcel:
    found = db.scalar(select(Parcel).where(Parcel.order_ref == order_ref))
    if found is not None:
        return found
    return preadvise(ParcelDraft(
        sender=Address(name="مكتبة المتنبي", phone="07701112233", governorate="IQ-BG",
                       district="شارع المتنبي", landmark="قرب القشلة"),
        recipient=Address(name="زهراء علي", phone="07809998877", governorate=recipient_gov,
                          district=district, landmark="قرب المدرسة"),
        weight_grams=weight, length_cm=25, width_cm=18, height_cm=8, service="parcel",
        order_ref=order_ref,
    ))


def _run(number: str, steps: list[tuple[str, str | None, float, dict]]) -> None:
    """Record `steps` (code, office code, hours ago, extras) once each (ids are fixed)."""
    now = utcnow()
    for i, (code, office_code, hours_ago, extra) in enumerate(steps):
        office = _office(office_code) if office_code else None
        ev.record_partner_event(number=number, code=code, uid=f"demo:{number}:{i}",
                                occurred_at=now - timedelta(hours=hours_ago),
                                office_id=office.id if office else None, **extra)


@seeder(200)
def seed_tracking() -> None:
    """Sample tariff lines, the postage table, two domestic parcels and two inbound ones
    (one released with duty due, one held by customs). One unit of work; safe to run
    again."""
    with unit_of_work():
        _seed()


def _seed() -> None:
    if db.scalar(select(TariffLine.id).limit(1)) is None:
        customs.import_tariff(customs.SAMPLE_TARIFF_CSV.read_bytes(), actor_id=None)
    # The postage table starts as the built-in tariff, so prices do not change.
    postage.seed_built_in_bands()
    if _office("BGD-01") is None:
        return  # the platform's demo offices are missing: nothing to place parcels at
    delivered = _domestic("demo:order:1", "IQ-BA", "العشار", 1200)
    _run(delivered.tracking_number, [
        ("EMA", "BGD-01", 70, {}), ("EDD", "BGD-01", 66, {}), ("EDE", "BGD-01", 60, {}),
        ("EMG", "BSR-01", 30, {}), ("EDG", "BSR-01", 26, {}),
        ("EMH", "BSR-01", 24, {"reason_code": "no_one_home", "action_code": "retry"}),
        ("EDG", "BSR-01", 4, {}), ("EMI", "BSR-01", 2, {"receiver_name": "زهراء علي"}),
    ])
    moving = _domestic("demo:order:2", "IQ-AR", "عنكاوا", 800)
    _run(moving.tracking_number, [("EMA", "BGD-01", 20, {}), ("EDD", "BGD-01", 12, {})])

    clear = register_inbound(DEMO_INBOUND_CLEAR, ParcelDraft(
        sender=Address(name="Shenzhen Gadgets Ltd", phone="+8675512345678", country="CN",
                       address="12 Keji Road, Shenzhen"),
        recipient=Address(name="عمر حسن", phone="07711112222", governorate="IQ-BG",
                          district="المنصور", landmark="قرب مدرسة الرواد"),
        weight_grams=700, service="ecommerce", customs_category="sale_of_goods",
        articles=[Article(description="Bluetooth headphones", quantity=1,
                          net_weight_grams=300, value_amount=4000, value_currency="USD",
                          hs_code="851830", origin_country="CN")]))
    _run(clear.tracking_number, [
        ("EMA", None, 200, {"location": "SHENZHEN"}), ("EMC", None, 180, {"location": "GUANGZHOU"}),
        ("EMD", "BGD-01", 10, {}),
    ])
    held = register_inbound(DEMO_INBOUND_HELD, ParcelDraft(
        sender=Address(name="Istanbul Pharma Shop", phone="+902121234567", country="TR",
                       address="Fatih, Istanbul"),
        recipient=Address(name="سارة كاظم", phone="07722223333", governorate="IQ-BG",
                          district="الكرادة", landmark="قرب ساحة كهرمانة"),
        weight_grams=400, service="parcel", customs_category="sale_of_goods",
        articles=[Article(description="Vitamin tablets (medicine)", quantity=3,
                          net_weight_grams=250, value_amount=3500, value_currency="USD",
                          hs_code="300450", origin_country="TR")]))
    _run(held.tracking_number, [
        ("EMA", None, 120, {"location": "ISTANBUL"}), ("EMD", "BGD-01", 8, {}),
    ])
    # Assess now rather than wait for the executor, so the demo shows the outcome at once.
    for parcel in (clear, held):
        case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))
        if case is not None and case.state == "assessing":
            customs.assess(parcel.id)
