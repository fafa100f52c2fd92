"""Fixtures for tracking: offices and staff."""

from __future__ import annotations

import pytest

from app.auth.models import PostOffice
from app.database import db
from tests.tracking.helpers import make_user, store_rates


@pytest.fixture(autouse=True)
def _exchange_rates(request):
    """The administrators' exchange rates customs values declarations at."""
    if "app" not in request.fixturenames:
        yield
        return
    with request.getfixturevalue("app").app_context():
        store_rates()
    yield


@pytest.fixture()
def offices(app_ctx):
    baghdad = PostOffice(code="BGD01", name_ar="مكتب بريد بغداد المركزي",
                         name_en="Baghdad Central Post Office", governorate="IQ-BG",
                         is_exchange_office=True)
    basra = PostOffice(code="BSR01", name_ar="مكتب بريد البصرة", name_en="Basra Post Office",
                       governorate="IQ-BA")
    db.add_all([baghdad, basra])
    db.commit()
    return baghdad, basra


@pytest.fixture()
def clerk(offices):
    return make_user("Zainab Clerk", "clerk", office=offices[0])


@pytest.fixture()
def officer(offices):
    return make_user("Ali Officer", "customs_officer", office=offices[0])


@pytest.fixture()
def fast_pins(app):
    """argon2id with small costs for post-card PINs: same logic, faster tests."""
    old = {k: app.config.get(k) for k in ("PIN_ARGON2_TIME_COST", "PIN_ARGON2_MEMORY_KIB",
                                          "PIN_ARGON2_PARALLELISM")}
    app.config.update(PIN_ARGON2_TIME_COST=1, PIN_ARGON2_MEMORY_KIB=1024,
                      PIN_ARGON2_PARALLELISM=1)
    yield
    for key, value in old.items():
        if value is None:
            app.config.pop(key, None)
        else:
            app.config[key] = value
