"""Demo post offices and one demo account per role, for the embedded default only."""

from __future__ import annotations

import logging
from functools import lru_cache

from flask import current_app
from sqlalchemy import select

from app.auth import services
from app.auth.models import OfficeKind, PostOffice, Role, User
from app.database import db
from app.geo import governorate_by_name
from app.seed import seeder

log = logging.getLogger(__name__)

# Published in the README for trying the embedded default; never created in production.
DEMO_PASSWORD = "barid-demo-2026"  # noqa: S105

# One office at least in each governorate of app/data/governorates.csv.
# (code, governorate's English name in app/data/governorates.csv, Arabic, English, kind,
#  opening hours)
_HOURS = "السبت–الخميس ٨:٠٠–١٤:٠٠ / Sat–Thu 08:00–14:00"
DEMO_OFFICES = [
    ("BGD-01", "Baghdad", "مكتب بريد بغداد المركزي", "Baghdad Main Post Office",
     OfficeKind.EXCHANGE, _HOURS),
    ("BGD-SC", "Baghdad", "مركز فرز بغداد", "Baghdad Sorting Centre", OfficeKind.SORTING,
     "24/7"),
    ("BSR-01", "Basra", "مكتب بريد البصرة", "Basra Post Office", OfficeKind.COUNTER, _HOURS),
    ("EBL-01", "Erbil", "مكتب بريد أربيل", "Erbil Post Office", OfficeKind.COUNTER, _HOURS),
    ("MSL-01", "Nineveh", "مكتب بريد الموصل", "Mosul Post Office", OfficeKind.COUNTER, _HOURS),
    ("NJF-01", "Najaf", "مكتب بريد النجف", "Najaf Post Office", OfficeKind.COUNTER, _HOURS),
    ("SUL-01", "Sulaymaniyah", "مكتب بريد السليمانية", "Sulaymaniyah Post Office",
     OfficeKind.COUNTER, _HOURS),
    ("DHK-01", "Duhok", "مكتب بريد دهوك", "Duhok Post Office", OfficeKind.COUNTER, _HOURS),
    ("KRK-01", "Kirkuk", "مكتب بريد كركوك", "Kirkuk Post Office", OfficeKind.COUNTER, _HOURS),
    ("TKR-01", "Salah al-Din", "مكتب بريد تكريت", "Tikrit Post Office", OfficeKind.COUNTER,
     _HOURS),
    ("BQB-01", "Diyala", "مكتب بريد بعقوبة", "Baqubah Post Office", OfficeKind.COUNTER,
     _HOURS),
    ("RMD-01", "Anbar", "مكتب بريد الرمادي", "Ramadi Post Office", OfficeKind.COUNTER, _HOURS),
    ("HLA-01", "Babil", "مكتب بريد الحلة", "Hillah Post Office", OfficeKind.COUNTER, _HOURS),
    ("KRB-01", "Karbala", "مكتب بريد كربلاء", "Karbala Post Office", OfficeKind.COUNTER,
     _HOURS),
    ("DIW-01", "Qadisiyah", "مكتب بريد الديوانية", "Diwaniyah Post Office",
     OfficeKind.COUNTER, _HOURS),
    ("SMW-01", "Muthanna", "مكتب بريد السماوة", "Samawah Post Office", OfficeKind.COUNTER,
     _HOURS),
    ("NAS-01", "Dhi Qar", "مكتب بريد الناصرية", "Nasiriyah Post Office",
     OfficeKind.DELIVERY, _HOURS),
    ("AMR-01", "Maysan", "مكتب بريد العمارة", "Amarah Post Office", OfficeKind.COUNTER,
     _HOURS),
    ("KUT-01", "Wasit", "مكتب بريد الكوت", "Kut Post Office", OfficeKind.COUNTER, _HOURS),
    ("HLB-01", "Halabja", "مكتب بريد حلبجة", "Halabja Post Office", OfficeKind.COUNTER,
     _HOURS),
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


@lru_cache(maxsize=1)
def demo_password_hash() -> str:
    """One argon2id hash of DEMO_PASSWORD for every demo account: the password is public,
    so a salt per account would protect nothing, and each hash costs up to a second."""
    return services.hash_password(DEMO_PASSWORD)


@seeder(10)
def seed_people() -> None:
    """A post office in every governorate and a demo account for each role
    (idempotent)."""
    for code, gov_name, name_ar, name_en, kind, hours in DEMO_OFFICES:
        if db.scalar(select(PostOffice.id).where(PostOffice.code == code)) is None:
            services.create_post_office(code, name_ar, name_en,
                                        governorate_by_name(gov_name).code,
                                        kind=kind, opening_hours=hours)
    if current_app.config.get("BARID_ENV") == "production":
        # A known password on a production system would be an open door.
        log.warning("demo users are not created when BARID_ENV=production")
        return
    for email, phone, name, roles, office in DEMO_USERS:
        if db.scalar(select(User.id).where(User.email == email)) is None:
            services.create_user(name, email=email, phone=phone, password=DEMO_PASSWORD,
                                 password_hash=demo_password_hash(),
                                 roles=roles, post_office_code=office)
