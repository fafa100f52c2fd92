"""Demo post offices and one demo account per role, for the embedded default only."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from app.auth import services
from app.auth.models import PostOffice, Role, User
from app.database import db
from app.geo import governorate_by_name
from app.seed import seeder

log = logging.getLogger(__name__)

# Published in the README for trying the embedded default; never created in production.
DEMO_PASSWORD = "barid-demo-2026"  # noqa: S105

# (code, governorate's English name in app/data/governorates.csv, Arabic, English,
#  exchange office?)
DEMO_OFFICES = [
    ("BGD-01", "Baghdad", "مكتب بريد بغداد المركزي", "Baghdad Main Post Office", True),
    ("BSR-01", "Basra", "مكتب بريد البصرة", "Basra Post Office", False),
    ("EBL-01", "Erbil", "مكتب بريد أربيل", "Erbil Post Office", False),
    ("MSL-01", "Nineveh", "مكتب بريد الموصل", "Mosul Post Office", False),
    ("NJF-01", "Najaf", "مكتب بريد النجف", "Najaf Post Office", False),
]

# (email, phone, name, roles, post office code)
DEMO_USERS = [
    ("admin@barid.iq", None, "مدير النظام", [Role.ADMIN], None),
    ("supervisor@barid.iq", None, "سعاد المشرفة", [Role.SUPERVISOR], "BGD-01"),
    ("clerk@barid.iq", None, "علي الموظف", [Role.CLERK], "BGD-01"),
    ("customs@barid.iq", None, "حسن الكمركي", [Role.CUSTOMS_OFFICER], "BGD-01"),
    ("procurement@barid.iq", None, "زينب المشتريات", [Role.PROCUREMENT], "BGD-01"),
    ("shopper@barid.iq", "+9647701234567", "مريم المتسوقة", [Role.SHOPPER], None),
    ("merchant@barid.iq", None, "متجر بغداد للكتب", [Role.MERCHANT], None),
]


@seeder(10)
def seed_people() -> None:
    """Post offices in five governorates and a demo account for each role (idempotent)."""
    for code, gov_name, name_ar, name_en, exchange in DEMO_OFFICES:
        if db.scalar(select(PostOffice.id).where(PostOffice.code == code)) is None:
            services.create_post_office(code, name_ar, name_en,
                                        governorate_by_name(gov_name).code,
                                        is_exchange_office=exchange)
    if current_app.config.get("BARID_ENV") == "production":
        # A known password on a production system would be an open door.
        log.warning("demo users are not created when BARID_ENV=production")
        return
    for email, phone, name, roles, office in DEMO_USERS:
        if db.scalar(select(User.id).where(User.email == email)) is None:
            services.create_user(name, email=email, phone=phone, password=DEMO_PASSWORD,
                                 roles=roles, post_office_code=office)
