"""Identifiers, the governorate list, the service rules and the demo seeder."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.auth import services
from app.auth.identifiers import format_phone, normalise_phone, parse_identifier
from app.auth.models import PostOffice, Role, User, role_label
from app.database import db
from app.errors import ValidationFailed
from app.geo import governorates


@pytest.mark.parametrize("raw", [
    "+964 770 123 4567", "+9647701234567", "07701234567", "0770 123 4567", "0770-123-4567",
    "9647701234567", "00964 770 123 4567",
])
def test_iraqi_mobile_numbers_are_stored_in_e164(raw):
    assert normalise_phone(raw) == "+9647701234567"


@pytest.mark.parametrize("raw", [
    "", "0770123456", "077012345678", "+964 1 719 1234", "+44 7700 900123", "0770 123 456a",
    "06701234567",
])
def test_other_numbers_are_a_field_error(raw):
    with pytest.raises(ValidationFailed) as err:
        normalise_phone(raw, "phone")
    assert set(err.value.fields) == {"phone"}


def test_identifier_tells_email_from_phone():
    assert parse_identifier(" Sara@Mail.IQ ") == ("email", "sara@mail.iq")
    assert parse_identifier("0780 000 1111") == ("phone", "+9647800001111")
    with pytest.raises(ValidationFailed) as err:
        parse_identifier("sara")
    assert "identifier" in err.value.fields
    assert format_phone("+9647800001111") == "+964 780 000 1111"


def test_governorates_come_from_the_csv():
    from app.geo import governorate, governorates

    govs = governorates()
    assert len(govs) == 19
    assert govs[0].code == "IQ-BG" and govs[0].name("ar") == "بغداد"
    assert governorate("IQ-NI").name("en") == "Nineveh"
    assert governorate("IQ-HA").name("ar") == "حلبجة"
    assert governorate("IQ-NA").postal_prefix_hint == "54"
    assert governorate("IQ-XX") is None


def test_role_labels_follow_the_language(app):
    from flask_babel import force_locale

    with app.test_request_context():
        with force_locale("ar"):
            assert role_label(Role.CUSTOMS_OFFICER) == "موظف كمارك"
        with force_locale("en"):
            assert role_label("clerk") == "Postal clerk"
            assert [role_label(r) for r in Role if r != Role.SHOPPER][-1] == "Administrator"


def test_unknown_role_writes_nothing(app_ctx):
    with pytest.raises(services.UnknownRole):
        services.create_user("X", email="x@example.iq", password="long enough",
                             roles=["postmaster"])
    db.rollback()
    assert db.scalar(select(User.id)) is None
    assert db.scalar(select(AuditRecord.id)) is None


def test_demo_seeder_is_idempotent_and_uses_the_governorate_codes(app_ctx):
    from app.auth.seed import DEMO_PASSWORD, seed_people

    seed_people()
    seed_people()
    offices = {o.code: o for o in db.scalars(select(PostOffice))}
    # At least one office in each of the 19 governorates, Halabja included.
    assert {o.governorate for o in offices.values()} == {g.code for g in governorates()}
    assert len(governorates()) == 19
    baghdad = offices["BGD-01"]
    assert baghdad.is_exchange_office and baghdad.kind == "exchange"
    assert all(o.opening_hours and o.is_open for o in offices.values())
    assert [o for o in offices.values() if o.is_exchange_office] == [baghdad]
    users = {u.email: u for u in db.scalars(select(User))}
    assert len(users) == 7
    assert users["clerk@barid.iq"].roles == {Role.CLERK}
    assert users["clerk@barid.iq"].post_office is baghdad
    assert users["shopper@barid.iq"].phone == "+9647701234567"
    assert users["customs@barid.iq"].roles == {Role.CUSTOMS_OFFICER}
    assert users["procurement@barid.iq"].roles == {Role.PROCUREMENT}
    assert users["merchant@barid.iq"].roles == {Role.MERCHANT}
    assert users["admin@barid.iq"].roles == {Role.ADMIN}
    assert users["supervisor@barid.iq"].roles == {Role.SUPERVISOR}
    with pytest.raises(services.InvalidCredentials):
        services.authenticate("0770 123 4567", "wrong", client_address=None)
    assert services.authenticate("0770 123 4567", DEMO_PASSWORD, client_address=None).email == (
        "shopper@barid.iq")


def test_demo_users_are_not_created_in_production(app, app_ctx):
    from app.auth.seed import seed_people

    old = app.config["BARID_ENV"]
    app.config["BARID_ENV"] = "production"
    try:
        seed_people()
    finally:
        app.config["BARID_ENV"] = old
    assert db.scalar(select(User.id)) is None
    assert db.scalar(select(PostOffice.id)) is not None
