"""Helpers for tracking tests: staff, times and parcel drafts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.auth.models import PostOffice, User
from app.database import db

PASSWORD = "correct horse 42"


def make_user(name: str, *roles: str, office: PostOffice | None = None) -> User:
    """A staff account made the way the back office makes them (so it can log in)."""
    from app.auth.services import create_user

    user = create_user(name, email=f"{name.lower().replace(' ', '.')}@post.iq",
                       password=PASSWORD, roles=roles,
                       post_office_code=office.code if office else None)
    return db.get(User, user.id)


def login(client, user: User) -> None:
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


_START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def at(hours: float) -> datetime:
    """A moment `hours` after a fixed start three days ago (events must not be in the
    future)."""
    return _START + timedelta(hours=hours)


def domestic_draft(**kw):
    from tracking.services.parcels import Address, ParcelDraft

    values = dict(
        sender=Address(name="أحمد الكاظمي", phone="+9647701234567", governorate="IQ-BG",
                       district="الكرادة", landmark="قرب جامع براثا"),
        recipient=Address(name="فاطمة الموسوي", phone="07801234567", governorate="IQ-BA",
                          district="العشار", landmark="مقابل سوق حنا الشيخ"),
        weight_grams=1200, length_cm=30, width_cm=20, height_cm=10, service="parcel",
    )
    values.update(kw)
    return ParcelDraft(**values)


def inbound_draft(articles=None, **kw):
    from tracking.services.parcels import Address, Article, ParcelDraft

    values = dict(
        sender=Address(name="Shenzhen Gadgets Ltd", phone="+8675512345678", country="CN",
                       address="12 Keji Road, Shenzhen"),
        recipient=Address(name="Omar Hassan", phone="+9647711112222", governorate="IQ-BG",
                          district="Mansour", landmark="near Al-Rowad school",
                          email="omar@example.iq"),
        weight_grams=800, service="ecommerce", direction="inbound",
        customs_category="sale_of_goods",
        articles=articles if articles is not None else [
            Article(description="Bluetooth headphones", quantity=2, net_weight_grams=300,
                    value_amount=4000, value_currency="USD", hs_code="851830",
                    origin_country="CN"),
        ],
    )
    values.update(kw)
    return ParcelDraft(**values)



def run_jobs() -> int:
    """Run every due outbox job now, as the inline executor would; returns how many."""
    from flask import current_app

    from app.jobs import drain

    db.commit()
    return drain(current_app)


# Dinars for one unit, as customs used to keep them in its own setting: customs now
# values declarations at the administrators' rate table (payments.rates).
CUSTOMS_RATES = {"USD": "1310", "EUR": "1420", "GBP": "1660", "TRY": "40", "AED": "357",
                 "CNY": "181", "SAR": "349", "JOD": "1848", "KWD": "4260"}


def store_rates(rates: dict[str, str] | None = None) -> None:
    """Store exchange rates (valid from a day ago) where a currency has none yet."""
    from decimal import Decimal

    from sqlalchemy import select

    from payments.models import ExchangeRate

    have = set(db.scalars(select(ExchangeRate.base)))
    since = datetime.now(UTC) - timedelta(days=1)
    db.add_all(ExchangeRate(base=base, quote="IQD", rate=Decimal(rate), valid_from=since)
               for base, rate in (rates or CUSTOMS_RATES).items() if base not in have)
    db.commit()
