"""Helpers for tracking tests: staff, times and parcel drafts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.auth.models import PostOffice, User, UserRole
from app.database import db


def make_user(name: str, *roles: str, office: PostOffice | None = None) -> User:
    user = User(full_name=name, email=f"{name.lower().replace(' ', '.')}@post.iq",
                password_hash="x", post_office_id=office.id if office else None)
    user.role_rows = [UserRole(role=r) for r in roles]
    db.add(user)
    db.commit()
    return user


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
